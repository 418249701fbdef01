"""Replies and threads over the real ASGI application: a reply quotes a message of its own
room; a thread reply hangs off its root (a reply to a thread reply too), is kept out of the
main log unless also sent to the room, and bumps the root's summary with a seq of its own,
so live frames and replays agree; each user has a read mark per thread (docs/protocol.md).
"""

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from chat import selectors, services
from chat.models import Message, Room, ThreadRead
from tests.support.sockets import joined_with_presence

pytestmark = pytest.mark.django_db(transaction=True)


def send(body: str, client_id: str, room: str = "general", **fields) -> dict:
    return {"type": "send", "room": room, "body": body, "client_id": client_id, **fields}


async def posted(socket, body: str, client_id: str, **fields) -> dict:
    ack = await socket.request(send(body, client_id, **fields))
    assert ack["type"] == "ack", ack
    return ack


def snapshot() -> tuple:
    return (
        list(Message.objects.order_by("pk").values_list("pk", "rev", "thread_count")),
        list(Room.objects.order_by("pk").values_list("last_seq", flat=True)),
        list(ThreadRead.objects.values_list("user_id", "root_id", "seq")),
    )


async def two_in_general(connect, alice, bob):
    author, reader = await connect(alice), await connect(bob)
    await joined_with_presence(author, "general")
    await joined_with_presence(reader, "general")
    await author.recv_until("presence")  # bob came online
    return author, reader


async def test_a_reply_quotes_its_original_as_plain_text_for_everyone(connect, alice, bob, general):
    author, reader = await two_in_general(connect, alice, bob)
    original = await posted(author, "**ship**  it\non friday?", "c1")
    await posted(reader, "yes", "c2", reply_to=original["id"])

    heard = (await author.recv_until("message"))["message"]
    heard = (await author.recv_until("message"))["message"]
    assert heard["reply_to"] == {
        "id": original["id"],
        "seq": original["seq"],
        "author": "alice",
        "excerpt": "**ship** it on friday?",
        "deleted": False,
    }
    assert heard["thread"] is None
    # The page and a replay carry the same quote.
    history = await reader.request({"type": "history", "room": "general"})
    assert history["messages"][-1]["reply_to"] == heard["reply_to"]


@pytest.mark.parametrize("field", ["reply_to", "thread"])
async def test_a_reply_to_another_rooms_or_a_missing_or_deleted_message_is_refused_clearly(
    connect, alice, general, make_room, field
):
    other = await database_sync_to_async(make_room)("other")
    elsewhere = await database_sync_to_async(services.messages_create)(
        drafts=[services.MessageDraft(room=other, author=alice, body="there", client_id="x")]
    )
    socket = await connect(alice)
    await joined_with_presence(socket, "general")
    gone = await posted(socket, "soon gone", "c0")
    await socket.request({"type": "delete", "room": "general", "id": gone["id"]})
    before = await database_sync_to_async(snapshot)()

    for target in (elsewhere[0][0].pk, 999_999, gone["id"]):
        reply = await socket.request(send("hi", f"c-{target}", **{field: target}))
        assert reply["type"] == "error"
        assert reply["code"] == "not_found"
        assert reply["message"].startswith(f"No message {target} in this room to ")

    assert await database_sync_to_async(snapshot)() == before


async def test_a_thread_reply_bumps_its_roots_summary_with_a_seq_of_its_own(
    connect, alice, bob, general
):
    author, reader = await two_in_general(connect, alice, bob)
    root = await posted(author, "thread here", "c1")
    await reader.recv_until("message")
    await author.recv_until("message")

    reply = await posted(reader, "in the thread", "c2", thread=root["id"])
    assert reply["seq"] == 2
    for socket in (author, reader):
        message = (await socket.recv_until("message"))["message"]
        assert message["thread"] == {"root": root["id"], "also_in_room": False}
        summary = await socket.recv_until("message_thread")
        assert summary["id"] == root["id"]
        assert summary["seq"] == 3
        assert summary["thread_summary"]["count"] == 1
        assert summary["thread_summary"]["last_seq"] == 2
    # The replier has read the thread up to their own reply, on every tab.
    mark = await reader.recv_until("thread_read")
    assert (mark["id"], mark["seq"]) == (root["id"], 2)

    # A replay from before the reply brings both: the reply, and the root at its new rev.
    replay = await reader.request({"type": "join", "room": "general", "since": 1})
    by_id = {m["id"]: m for m in replay["messages"]}
    assert by_id[root["id"]]["rev"] == 3
    assert by_id[root["id"]]["thread_summary"] == summary["thread_summary"]
    assert by_id[reply["id"]]["thread"]["root"] == root["id"]
    assert replay["thread_reads"] == {str(root["id"]): 2}


async def test_a_reply_to_a_thread_reply_belongs_to_the_same_root(connect, alice, general):
    socket = await connect(alice)
    await joined_with_presence(socket, "general")
    root = await posted(socket, "root", "c1")
    first = await posted(socket, "first", "c2", thread=root["id"])
    second = await posted(socket, "second", "c3", thread=first["id"], reply_to=first["id"])

    stored = await database_sync_to_async(Message.objects.get)(pk=second["id"])
    assert stored.thread_root_id == root["id"]
    assert stored.reply_to_id == first["id"]
    thread = await socket.request({"type": "thread", "room": "general", "id": first["id"]})
    assert thread["root"]["id"] == root["id"]
    assert thread["root"]["thread_summary"]["count"] == 2
    assert [m["id"] for m in thread["messages"]] == [first["id"], second["id"]]
    assert thread["read"] == second["seq"]


async def test_thread_replies_stay_out_of_the_main_log_unless_also_sent_to_the_room(
    connect, alice, general
):
    socket = await connect(alice)
    await joined_with_presence(socket, "general")
    root = await posted(socket, "root", "c1")
    await posted(socket, "only in the thread", "c2", thread=root["id"])
    shared = await posted(socket, "in both", "c3", thread=root["id"], also_in_room=True)

    history = await socket.request({"type": "history", "room": "general"})
    assert [m["body"] for m in history["messages"]] == ["root", "in both"]
    assert history["messages"][1]["thread"] == {"root": root["id"], "also_in_room": True}
    page = await database_sync_to_async(Client().get)("/chat/general/")
    assert b"in both" in page.content
    assert b"only in the thread" not in page.content
    fresh = await connect(alice)
    joined = await fresh.request({"type": "join", "room": "general"})
    assert [m["id"] for m in joined["messages"]][-1] == shared["id"]
    assert "only in the thread" not in [m["body"] for m in joined["messages"]]


async def test_deleting_a_thread_reply_lowers_the_count_with_its_own_seq(
    connect, alice, bob, general
):
    author, reader = await two_in_general(connect, alice, bob)
    root = await posted(author, "root", "c1")
    reply = await posted(author, "oops", "c2", thread=root["id"])
    await reader.recv_until("message_thread")

    deleted = await author.request({"type": "delete", "room": "general", "id": reply["id"]})
    assert deleted["seq"] == 4
    await reader.recv_until("message_deleted")
    summary = await reader.recv_until("message_thread")
    assert (summary["seq"], summary["thread_summary"]["count"]) == (5, 0)
    replay = await reader.request({"type": "join", "room": "general", "since": 3})
    by_id = {m["id"]: m for m in replay["messages"]}
    assert by_id[root["id"]]["thread_summary"] is None  # no live reply left


async def test_thread_read_marks_move_forward_only_and_reach_every_tab(
    connect, alice, bob, general
):
    author, reader = await two_in_general(connect, alice, bob)
    other_tab = await connect(bob)
    await other_tab.join("general")
    root = await posted(author, "root", "c1")
    await posted(author, "r1", "c2", thread=root["id"])
    await posted(author, "r2", "c3", thread=root["id"])

    unread = await reader.request({"type": "thread", "room": "general", "id": root["id"]})
    assert unread["read"] is None
    marked = await reader.request(
        {"type": "thread_read", "room": "general", "id": root["id"], "seq": 10**6}
    )
    assert marked["seq"] == 5  # never past the room's counter
    heard = await other_tab.recv_until("thread_read")
    assert (heard["id"], heard["seq"]) == (root["id"], 5)
    back = await reader.request(
        {"type": "thread_read", "room": "general", "id": root["id"], "seq": 1}
    )
    assert back["seq"] == 5
    refused = await reader.request(
        {"type": "thread_read", "room": "general", "id": 999_999, "seq": 1}
    )
    assert refused["code"] == "not_found"


def test_thread_page_of_a_reply_is_its_roots_and_needs_a_live_root(alice, general):
    [(root, _)] = services.messages_create(
        drafts=[services.MessageDraft(room=general, author=alice, body="root", client_id="a")]
    )
    [(reply, _)] = services.messages_create(
        drafts=[
            services.MessageDraft(
                room=general, author=alice, body="r", client_id="b", thread=root.pk
            )
        ]
    )
    page = selectors.thread_page(room=general, root_id=reply.pk, user=alice, limit=10)
    assert page.root.pk == root.pk
    assert [m.pk for m in page.messages] == [reply.pk]
    services.message_delete(message=root)
    with pytest.raises(services.ChatError) as refused:
        selectors.thread_page(room=general, root_id=root.pk, user=alice, limit=10)
    assert refused.value.code.value == "not_found"


async def test_a_reply_only_in_its_thread_is_not_the_rooms_unread_nor_a_room_notification(
    connect, alice, bob, general
):
    """The thread's dot tells of it; the room's count and "all messages" do not. A reply also
    sent to the room, and a mention in a thread, still do."""

    def bob_follows_everything() -> None:
        services.membership_join(room=general, user=bob)
        services.membership_notify(room=general, user=bob, notify="all")

    await database_sync_to_async(bob_follows_everything)()
    author, reader = await two_in_general(connect, alice, bob)
    root = await posted(author, "plans?", "r1")
    await reader.recv_until("notification")  # the root: bob hears every message

    await posted(author, "only in the thread", "t1", thread=root["id"])
    await posted(author, "in both", "t2", thread=root["id"], also_in_room=True)
    await posted(author, "@bob see this", "t3", thread=root["id"])
    reasons = []
    while len(reasons) < 2:
        frame = await reader.recv_until("notification")
        reasons.append((frame["reason"], frame["message"]["body"]))

    assert reasons == [("message", "in both"), ("mention", "@bob see this")]
    _, unread = await database_sync_to_async(selectors.room_unread)(room=general, user=bob)
    assert unread == 2  # the root and "in both"; not the two replies only in the thread
