"""Reactions over the real ASGI application: put on and taken back live for everyone in the
room, each change a place in the room's sequence (like an edit), so replays, history and
pages carry the same summary a missed `message_reactions` frame would have (docs/protocol.md).
"""

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from chat.models import Message, Reaction, Room
from tests.support.sockets import joined_with_presence

pytestmark = pytest.mark.django_db(transaction=True)


def react(message_id: int, emoji: str = "👍", *, on: bool = True, room: str = "general") -> dict:
    return {"type": "react", "room": room, "id": message_id, "emoji": emoji, "on": on}


async def posted(socket, body: str, client_id: str) -> dict:
    ack = await socket.request(
        {"type": "send", "room": "general", "body": body, "client_id": client_id}
    )
    assert ack["type"] == "ack", ack
    return ack


def last_seq(room: Room) -> int:
    return Room.objects.get(pk=room.pk).last_seq


def reaction_rows(message_id: int) -> list[tuple[str, str]]:
    rows = Reaction.objects.filter(message_id=message_id).order_by("pk")
    return list(rows.values_list("user__username", "emoji"))


async def two_in_general(connect, alice, bob):
    author, reader = await connect(alice), await connect(bob)
    await joined_with_presence(author, "general")
    await joined_with_presence(reader, "general")
    await author.recv_until("presence")  # bob came online
    return author, reader


async def test_reactions_reach_everyone_with_the_whole_summary_and_their_own_seqs(
    connect, alice, bob, general
):
    author, reader = await two_in_general(connect, alice, bob)
    ack = await posted(author, "ship it?", "c1")
    await reader.recv_until("message")

    reply = await reader.request(react(ack["id"]))
    del reply["ref"]
    assert reply == {"type": "reacted", "room": "general", "id": ack["id"], "seq": 2}
    for socket in (author, reader):  # the reactor's own socket hears the same broadcast
        heard = await socket.recv_until("message_reactions")
        assert heard == {
            "type": "message_reactions",
            "room": "general",
            "id": ack["id"],
            "seq": 2,
            "reactions": [{"emoji": "👍", "count": 1, "users": ["bob"]}],
        }

    await author.request(react(ack["id"]))
    await author.request(react(ack["id"], "🎉"))
    await reader.recv_until("message_reactions")
    heard = await reader.recv_until("message_reactions")
    assert heard["seq"] == 4
    assert heard["reactions"] == [
        {"emoji": "👍", "count": 2, "users": ["bob", "alice"]},
        {"emoji": "🎉", "count": 1, "users": ["alice"]},
    ]

    taken_back = await reader.request(react(ack["id"], on=False))
    assert taken_back["seq"] == 5
    while (heard := await author.recv_until("message_reactions"))["seq"] < 5:
        pass
    assert heard["reactions"][0] == {"emoji": "👍", "count": 1, "users": ["alice"]}
    assert await database_sync_to_async(reaction_rows)(ack["id"]) == [
        ("alice", "👍"),
        ("alice", "🎉"),
    ]
    assert (await database_sync_to_async(Message.objects.get)(pk=ack["id"])).rev == 5


async def test_asking_again_for_what_holds_changes_nothing_and_takes_no_seq(
    connect, alice, bob, general
):
    author, reader = await two_in_general(connect, alice, bob)
    ack = await posted(author, "hi", "c1")
    await reader.recv_until("message")
    first = await reader.request(react(ack["id"], "❤️"))
    await reader.recv_until("message_reactions")
    await author.recv_until("message_reactions")

    retried = await reader.request(react(ack["id"], "❤"))  # the heart, spelled without U+FE0F
    never_there = await reader.request(react(ack["id"], "😢", on=False))

    assert retried["seq"] == never_there["seq"] == first["seq"] == 2
    assert await database_sync_to_async(last_seq)(general) == 2
    assert await database_sync_to_async(reaction_rows)(ack["id"]) == [("bob", "❤️")]
    assert await author.nothing()
    assert await reader.nothing()


@pytest.mark.parametrize("emoji", ["👍🏽", "💩", "<b>x</b>", "\u200b", "👍👍", ""])
async def test_an_emoji_off_the_palette_is_refused_and_changes_nothing(
    connect, alice, general, emoji
):
    socket = await connect(alice)
    await socket.join("general")
    ack = await posted(socket, "hi", "c1")

    reply = await socket.request(react(ack["id"], emoji))

    assert reply["code"] == "bad_request"
    assert await database_sync_to_async(reaction_rows)(ack["id"]) == []
    assert await database_sync_to_async(last_seq)(general) == 1


async def test_a_client_that_missed_the_frames_finds_the_reactions_in_its_replay(
    connect, alice, bob, general
):
    author = await connect(alice)
    await author.join("general")
    ack = await posted(author, "vote", "c1")
    other = await posted(author, "untouched", "c2")
    await author.request(react(ack["id"], "✅"))
    await author.request(react(ack["id"], "👀"))
    await author.request(react(ack["id"], "👀", on=False))

    late = await connect(bob)  # was away from seq 2 on: heard none of it
    replay = await late.join("general", since=2)

    assert [(m["id"], m["rev"]) for m in replay["messages"]] == [(ack["id"], 5)]
    assert replay["messages"][0]["reactions"] == [{"emoji": "✅", "count": 1, "users": ["alice"]}]
    assert replay["last_seq"] == 5
    latest = await late.join("general")  # a page and history carry the same summary
    by_id = {m["id"]: m["reactions"] for m in latest["messages"]}
    assert by_id == {ack["id"]: replay["messages"][0]["reactions"], other["id"]: []}
    history = await late.request({"type": "history", "room": "general"})
    assert history["messages"][0]["reactions"] == by_id[ack["id"]]


async def test_an_edit_keeps_the_reactions_in_its_frame(connect, alice, bob, general):
    author, reader = await two_in_general(connect, alice, bob)
    ack = await posted(author, "helo", "c1")
    await reader.request(react(ack["id"], "😂"))

    await author.request({"type": "edit", "room": "general", "id": ack["id"], "body": "hello"})

    heard = await reader.recv_until("message_edited")
    assert heard["message"]["reactions"] == [{"emoji": "😂", "count": 1, "users": ["bob"]}]


async def test_a_deleted_message_loses_its_reactions_and_takes_no_more(
    connect, alice, bob, general
):
    author, reader = await two_in_general(connect, alice, bob)
    ack = await posted(author, "oops", "c1")
    await reader.request(react(ack["id"], "😮"))

    await author.request({"type": "delete", "room": "general", "id": ack["id"]})

    assert await database_sync_to_async(reaction_rows)(ack["id"]) == []
    replay = await reader.join("general", since=1)
    assert [(m["deleted"], m["reactions"]) for m in replay["messages"]] == [(True, [])]
    again = await reader.request(react(ack["id"], "😮"))
    assert again["code"] == "not_found"
    assert await database_sync_to_async(last_seq)(general) == 3


async def test_a_message_of_another_room_cannot_be_reacted_to_through_this_one(
    connect, alice, general, make_room
):
    elsewhere = await database_sync_to_async(make_room)("elsewhere")
    socket = await connect(alice)
    await socket.join("general")
    await socket.join(elsewhere.slug)
    ack = await socket.request(
        {"type": "send", "room": elsewhere.slug, "body": "there", "client_id": "c1"}
    )

    reply = await socket.request(react(ack["id"]))

    assert reply["code"] == "not_found"
    assert await database_sync_to_async(reaction_rows)(ack["id"]) == []


async def test_reactions_beyond_their_rate_are_refused(connect, settings, alice, general):
    settings.CHAT_REACT_RATE_LIMIT = "2/10"
    socket = await connect(alice)
    await socket.join("general")
    ack = await posted(socket, "hi", "c1")

    replies = [await socket.request(react(ack["id"], e)) for e in ("👍", "🎉", "🙏")]

    assert [r["type"] for r in replies] == ["reacted", "reacted", "error"]
    assert replies[2]["code"] == "rate_limited"
    assert len(await database_sync_to_async(reaction_rows)(ack["id"])) == 2


async def test_the_page_renders_the_reaction_bar_with_mine_pressed(connect, alice, bob, general):
    author, reader = await two_in_general(connect, alice, bob)
    ack = await posted(author, "lunch?", "c1")
    await reader.request(react(ack["id"], "🎉"))
    await author.request(react(ack["id"], "🎉"))
    await author.request(react(ack["id"], "🙏"))

    client = Client()
    await database_sync_to_async(client.force_login)(bob)
    html = (await database_sync_to_async(client.get)("/chat/general/")).content.decode()

    bar = html[html.index('class="reactions"') :]
    bar = bar[: bar.index("</div>")]
    assert bar.count('class="reaction"') == 2
    assert 'data-emoji="🎉" aria-pressed="true"' in bar
    assert 'data-emoji="🙏" aria-pressed="false"' in bar
    assert "bob and alice" in bar
