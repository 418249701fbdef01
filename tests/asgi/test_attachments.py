"""Files over the socket: `send` with `attachments` broadcasts the message with its files;
an upload that is not the sender's own is refused and stores nothing."""

import pytest
from channels.db import database_sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile

from chat import services
from chat.models import Attachment, Message
from tests.support.sockets import joined_with_presence

pytestmark = pytest.mark.django_db(transaction=True)


def uploaded(room, user, name: str, data: bytes) -> int:
    file = SimpleUploadedFile(name, data)
    return services.attachment_upload(room=room, uploader=user, upload=file).pk


async def test_a_send_with_attachments_reaches_the_room_with_its_files(
    connect, alice, bob, general
):
    file_id = await database_sync_to_async(uploaded)(general, alice, "notes.txt", b"hello")
    sender, other = await connect(alice), await connect(bob)
    await joined_with_presence(sender, "general")
    await joined_with_presence(other, "general")
    await sender.expect("presence")

    ack = await sender.request(
        {"type": "send", "room": "general", "body": "", "client_id": "f1", "attachments": [file_id]}
    )
    received = (await other.expect("message"))["message"]

    assert ack["type"] == "ack"
    assert received["id"] == ack["id"]
    assert received["body"] == ""
    [file] = received["files"]
    assert (file["id"], file["name"], file["size"]) == (file_id, "notes.txt", 5)
    assert file["type"] == "text/plain; charset=utf-8"
    assert file["url"] == f"/files/{file_id}/notes.txt"
    assert file["thumb_url"] is None
    await sender.close()
    await other.close()


async def test_sending_someone_elses_upload_is_refused_and_stores_nothing(
    connect, alice, bob, general
):
    bobs = await database_sync_to_async(uploaded)(general, bob, "b.txt", b"bob's")
    socket = await connect(alice)
    await joined_with_presence(socket, "general")

    reply = await socket.request(
        {"type": "send", "room": "general", "body": "mine", "client_id": "x", "attachments": [bobs]}
    )

    assert (reply["type"], reply["code"]) == ("error", "bad_request")
    assert await socket.nothing()
    assert not await database_sync_to_async(Message.objects.exists)()
    tied = await database_sync_to_async(
        lambda: Attachment.objects.filter(message__isnull=False).exists()
    )()
    assert not tied
    await socket.close()
