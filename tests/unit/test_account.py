"""The account page: profile, avatar and email, for the signed-in user only."""

import io

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from chat import avatars, selectors, services
from chat.models import Ban, Membership, Profile, Room

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_client(alice) -> Client:
    client = Client()
    client.force_login(alice)
    return client


def upload(name: str, data: bytes, content_type: str = "image/png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


def jpeg_with_gps(size: tuple[int, int] = (640, 480)) -> bytes:
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0), 3: "W", 4: (0.0, 7.0, 0.0)}
    out = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()


def form(**fields: object) -> dict[str, object]:
    return {"display_name": "", "status": "", "time_zone": "", "email": "", **fields}


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get("/account/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/account/"
    assert client.post("/account/", form(display_name="x")).status_code == 302
    assert not Profile.objects.exists()


def test_the_page_shows_the_form_a_password_link_and_initials(alice_client):
    page = alice_client.get("/account/").content.decode()

    assert 'enctype="multipart/form-data"' in page
    assert "csrfmiddlewaretoken" in page
    assert 'href="/accounts/password_change/"' in page
    assert 'class="avatar initials hue-' in page
    assert 'href="/account/"' in page  # the header's link


def test_saving_makes_the_profile_and_changes_the_email(alice_client, alice):
    response = alice_client.post(
        "/account/",
        form(
            display_name="  Alice Liddell ",
            status="down the rabbit hole",
            time_zone="Europe/London",
            email="alice@example.com",
        ),
    )

    assert response.status_code == 302
    assert response["Location"] == "/account/"
    profile = selectors.profile_of(user=alice)
    assert profile.display_name == "Alice Liddell"
    assert profile.status == "down the rabbit hole"
    assert profile.time_zone == "Europe/London"
    alice.refresh_from_db()
    assert alice.email == "alice@example.com"
    assert "Alice Liddell" in alice_client.get("/account/").content.decode()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"),
        ({"display_name": "x" * 51}, "display_name"),
        ({"display_name": "evil\u202eeman"}, "display_name"),
        ({"display_name": "two\nlines"}, "display_name"),
        ({"display_name": "nul\x00"}, "display_name"),
        ({"display_name": "\u3164\u200b"}, "display_name"),
        ({"status": "s" * 101}, "status"),
        ({"email": "not an address"}, "email"),
    ],
    ids=["zone", "long-name", "bidi", "newline", "nul", "blank", "long-status", "email"],
)
def test_bad_input_is_refused_and_saves_nothing(alice_client, fields, field):
    response = alice_client.post("/account/", form(**fields))

    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert not Profile.objects.exists()


def test_an_avatar_is_stored_as_a_128_px_png_without_its_exif(alice_client, alice):
    response = alice_client.post(
        "/account/", {**form(), "avatar": upload("me.jpg", jpeg_with_gps(), "image/jpeg")}
    )

    assert response.status_code == 302
    profile = selectors.profile_of(user=alice)
    assert profile.avatar.name.startswith("avatars/")
    assert profile.avatar.name.endswith(".png")
    assert "me" not in profile.avatar.name.removeprefix("avatars/")
    with default_storage.open(profile.avatar.name) as stored:
        image = Image.open(stored)
        image.load()
    assert image.format == "PNG"
    assert image.size == (128, 128)
    assert not image.getexif()
    assert "exif" not in image.info
    page = alice_client.get("/account/").content.decode()
    assert f'<img class="avatar" src="/media/{profile.avatar.name}"' in page


def test_a_new_avatar_replaces_the_old_file_and_removing_it_brings_back_initials(
    alice_client, alice, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post("/account/", {**form(), "avatar": upload("a.jpg", jpeg_with_gps())})
    first = selectors.profile_of(user=alice).avatar.name
    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post("/account/", {**form(), "avatar": upload("b.jpg", jpeg_with_gps())})
    second = selectors.profile_of(user=alice).avatar.name

    assert second != first
    assert not default_storage.exists(first)
    assert default_storage.exists(second)

    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post("/account/", form(remove_avatar="on"))

    assert not selectors.profile_of(user=alice).avatar
    assert not default_storage.exists(second)


@pytest.mark.parametrize(
    ("name", "data", "content_type"),
    [
        ("notes.png", b"this is a text file wearing a .png name", "image/png"),
        (
            "logo.svg",
            b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)">'
            b"<script>alert(2)</script></svg>",
            "image/svg+xml",
        ),
        ("logo.png", b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', "image/png"),
    ],
    ids=["text-named-png", "svg", "svg-named-png"],
)
def test_what_is_not_an_image_is_refused_with_a_clear_error(alice_client, name, data, content_type):
    response = alice_client.post(
        "/account/", {**form(), "avatar": upload(name, data, content_type)}
    )

    assert response.status_code == 400
    assert response.context["form"].errors["avatar"] == [
        "That is not an image we can use: upload a PNG, JPEG, GIF or WebP."
    ]
    assert not Profile.objects.exists()


def test_an_avatar_over_2_mib_is_refused(alice_client):
    big = b"\xff\xd8\xff" + b"\0" * avatars.AVATAR_MAX_BYTES

    response = alice_client.post("/account/", {**form(), "avatar": upload("big.jpg", big)})

    assert response.status_code == 400
    assert response.context["form"].errors["avatar"] == ["The image is larger than 2 MiB."]


def test_a_decompression_bomb_is_refused(alice_client):
    out = io.BytesIO()
    Image.new("L", (10_000, 10_000)).save(out, format="PNG", optimize=True)

    response = alice_client.post(
        "/account/", {**form(), "avatar": upload("bomb.png", out.getvalue())}
    )

    assert response.status_code == 400
    assert "too large" in response.context["form"].errors["avatar"][0]


def test_a_post_without_the_csrf_token_is_refused(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)

    response = client.post("/account/", form(display_name="forged"))

    assert response.status_code == 403
    assert not Profile.objects.exists()


def test_the_password_change_page_is_the_sites_own(alice_client):
    response = alice_client.get("/accounts/password_change/")

    assert response.status_code == 200
    assert response.templates[0].name == "registration/password_change_form.html"
    assert 'class="site-header"' in response.content.decode()


def test_media_is_served_in_debug_only(alice_client, settings):
    default_storage.save("avatars/x.png", io.BytesIO(b"png"))

    assert alice_client.get("/media/avatars/x.png").status_code == 404
    settings.DEBUG = True
    assert alice_client.get("/media/avatars/x.png").status_code == 200


def test_staff_may_edit_a_profile_in_the_admin_under_the_same_rules(client, staff, alice):
    Profile.objects.create(user=alice, display_name="Alice")
    client.force_login(staff)
    url = f"/admin/chat/profile/{Profile.objects.get().pk}/change/"

    refused = client.post(url, {"display_name": "ecila\u202e", "status": "", "time_zone": ""})
    cleared = client.post(url, {"display_name": "", "status": "", "time_zone": ""})

    assert refused.status_code == 200
    assert "text-direction controls" in refused.content.decode()
    assert cleared.status_code == 302
    assert selectors.profile_of(user=alice).display_name == ""
    assert client.get("/admin/chat/profile/add/").status_code == 403


# Notifications: every room of the user's on one form ----------------------------------------


def levels(user) -> dict[str, str]:
    return dict(Membership.objects.filter(user=user).values_list("room__slug", "notify"))


def test_the_account_page_lists_each_room_with_its_notification_setting(
    alice_client, alice, bob, make_room
):
    team = make_room("team", members=(alice,))
    make_room("gone", members=(alice,), is_archived=True)
    make_room("shut", members=(alice,))
    Ban.objects.create(room=Room.objects.get(slug="shut"), user=alice)
    make_room("theirs", members=(bob,))
    dm = services.direct_room_get_or_create(user=alice, other=bob)
    Membership.objects.filter(room=team, user=alice).update(notify="mute")

    page = alice_client.get("/account/").content.decode()

    assert 'name="notify-team"' in page
    assert f'name="notify-{dm.slug}"' in page
    assert '<option value="mute" selected>' in page
    assert '<option value="all" selected>' in page  # the DM's default
    for hidden in ("gone", "shut", "theirs"):  # archived, banned, not theirs
        assert f'name="notify-{hidden}"' not in page


def test_saving_notifications_changes_the_rooms_named_and_only_the_users_own(
    alice_client, alice, bob, make_room
):
    make_room("team", members=(alice, bob))
    make_room("games", members=(alice,))
    make_room("theirs", members=(bob,))

    answer = alice_client.post(
        "/account/notifications/", {"notify-team": "all", "notify-theirs": "mute"}
    )

    assert answer.status_code == 302
    assert answer["Location"].endswith("#notifications-heading")
    assert levels(alice) == {"team": "all", "games": "mentions"}
    assert levels(bob)["theirs"] == "mentions"  # another's room: not hers to set
    assert levels(bob)["team"] == "mentions"


def test_one_refused_level_saves_none(alice_client, alice, make_room):
    make_room("team", members=(alice,))
    make_room("games", members=(alice,))

    alice_client.post("/account/notifications/", {"notify-team": "mute", "notify-games": "loud"})
    page = alice_client.get("/account/").content.decode()

    assert levels(alice)["team"] == levels(alice)["games"] == "mentions"
    assert "Notify must be one of" in page


def test_anonymous_visitors_cannot_save_notifications(client):
    answer = client.post("/account/notifications/", {"notify-general": "mute"})

    assert answer.status_code == 302
    assert "/login" in answer["Location"]
