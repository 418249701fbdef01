"""Editing and deleting messages, and read marks, over the real ASGI application.

Edits and deletions take the room's next seq, so they reach live sockets as frames with a
seq, and a client that missed them finds them in its next `since` replay (docs/protocol.md).
"""

import datetime

import pytest
from channels.db import database_sync_to_async
from django.test import Client
from django.utils import timezone

from chat.models import Message, ReadState, Room
from tests.support.factories import post_messages
from tests.support.sockets import joined_with_presence

pytestmark = pytest.mark.django_db(transaction=True)


async def posted(socket, body: str, client_id: str) -> dict:
    ack = await socket.request(
        {"type": "send", "room": "general", "body": body, "client_id": client_id}
    )
    assert ack["type"] == "ack", ack
    return ack


def stored(message_id: int) -> Message:
    return Message.objects.get(pk=message_id)


def last_seq(room: Room) -> int:
    return Room.objects.get(pk=room.pk).last_seq


# Edit -----------------------------------------------------------------------------------------


async def test_an_edit_reaches_the_room_with_its_own_seq_and_history_and_replay_show_it(
    connect, alice, bob, general
):
    author = await connect(alice)
    reader = await connect(bob)
    await joined_with_presence(author, "general")
    await joined_with_presence(reader, "general")
    await author.recv_until("presence")  # bob came online
    ack = await posted(author, "helo", "c1")
    await reader.recv_until("message")

    reply = await author.request(
        {"type": "edit", "room": "general", "id": ack["id"], "body": "hello"}
    )

    del reply["ref"]
    assert reply == {"type": "edited", "room": "general", "id": ack["id"], "seq": 2}
    heard = await reader.recv_until("message_edited")
    assert heard["seq"] == 2
    assert heard["message"]["id"] == ack["id"]
    assert (heard["message"]["seq"], heard["message"]["rev"]) == (1, 2)
    assert heard["message"]["body"] == "hello"
    assert heard["message"]["edited"]
    history = await reader.request({"type": "history", "room": "general"})
    assert [(m["body"], bool(m["edited"])) for m in history["messages"]] == [("hello", True)]
    replay = await reader.join("general", since=1)
    assert [(m["id"], m["rev"], m["body"]) for m in replay["messages"]] == [(ack["id"], 2, "hello")]
    assert replay["last_seq"] == 2
    page = await database_sync_to_async(Client().get)("/chat/general/")
    assert "(edited)" in page.content.decode()
    assert ">hello<" in page.content.decode()


async def test_an_edit_to_the_same_body_changes_nothing(connect, alice, general):
    author = await connect(alice)
    await joined_with_presence(author, "general")
    ack = await posted(author, "same", "c1")

    reply = await author.request(
        {"type": "edit", "room": "general", "id": ack["id"], "body": "same"}
    )

    assert (reply["type"], reply["seq"]) == ("edited", 1)
    assert await database_sync_to_async(last_seq)(general) == 1
    assert (await database_sync_to_async(stored)(ack["id"])).edited_at is None


async def test_edits_are_refused_after_the_window_for_others_and_for_bad_bodies(
    connect, alice, bob, general, settings
):
    author = await connect(alice)
    other = await connect(bob)
    await joined_with_presence(author, "general")
    await joined_with_presence(other, "general")
    ack = await posted(author, "original", "c1")
    old = await posted(author, "old one", "c2")
    long_ago = timezone.now() - datetime.timedelta(minutes=16)
    await database_sync_to_async(Message.objects.filter(pk=old["id"]).update)(created_at=long_ago)

    def edit(socket, message_id, body="changed"):
        frame = {"type": "edit", "room": "general", "id": message_id, "body": body}
        return socket.request(frame)

    assert (await edit(other, ack["id"]))["code"] == "forbidden"
    late = await edit(author, old["id"])
    assert late["code"] == "forbidden"
    assert "15 minutes" in late["message"]
    assert (await edit(author, ack["id"], "  "))["code"] == "bad_request"
    too_long = "x" * (settings.CHAT_MAX_MESSAGE_LENGTH + 1)
    assert (await edit(author, ack["id"], too_long))["code"] == "too_long"
    assert (await edit(author, 10**9))["code"] == "not_found"
    assert (await author.request({"type": "edit", "room": "general", "id": "1", "body": "x"}))[
        "code"
    ] == "bad_request"

    bodies = await database_sync_to_async(
        lambda: sorted(Message.objects.values_list("body", flat=True))
    )()
    assert bodies == ["old one", "original"]
    assert await database_sync_to_async(last_seq)(general) == 2  # no refusal took a seq


async def test_a_message_in_another_room_cannot_be_changed_through_this_one(
    connect, alice, general, make_room
):
    elsewhere = await database_sync_to_async(make_room)("elsewhere")
    author = await connect(alice)
    await joined_with_presence(author, "general")
    await joined_with_presence(author, "elsewhere")
    ack = await author.request(
        {"type": "send", "room": "elsewhere", "body": "over there", "client_id": "e1"}
    )

    edit = {"type": "edit", "room": "general", "id": ack["id"], "body": "moved?"}
    delete = {"type": "delete", "room": "general", "id": ack["id"]}

    assert (await author.request(edit))["code"] == "not_found"
    assert (await author.request(delete))["code"] == "not_found"
    message = await database_sync_to_async(stored)(ack["id"])
    assert (message.body, message.deleted_at, message.room_id) == ("over there", None, elsewhere.pk)


# Delete -----------------------------------------------------------------------------------------


async def test_an_author_deletes_their_message_live_and_replays_carry_the_deletion(
    connect, alice, bob, general
):
    author = await connect(alice)
    reader = await connect(bob)
    await joined_with_presence(author, "general")
    await joined_with_presence(reader, "general")
    first = await posted(author, "keep", "c1")
    doomed = await posted(author, "secret", "c2")

    reply = await author.request({"type": "delete", "room": "general", "id": doomed["id"]})

    assert (reply["type"], reply["id"], reply["seq"]) == ("deleted", doomed["id"], 3)
    heard = await reader.recv_until("message_deleted")
    assert heard == {"type": "message_deleted", "room": "general", "id": doomed["id"], "seq": 3}
    history = await reader.request({"type": "history", "room": "general"})
    assert [m["id"] for m in history["messages"]] == [first["id"]]
    replay = await reader.join("general", since=2)
    assert replay["messages"] == [
        {
            **replay["messages"][0],
            "id": doomed["id"],
            "deleted": True,
            "body": "",
            "html": "",
            "rev": 3,
        }
    ]
    assert "secret" not in str(replay)
    again = await author.request({"type": "delete", "room": "general", "id": doomed["id"]})
    assert again["code"] == "not_found"


async def test_only_the_author_or_staff_may_delete(connect, alice, bob, staff, general):
    author = await connect(alice)
    other = await connect(bob)
    moderator = await connect(staff)
    for socket in (author, other, moderator):
        await socket.join("general")
    ack = await posted(author, "spam?", "c1")

    refused = await other.request({"type": "delete", "room": "general", "id": ack["id"]})
    assert refused["code"] == "forbidden"
    assert (await database_sync_to_async(stored)(ack["id"])).deleted_at is None

    allowed = await moderator.request({"type": "delete", "room": "general", "id": ack["id"]})
    assert allowed["type"] == "deleted"
    assert (await database_sync_to_async(stored)(ack["id"])).deleted_at is not None


async def test_staff_may_not_edit_others_messages(connect, alice, staff, general):
    author = await connect(alice)
    moderator = await connect(staff)
    await author.join("general")
    await moderator.join("general")
    ack = await posted(author, "mine", "c1")

    reply = await moderator.request(
        {"type": "edit", "room": "general", "id": ack["id"], "body": "words in her mouth"}
    )

    assert reply["code"] == "forbidden"
    assert (await database_sync_to_async(stored)(ack["id"])).body == "mine"


# Read marks -------------------------------------------------------------------------------------


def read_mark(user, room) -> int | None:
    return ReadState.objects.filter(user=user, room=room).values_list("seq", flat=True).first()


async def test_a_read_mark_is_stored_and_reaches_the_users_other_tabs_only(
    connect, alice, bob, general
):
    await database_sync_to_async(general.members.add)(alice)  # unread counts: her rooms only
    await database_sync_to_async(post_messages)(general, bob, 5)
    tab = await connect(alice)
    other_tab = await connect(alice)
    someone_else = await connect(bob)
    await tab.join("general")
    await other_tab.join("general")
    await someone_else.join("general")

    reply = await tab.request({"type": "read", "room": "general", "seq": 3})

    del reply["ref"]
    assert reply == {"type": "read", "room": "general", "seq": 3}
    assert await other_tab.recv_until("read") == {"type": "read", "room": "general", "seq": 3}
    assert await database_sync_to_async(read_mark)(alice, general) == 3
    rejoined = await other_tab.join("general")
    assert (rejoined["read"], rejoined["unread"]) == (3, 2)  # bob's messages 4 and 5
    await someone_else.request({"type": "ping"})
    assert all(frame["type"] != "read" for frame in someone_else.unread)


async def test_a_read_mark_never_moves_back_nor_past_the_rooms_last_seq(connect, alice, general):
    await database_sync_to_async(post_messages)(general, alice, 5)
    tab = await connect(alice)
    await tab.join("general")

    ahead = await tab.request({"type": "read", "room": "general", "seq": 99})
    back = await tab.request({"type": "read", "room": "general", "seq": 2})

    assert (ahead["seq"], back["seq"]) == (5, 5)
    assert await database_sync_to_async(read_mark)(alice, general) == 5


async def test_reads_need_a_signed_in_user_in_the_room(connect, alice, general):
    anonymous = await connect()
    await anonymous.join("general")
    outsider = await connect(alice)

    assert (await anonymous.request({"type": "read", "room": "general", "seq": 0}))[
        "code"
    ] == "auth_required"
    assert (await outsider.request({"type": "read", "room": "general", "seq": 0}))[
        "code"
    ] == "not_joined"
    assert (await outsider.request({"type": "read", "room": "general", "seq": -1}))[
        "code"
    ] == "bad_request"
    assert await database_sync_to_async(ReadState.objects.count)() == 0


# Formatting -------------------------------------------------------------------------------


async def test_a_message_is_formatted_when_sent_and_again_when_edited_everywhere_it_is_read(
    connect, alice, bob, make_user, general
):
    """The stored HTML travels in the broadcast, history, replays and the page; an edit
    renders it anew; a mention links only an active account."""
    await database_sync_to_async(make_user)("gone", is_active=False)
    author = await connect(alice)
    reader = await connect(bob)
    await joined_with_presence(author, "general")
    await joined_with_presence(reader, "general")
    ack = await posted(author, "**hi** @bob @gone <b>x</b>", "c1")
    heard = (await reader.recv_until("message"))["message"]
    mention = (
        '<button type="button" class="mention person" data-username="bob"'
        ' aria-haspopup="dialog" aria-expanded="false">@bob</button>'
    )
    assert heard["body"] == "**hi** @bob @gone <b>x</b>"
    assert heard["html"] == f"<p><strong>hi</strong> {mention} @gone &lt;b&gt;x&lt;/b&gt;</p>"

    await author.request({"type": "edit", "room": "general", "id": ack["id"], "body": "`@bob`"})

    edited = (await reader.recv_until("message_edited"))["message"]
    assert edited["html"] == "<p><code>@bob</code></p>"
    stored_html = (await database_sync_to_async(stored)(ack["id"])).body_html
    assert stored_html == edited["html"]
    history = await reader.request({"type": "history", "room": "general"})
    assert [m["html"] for m in history["messages"]] == [edited["html"]]
    replay = await reader.join("general", since=0)
    assert [m["html"] for m in replay["messages"]] == [edited["html"]]
    page = (await database_sync_to_async(Client().get)("/chat/general/")).content.decode()
    assert '<div class="body"><p><code>@bob</code></p></div>' in page
    assert 'data-body="`@bob`"' in page

    await author.request({"type": "delete", "room": "general", "id": ack["id"]})
    gone = await reader.join("general", since=0)
    assert [(m["body"], m["html"]) for m in gone["messages"]] == [("", "")]
