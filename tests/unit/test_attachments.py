"""Files attached to messages: uploaded over HTTP, typed by their bytes, tied to a message by
`send`, fetched only by those who may read the room, and gone with their message."""

import io
import json
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from PIL import Image

from chat import attachments, services
from chat.models import Attachment, Ban, Membership, Message
from chat.protocol import events, requests
from chat.protocol.errors import ChatError, ErrorCode

pytestmark = pytest.mark.django_db(transaction=True)

SVG_WITH_SCRIPT = (
    b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)">'
    b"<script>alert(document.cookie)</script></svg>"
)
HTML_AS_PNG = b"<html><body><script>alert(1)</script></body></html>"


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (800, 400), **save: object) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (20, 120, 200)).save(out, format=fmt, **save)
    return out.getvalue()


def jpeg_with_gps() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"  # Make
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0), 3: "W", 4: (0.0, 7.0, 0.0)}  # GPSInfo
    return image_bytes("JPEG", exif=exif.tobytes())


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def upload(client: Client, room, name: str, data: bytes, content_type: str = "image/png"):
    file = SimpleUploadedFile(name, data, content_type=content_type)
    return client.post(f"/chat/{room.slug}/files/", {"file": file})


def send(room, author, *, ids, body: str = "", client_id: str = "c1"):
    draft = services.MessageDraft(
        room=room, author=author, body=body, client_id=client_id, attachments=tuple(ids)
    )
    [result] = services.messages_create(drafts=[draft])
    if isinstance(result, ChatError):
        raise result
    return result


def fetch(client: Client, file: dict, *, thumb: bool = False):
    return client.get(file["thumb_url"] if thumb else file["url"])


def stored_names() -> set[str]:
    try:
        return {f"attachments/{name}" for name in default_storage.listdir("attachments")[1]}
    except FileNotFoundError:
        return set()


# What a file is ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("GIF", "image/gif"), ("WEBP", "image/webp")],
)
def test_images_are_known_by_their_bytes_and_get_a_thumbnail(fmt, content_type):
    sniffed = attachments.sniff(image_bytes(fmt))

    assert sniffed.content_type == content_type
    assert (sniffed.width, sniffed.height) == (800, 400)
    thumb = Image.open(io.BytesIO(sniffed.thumbnail.read()))
    assert thumb.format == "PNG"
    assert thumb.size == (360, 180)


def test_a_thumbnail_keeps_no_exif_or_gps():
    upload_data = jpeg_with_gps()
    assert Image.open(io.BytesIO(upload_data)).getexif().get(0x8825)

    thumb = attachments.sniff(upload_data).thumbnail.read()

    assert not Image.open(io.BytesIO(thumb)).getexif()
    assert b"SpyCam" not in thumb


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (SVG_WITH_SCRIPT, "text/plain; charset=utf-8"),
        (HTML_AS_PNG, "text/plain; charset=utf-8"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "application/pdf"),
        (b"PK\x03\x04\x14\x00", "application/zip"),
        (b"\x00\x01\x02binary\xff\xfe", "application/octet-stream"),
        (image_bytes("BMP"), "application/octet-stream"),  # an image, not one we preview
        (image_bytes("PNG")[:80], "application/octet-stream"),  # a truncated PNG
    ],
    ids=["svg", "html", "pdf", "zip", "binary", "bmp", "truncated-png"],
)
def test_everything_else_is_typed_by_its_bytes_and_never_an_image(data, content_type):
    sniffed = attachments.sniff(data)

    assert sniffed.content_type == content_type
    assert sniffed.thumbnail is None


def test_an_image_over_the_pixel_limit_is_not_decoded_as_an_image(monkeypatch):
    monkeypatch.setattr(attachments, "ATTACHMENT_MAX_PIXELS", 100 * 100)

    sniffed = attachments.sniff(image_bytes("PNG", size=(101, 100)))

    assert sniffed.thumbnail is None
    assert sniffed.content_type == "application/octet-stream"


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\plan.pdf", "plan.pdf"),
        ("evil\u202egnp.exe", "evilgnp.exe"),  # a right-to-left override would hide .exe
        ("tab\tand\nnewline.txt", "tab and newline.txt"),
        ("..", "file"),
        ("", "file"),
        ("a" * 300 + ".jpeg", "a" * 115 + ".jpeg"),
        # As browsers send a form's file name: '"', LF and CR written %22, %0A, %0D.
        ("say %22hi%22.txt", 'say "hi".txt'),
        ("two%0Alines%0D.txt", "two lines .txt"),
        ("100%25 sure.txt", "100%25 sure.txt"),  # nothing else is decoded
    ],
)
def test_a_file_name_is_made_safe_to_show(name, shown):
    assert attachments.display_name(name) == shown


# Uploading --------------------------------------------------------------------------------


def test_an_upload_is_stored_under_a_random_name_and_answered_as_a_file(alice, general):
    response = upload(client_for(alice), general, "holiday photo.jpg", jpeg_with_gps())

    assert response.status_code == 201
    file = response.json()
    stored = Attachment.objects.get(pk=file["id"])
    assert file == events.file_dict(stored)
    assert file["name"] == "holiday photo.jpg"
    assert (file["type"], file["image"], file["width"], file["height"]) == (
        "image/jpeg",
        True,
        800,
        400,
    )
    assert "holiday" not in stored.file.name
    assert stored.message is None
    assert stored.uploader == alice


def test_an_oversize_upload_is_refused_and_stores_nothing(alice, general, settings):
    settings.CHAT_UPLOAD_MAX_BYTES = 1000

    response = upload(client_for(alice), general, "big.bin", b"x" * 1001, "text/plain")

    assert response.status_code == 413
    assert "at most" in response.json()["error"]
    assert not Attachment.objects.exists()
    assert stored_names() == set()
    assert upload(client_for(alice), general, "fits.bin", b"x" * 1000).status_code == 201


def test_a_disguised_file_gets_the_type_of_its_bytes_not_its_name(alice, general):
    client = client_for(alice)
    fake_png = upload(client, general, "cat.png", HTML_AS_PNG, "image/png").json()
    real_png = upload(client, general, "notes.txt", image_bytes("PNG"), "text/plain").json()

    assert (fake_png["type"], fake_png["image"], fake_png["thumb_url"]) == (
        "text/plain; charset=utf-8",
        False,
        None,
    )
    assert (real_png["type"], real_png["image"]) == ("image/png", True)
    response = fetch(client, fake_png)
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"


def test_an_svg_with_a_script_is_only_ever_downloaded(alice, bob, general):
    file = upload(client_for(alice), general, "logo.svg", SVG_WITH_SCRIPT, "image/svg+xml").json()
    send(general, alice, ids=[file["id"]])

    response = fetch(client_for(bob), file)

    assert response.status_code == 200
    assert file["image"] is False
    assert file["thumb_url"] is None
    assert "svg" not in response["Content-Type"]
    assert response["Content-Disposition"] == 'attachment; filename="logo.svg"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    assert b"".join(response.streaming_content) == SVG_WITH_SCRIPT


def test_an_image_shows_inline_and_its_thumbnail_is_a_png(alice, bob, general):
    file = upload(client_for(alice), general, "p.webp", image_bytes("WEBP")).json()
    send(general, alice, ids=[file["id"]])

    full, thumb = fetch(client_for(bob), file), fetch(client_for(bob), file, thumb=True)

    assert full["Content-Type"] == "image/webp"
    assert full["Content-Disposition"].startswith("inline;")
    assert thumb["Content-Type"] == "image/png"
    assert thumb["X-Content-Type-Options"] == full["X-Content-Type-Options"] == "nosniff"


def test_uploads_need_a_user_who_may_post_in_the_room(alice, bob, general, make_room):
    private = make_room("secret", is_private=True, members=(alice,))
    archived = make_room("old", is_archived=True)
    Ban.objects.create(room=general, user=bob)
    data = b"hello"

    assert upload(Client(), general, "a.txt", data).status_code == 403  # anonymous
    assert upload(client_for(bob), private, "a.txt", data).status_code == 404  # not a member
    assert upload(client_for(bob), general, "a.txt", data).status_code == 403  # banned
    assert upload(client_for(alice), archived, "a.txt", data).status_code == 403
    assert upload(client_for(alice), general, "a.txt", b"").status_code == 400
    assert client_for(alice).post(f"/chat/{general.slug}/files/", {}).status_code == 400
    assert not Attachment.objects.exists()
    assert upload(client_for(alice), private, "a.txt", data).status_code == 201


def test_an_upload_needs_the_csrf_token(alice, general):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)

    assert upload(strict, general, "a.txt", b"hello").status_code == 403
    assert not Attachment.objects.exists()


def test_uploads_are_rate_limited_per_user(alice, bob, general, settings):
    settings.CHAT_UPLOAD_RATE_LIMIT = "2/600"
    client = client_for(alice)

    statuses = [upload(client, general, "a.txt", b"hello").status_code for _ in range(3)]

    assert statuses == [201, 201, 429]
    assert Attachment.objects.count() == 2
    assert upload(client_for(bob), general, "a.txt", b"hello").status_code == 201


# Sending --------------------------------------------------------------------------------


def test_a_message_carries_its_files_in_order_and_may_have_no_text(alice, general):
    client = client_for(alice)
    first = upload(client, general, "a.txt", b"first").json()
    second = upload(client, general, "b.png", image_bytes()).json()

    message, created = send(general, alice, ids=[second["id"], first["id"]], body="")

    assert created
    assert events.message_dict(Message.objects.get(pk=message.pk))["files"] == [second, first]
    assert events.message_dict(message)["files"] == [second, first]
    assert set(Attachment.objects.values_list("message", flat=True)) == {message.pk}


def test_a_retried_send_with_files_stores_one_message(alice, general):
    file = upload(client_for(alice), general, "a.txt", b"first").json()

    original, _ = send(general, alice, ids=[file["id"]], client_id="same")
    again, created = send(general, alice, ids=[file["id"]], client_id="same")

    assert (again.pk, created) == (original.pk, False)
    assert Message.objects.count() == 1


def test_only_ones_own_unsent_uploads_into_that_room_can_be_sent(alice, bob, general, make_room):
    other_room = make_room("other")
    bobs = upload(client_for(bob), general, "b.txt", b"bob's").json()
    elsewhere = upload(client_for(alice), other_room, "e.txt", b"elsewhere").json()
    sent = upload(client_for(alice), general, "s.txt", b"sent").json()
    send(general, alice, ids=[sent["id"]], client_id="first")
    mine = upload(client_for(alice), general, "m.txt", b"mine").json()

    for i, wrong in enumerate([bobs, elsewhere, sent, {"id": 10**9}]):
        with pytest.raises(ChatError) as refused:
            send(general, alice, ids=[mine["id"], wrong["id"]], client_id=f"bad{i}")
        assert refused.value.code == ErrorCode.BAD_REQUEST

    assert Message.objects.count() == 1
    assert Attachment.objects.get(pk=mine["id"]).message is None
    assert Attachment.objects.get(pk=bobs["id"]).message is None
    general.refresh_from_db()
    assert general.last_seq == 1  # the refusals gave their seqs back


def test_at_most_the_file_limit_per_message(alice, general, settings):
    settings.CHAT_UPLOAD_MAX_FILES = 2
    ids = [upload(client_for(alice), general, f"{i}.txt", b"x").json()["id"] for i in range(3)]

    frame = {"type": "send", "room": "general", "body": "", "client_id": "c", "attachments": ids}

    with pytest.raises(ChatError):
        send(general, alice, ids=ids)
    with pytest.raises(ChatError):
        requests.PARSERS["send"](frame)
    assert not Message.objects.exists()
    assert send(general, alice, ids=ids[:2])[1]


@pytest.mark.parametrize(
    "value",
    [7, "1", [0], [1, 1], [True], [1.5], [1, 2, 3, 4, 5, 6], [2**63]],
)
def test_a_send_frame_with_bad_attachments_is_refused(value):
    frame = {
        "type": "send",
        "room": "general",
        "body": "hi",
        "client_id": "c",
        "attachments": value,
    }

    with pytest.raises(ChatError) as refused:
        requests.PARSERS["send"](frame)

    assert refused.value.code == ErrorCode.BAD_REQUEST


def test_a_send_frame_without_attachments_has_none():
    frame = {"type": "send", "room": "general", "body": "hi", "client_id": "c"}

    assert requests.PARSERS["send"](frame).attachments == ()
    assert requests.PARSERS["send"]({**frame, "attachments": [3, 1]}).attachments == (3, 1)


# Who may fetch ------------------------------------------------------------------------------


def test_a_private_rooms_file_is_a_404_to_everyone_who_may_not_read_it(
    alice, bob, make_user, make_room
):
    carol, dave = make_user("carol"), make_user("dave")
    private = make_room("secret", is_private=True, members=(alice, bob, carol))
    Membership.objects.filter(room=private, user=alice).update(role=Membership.Role.OWNER)
    file = upload(client_for(alice), private, "plan.png", image_bytes()).json()
    send(private, alice, ids=[file["id"]], body="the plan")
    Ban.objects.create(room=private, user=carol)
    bobs_client = client_for(bob)
    assert fetch(bobs_client, file).status_code == 200
    assert fetch(bobs_client, file, thumb=True).status_code == 200

    services.membership_remove(room=private, by=alice, username="bob")

    for client in (bobs_client, client_for(carol), client_for(dave), Client()):
        assert fetch(client, file).status_code == 404
        assert fetch(client, file, thumb=True).status_code == 404
    assert fetch(client_for(alice), file).status_code == 200


def test_a_public_rooms_file_is_open_to_its_readers_but_not_the_banned(alice, bob, general):
    file = upload(client_for(alice), general, "a.txt", b"hello").json()
    send(general, alice, ids=[file["id"]])

    assert fetch(Client(), file).status_code == 200  # anonymous readers read public rooms
    Ban.objects.create(room=general, user=bob)
    assert fetch(client_for(bob), file).status_code == 404


def test_an_unsent_upload_answers_only_its_uploader(alice, bob, general):
    file = upload(client_for(alice), general, "a.txt", b"hello").json()

    assert fetch(client_for(alice), file).status_code == 200
    assert fetch(client_for(bob), file).status_code == 404
    assert fetch(Client(), file).status_code == 404


def test_no_file_is_a_404(alice):
    assert client_for(alice).get("/files/12345/nothing.txt").status_code == 404
    assert client_for(alice).get("/files/12345/thumb/").status_code == 404


# Deleting -----------------------------------------------------------------------------------


@pytest.mark.parametrize("by", ["author", "staff", "admin"])
def test_a_deleted_messages_files_leave_the_storage_and_answer_404(alice, bob, general, staff, by):
    client = client_for(alice)
    image = upload(client, general, "a.png", image_bytes()).json()
    text = upload(client, general, "b.txt", b"text").json()
    message, _ = send(general, alice, ids=[image["id"], text["id"]], body="files")
    assert len(stored_names()) == 3  # two files and a thumbnail

    if by == "author":
        services.message_delete_as(room=general, message_id=message.pk, user=alice)
    elif by == "staff":
        services.message_delete_as(room=general, message_id=message.pk, user=staff)
    else:
        services.message_delete(message=message)

    assert stored_names() == set()
    assert not Attachment.objects.exists()
    for file in (image, text):
        assert fetch(client, file).status_code == 404
        assert fetch(client_for(bob), file).status_code == 404
    assert fetch(client, image, thumb=True).status_code == 404
    deleted = events.message_dict(Message.objects.get(pk=message.pk))
    assert deleted["files"] == []


def test_a_refused_deletion_keeps_the_files(alice, bob, general):
    file = upload(client_for(alice), general, "a.txt", b"text").json()
    message, _ = send(general, alice, ids=[file["id"]])

    with pytest.raises(ChatError):
        services.message_delete_as(room=general, message_id=message.pk, user=bob)

    assert len(stored_names()) == 1
    assert fetch(client_for(bob), file).status_code == 200


def test_a_deleted_room_takes_its_files_along(alice, make_room):
    room = make_room("temp")
    file = upload(client_for(alice), room, "a.png", image_bytes()).json()
    send(room, alice, ids=[file["id"]])

    room.delete()

    assert stored_names() == set()


def test_unsent_uploads_older_than_a_day_are_swept(alice, general):
    client = client_for(alice)
    old = upload(client, general, "old.png", image_bytes()).json()
    fresh = upload(client, general, "fresh.txt", b"fresh").json()
    old_sent = upload(client, general, "kept.txt", b"kept").json()
    send(general, alice, ids=[old_sent["id"]])
    day_ago = timezone.now() - timedelta(days=1, minutes=1)
    Attachment.objects.filter(pk__in=[old["id"], old_sent["id"]]).update(created_at=day_ago)
    out = io.StringIO()

    call_command("sweep_uploads", stdout=out)

    assert out.getvalue().strip() == "Deleted 1 unsent upload."
    assert set(Attachment.objects.values_list("pk", flat=True)) == {fresh["id"], old_sent["id"]}
    assert len(stored_names()) == 2


def test_the_msg_of_a_message_without_files_has_none(alice, general):
    [(message, _)] = services.messages_create(
        drafts=[services.MessageDraft(room=general, author=alice, body="hi", client_id=None)]
    )

    assert events.message_dict(message)["files"] == []
    assert json.loads(events.encode(events.message_dict(message)))["files"] == []


def test_the_room_page_shows_thumbnails_and_download_links_with_names_as_text(alice, general):
    client = client_for(alice)
    image = upload(client, general, '"><img src=x onerror=alert(1)>.png', image_bytes()).json()
    text = upload(client, general, "<b onmouseover=alert(1)>x.txt", b"hello").json()
    send(general, alice, ids=[image["id"], text["id"]], body="look")

    page = client.get(f"/chat/{general.slug}/").content.decode()

    assert (
        f'<img src="{image["thumb_url"]}" alt="&quot;&gt;&lt;img src=x onerror=alert(1)&gt;.png"'
        in page
    )
    assert 'width="800" height="400"' in page
    assert f'href="{text["url"]}" download="&lt;b onmouseover=alert(1)&gt;x.txt"' in page
    assert "<b onmouseover" not in page
    assert "<img src=x" not in page
    assert "(5\xa0bytes)" in page


def test_a_message_with_files_may_be_edited_to_no_text_and_keeps_its_files(alice, general):
    file = upload(client_for(alice), general, "a.txt", b"hello").json()
    message, _ = send(general, alice, ids=[file["id"]], body="caption")

    edited = services.message_edit(room=general, message_id=message.pk, editor=alice, body="")

    assert edited.body == ""
    assert events.message_dict(edited)["files"] == [file]
    [(plain, _)] = services.messages_create(
        drafts=[services.MessageDraft(room=general, author=alice, body="text", client_id="p")]
    )
    with pytest.raises(ChatError):
        services.message_edit(room=general, message_id=plain.pk, editor=alice, body="")
