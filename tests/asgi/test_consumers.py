"""The WebSocket protocol, driven through the real ASGI application (docs/protocol.md)."""

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.core.files.base import ContentFile
from django.test import override_settings

from chat import services
from chat.models import Message, Room
from chat.protocol.events import room_group
from chat.realtime import origins, transport
from chat.realtime.layer_events import carrier
from chat.realtime.runtime import runtime_for_loop
from chatsite.asgi import application
from tests.support.factories import post_messages
from tests.support.sockets import (
    HOST,
    ORIGIN,
    encoding_like_daphne,
    joined_with_presence,
    session_cookie,
)

pytestmark = pytest.mark.django_db(transaction=True)


def count_messages(**filters) -> int:
    return Message.objects.filter(**filters).count()


def set_profile(user, **fields) -> None:
    services.profile_update(
        user=user,
        display_name=fields.get("display_name", ""),
        status="",
        time_zone="",
        email="",
        avatar=fields.get("avatar"),
    )


def receive_tasks() -> list[asyncio.Task]:
    """Tasks that only wait for a socket's next message (channels' await_many_dispatch makes
    one per socket and message)."""
    return [t for t in asyncio.all_tasks() if t.get_coro().__qualname__ == "Queue.get"]


async def test_an_idle_socket_keeps_no_task_waiting_for_its_next_message(connect, general):
    """Each open socket reads its messages in its own task: an idle one holds no other."""
    sockets = [await connect() for _ in range(3)]
    for socket in sockets:
        await socket.join("general")

    assert receive_tasks() == []


async def test_a_message_shows_its_authors_display_name_and_avatar_as_they_are_now(
    connect, alice, general
):
    """The socket's user was loaded at connect; a name changed since still reaches the frame."""
    socket = await connect(alice)
    await joined_with_presence(socket, "general")
    await database_sync_to_async(set_profile)(alice, display_name="Alice <b>L</b>")

    await socket.request({"type": "send", "room": "general", "body": "one", "client_id": "c-1"})
    # Each save also tells every socket `profile` (skipped here: the message is the point).
    first = (await socket.recv_until("message"))["message"]
    await database_sync_to_async(set_profile)(
        alice, display_name="Al", avatar=ContentFile(b"png", name="x.png")
    )
    await socket.request({"type": "send", "room": "general", "body": "two", "client_id": "c-2"})
    second = (await socket.recv_until("message"))["message"]

    assert (first["author"], first["author_display"], first["author_avatar"]) == (
        "alice",
        "Alice <b>L</b>",
        "",
    )
    assert second["author_display"] == "Al"
    assert second["author_avatar"].startswith("/media/avatars/")
    (replayed,) = (await socket.join("general", since=1))["messages"]
    assert replayed["author_display"] == "Al"
    await socket.close()


# Handshake ---------------------------------------------------------------------------------


async def test_handshake_from_an_allowed_origin_is_accepted_for_anonymous_readers(connect):
    socket = await connect()
    assert socket.open
    await socket.close()


@pytest.mark.parametrize("origin", ["http://evil.example", None])
async def test_handshake_with_a_foreign_or_missing_origin_is_refused(connect, alice, origin):
    with pytest.raises(ConnectionRefusedError):
        await connect(alice, origin=origin)


# (Host header of the handshake, Origin, accepted): an origin is the site's only if scheme,
# host and port all match.
ORIGINS = [
    pytest.param("127.0.0.1:8000", "http://127.0.0.1:8000", True, id="same"),
    pytest.param("localhost", "http://LOCALHOST:80", True, id="default-port-and-case"),
    pytest.param("[::1]:8000", "http://[::1]:8000", True, id="ipv6"),
    pytest.param("127.0.0.1:8000", "http://localhost:9999", False, id="other-host-and-port"),
    pytest.param("127.0.0.1:8000", "http://127.0.0.1:9999", False, id="other-port"),
    pytest.param("127.0.0.1:8000", "https://127.0.0.1", False, id="other-scheme"),
    pytest.param("127.0.0.1:8000", "https://127.0.0.1:8000", False, id="https-same-port"),
    pytest.param("localhost", "http://127.0.0.1", False, id="another-allowed-host"),
    pytest.param("evil.example", "http://evil.example", False, id="host-not-allowed"),
    pytest.param("localhost", "null", False, id="null"),
    pytest.param("localhost", "file://localhost", False, id="file"),
    pytest.param("localhost", "http://localhost:x", False, id="bad-port"),
    pytest.param("", "http://localhost", False, id="no-host"),
]


@pytest.mark.parametrize(("host", "origin", "accepted"), ORIGINS)
async def test_the_origin_must_match_the_sites_scheme_host_and_port(
    connect, alice, host, origin, accepted
):
    if accepted:
        assert (await connect(alice, host=host, origin=origin)).open
    else:
        with pytest.raises(ConnectionRefusedError):
            await connect(alice, host=host, origin=origin)


@pytest.mark.parametrize(
    ("origin", "accepted"),
    [
        ("https://chat.example.com", True),
        ("https://eu.chat.example.com", True),  # the wildcard entry
        ("http://chat.example.com", False),
        ("https://chat.example.com:8443", False),
        ("https://chat.example.com.evil.example", False),
    ],
)
async def test_behind_a_tls_proxy_the_https_origin_and_trusted_origins_are_accepted(
    connect, settings, alice, origin, accepted
):
    settings.HTTPS = True
    settings.ALLOWED_HOSTS = ["chat.example.com", ".chat.example.com"]
    settings.CSRF_TRUSTED_ORIGINS = ["https://chat.example.com", "https://*.chat.example.com"]
    if accepted:
        assert (await connect(alice, host="internal:8000", origin=origin)).open
    else:
        with pytest.raises(ConnectionRefusedError):
            await connect(alice, host="internal:8000", origin=origin)


# The Origin check's answers are kept (chat/realtime/origins.py): a change of any setting
# they depend on must change them. Each case: the settings first, the change, the handshake,
# and whether it is accepted before and after the change.
SETTING_CHANGES = [
    pytest.param(
        {},
        {"ALLOWED_HOSTS": ["elsewhere.example"]},
        ("127.0.0.1:8000", "http://127.0.0.1:8000"),
        (True, False),
        id="ALLOWED_HOSTS",
    ),
    pytest.param(
        {},
        {"HTTPS": True},
        ("127.0.0.1:8000", "http://127.0.0.1:8000"),
        (True, False),
        id="HTTPS",
    ),
    pytest.param(
        {},
        {"CSRF_TRUSTED_ORIGINS": ["https://trusted.example"]},
        ("127.0.0.1:8000", "https://trusted.example"),
        (False, True),
        id="CSRF_TRUSTED_ORIGINS",
    ),
    pytest.param(
        {"ALLOWED_HOSTS": [], "DEBUG": False},
        {"DEBUG": True},
        ("localhost", "http://localhost"),
        (False, True),
        id="DEBUG",
    ),
]


def test_every_setting_the_origin_check_reads_is_changed_below():
    assert {case.id for case in SETTING_CHANGES} == origins.ORIGIN_SETTINGS


@pytest.mark.parametrize(("first", "change", "handshake", "accepted"), SETTING_CHANGES)
async def test_the_origin_checks_kept_answers_follow_a_change_of_settings(
    connect, settings, alice, first, change, handshake, accepted
):
    host, origin = handshake
    before, after = accepted

    async def handshakes_are(expected: bool) -> None:
        for _ in range(2):  # the second is answered from what the first left kept
            if expected:
                assert (await connect(alice, host=host, origin=origin)).open
            else:
                with pytest.raises(ConnectionRefusedError):
                    await connect(alice, host=host, origin=origin)

    for name, value in first.items():
        setattr(settings, name, value)
    await handshakes_are(before)
    for name, value in change.items():
        setattr(settings, name, value)
    await handshakes_are(after)


# join --------------------------------------------------------------------------------------


async def test_join_returns_room_details_latest_fifty_and_online_list(connect, alice, general):
    await database_sync_to_async(post_messages)(general, alice, 60)
    socket = await connect(alice)

    reply = await joined_with_presence(socket, "general")

    assert reply["room"] == "general"
    assert reply["name"] == "General"
    assert reply["topic"] == general.topic
    assert [m["seq"] for m in reply["messages"]] == list(range(11, 61))
    assert reply["has_more"] is True
    assert reply["last_seq"] == 60
    assert reply["online"] == ["alice"]
    await socket.close()


async def test_join_message_objects_follow_the_contract(connect, alice, general):
    await database_sync_to_async(post_messages)(general, alice, 1)
    socket = await connect()

    (message,) = (await socket.join("general"))["messages"]

    assert set(message) == {
        "id",
        "seq",
        "rev",
        "room",
        "author",
        "author_display",
        "author_avatar",
        "body",
        "html",
        "created",
        "edited",
        "deleted",
        "client_id",
        "reactions",
        "files",
        "reply_to",
        "thread",
        "thread_summary",
    }
    assert message["html"] == "<p>message 1</p>"
    assert message["reactions"] == []
    assert message["reply_to"] is message["thread"] is message["thread_summary"] is None
    assert message["author_display"] == "alice"  # no profile yet: the username
    assert message["author_avatar"] == ""  # and initials
    assert message["seq"] == message["rev"] == 1
    assert message["edited"] is None
    assert message["deleted"] is False
    assert message["room"] == "general"
    assert message["author"] == "alice"
    assert message["body"] == "message 1"
    assert message["client_id"] is None
    assert message["created"].startswith("20")
    await socket.close()


async def test_join_with_since_returns_only_newer_messages(connect, alice, general):
    await database_sync_to_async(post_messages)(general, alice, 5)
    socket = await connect()

    reply = await socket.join("general", since=3)

    assert [m["seq"] for m in reply["messages"]] == [4, 5]
    assert reply["has_more"] is False
    assert reply["last_seq"] == 5
    await socket.close()


async def test_join_with_since_caps_replay_at_500_and_says_more_remain(connect, alice, general):
    await database_sync_to_async(post_messages)(general, alice, 502)
    socket = await connect()

    reply = await socket.join("general", since=1)

    assert [m["seq"] for m in reply["messages"]] == list(range(2, 502))
    assert reply["has_more"] is True
    await socket.close()


async def test_pages_of_long_messages_are_cut_to_the_frame_budget_and_continue(
    connect, alice, general, settings
):
    """A page must fit in one WebSocket frame: 20 messages of 4,000 four-byte characters are
    32 kB each (16 kB of body, as much again of its HTML); with an 80 kB budget each page
    holds 2, says has_more, and the client gets everything by continuing (from the last rev
    of a replay, the oldest of history)."""
    settings.CHAT_FRAME_BUDGET_BYTES = 80_000
    body = "\N{GRINNING FACE}" * 4000
    socket = await connect(alice)
    await socket.join("general")
    for n in range(20):
        ack = await socket.request(
            {"type": "send", "room": "general", "body": body, "client_id": f"long{n}"}
        )
        assert ack["type"] == "ack"

    latest = await socket.join("general", since=None)
    seen, since, pages = [], 0, 0
    while True:
        page = await socket.join("general", since=since)
        assert len(json.dumps(page, ensure_ascii=False).encode()) < 80_000 + 1_000
        seen += [m["seq"] for m in page["messages"]]
        since = page["messages"][-1]["rev"] if page["messages"] else since
        pages += 1
        if not page["has_more"]:
            break
    older = await socket.request({"type": "history", "room": "general", "before": 19})

    assert [m["seq"] for m in latest["messages"]] == [19, 20]  # the newest that fit
    assert latest["has_more"] is True
    assert seen == list(range(1, 21))
    assert pages == 10
    assert [m["seq"] for m in older["messages"]] == [17, 18]
    assert older["has_more"] is True


async def test_anonymous_reader_can_join_a_public_room_and_is_not_listed(connect, alice, general):
    reader = await connect()
    talker = await connect(alice)
    await joined_with_presence(talker, "general")

    reply = await reader.join("general")

    assert reply["online"] == ["alice"]
    assert await talker.nothing()  # no presence for anonymous readers
    await reader.close()
    await talker.close()


async def test_anonymous_readers_are_counted_as_guests_live_in_one_frame_a_second(
    connect, alice, general
):
    talker = await connect(alice)
    await joined_with_presence(talker, "general")
    readers = [await connect(), await connect()]

    first = await readers[0].join("general")
    await readers[1].join("general")

    assert first["guests"] == 1
    assert first["online"] == ["alice"]  # guests are counted, never named
    counted = await talker.expect("guests")  # both arrivals, one frame (about 1 s later)
    assert counted == {"type": "guests", "room": "general", "count": 2, "v": counted["v"]}
    assert counted["v"] > first["presence_v"]  # read after the first join's snapshot
    await readers[0].close()
    recounted = await talker.expect("guests")
    assert (recounted["count"], recounted["v"] > counted["v"]) == (1, True)
    assert (await talker.join("general"))["guests"] == 1


async def test_a_quiet_join_follows_a_room_without_being_counted_online(
    connect, alice, bob, general
):
    talker = await connect(alice)
    await joined_with_presence(talker, "general")
    lobby = await connect(bob)
    guest_lobby = await connect()

    quiet = await lobby.join("general", quiet=True)
    await guest_lobby.join("general", quiet=True)
    await talker.request({"type": "send", "room": "general", "body": "hi", "client_id": "q1"})

    assert (quiet["online"], quiet["guests"]) == (["alice"], 0)
    assert (await lobby.recv_until("message"))["message"]["body"] == "hi"
    await talker.recv_until("message")
    assert await talker.poll(1.5) is None  # no presence, no guest count for quiet followers
    assert (await talker.join("general"))["online"] == ["alice"]
    counted = await lobby.join("general")  # the same socket, no longer quiet
    assert counted["online"] == ["alice", "bob"]
    assert (await talker.recv_until("presence"))["user"] == "bob"
    await lobby.join("general", quiet=True)  # quiet again: no longer counted
    gone = await talker.recv_until("presence")
    assert (gone["user"], gone["online"]) == ("bob", False)
    bad = await lobby.request({"type": "join", "room": "general", "quiet": "yes"})
    assert bad["code"] == "bad_request"


async def test_joining_an_unknown_room_is_not_found(connect, alice):
    socket = await connect(alice)

    reply = await socket.request({"type": "join", "room": "nowhere"})

    assert reply["type"] == "error"
    assert reply["code"] == "not_found"
    await socket.close()


async def test_private_room_is_not_found_for_non_members_and_open_to_members(
    connect, alice, bob, make_room
):
    await database_sync_to_async(make_room)("secret", is_private=True, members=(alice,))
    outsider = await connect(bob)
    member = await connect(alice)

    refused = await outsider.request({"type": "join", "room": "secret"})
    unknown = await outsider.request({"type": "join", "room": "no-such-room"})
    accepted = await member.join("secret")

    assert refused["code"] == "not_found"
    assert refused["message"].replace("secret", "X") == unknown["message"].replace(
        "no-such-room", "X"
    )
    assert accepted["room"] == "secret"
    await outsider.close()
    await member.close()


async def test_joining_an_archived_room_is_refused(connect, alice, make_room):
    await database_sync_to_async(make_room)("old", is_archived=True)
    socket = await connect(alice)

    reply = await socket.request({"type": "join", "room": "old"})

    assert reply["code"] == "room_archived"
    await socket.close()


async def test_joining_again_resyncs_without_a_second_presence_event(connect, alice, general):
    socket = await connect(alice)
    await joined_with_presence(socket, "general")
    await database_sync_to_async(post_messages)(general, alice, 3)

    reply = await socket.join("general", since=1)

    assert [m["seq"] for m in reply["messages"]] == [2, 3]
    assert await socket.nothing()
    await socket.close()


# send --------------------------------------------------------------------------------------


async def test_send_acks_the_sender_and_reaches_every_socket_in_the_room(
    connect, alice, bob, general
):
    sender = await connect(alice)
    other = await connect(bob)
    await joined_with_presence(sender, "general")
    await joined_with_presence(other, "general")
    assert (await sender.expect("presence"))["user"] == "bob"

    ack = await sender.request(
        {"type": "send", "room": "general", "body": "hi <b>bob</b>", "client_id": "c-1"}
    )
    echoed = await sender.expect("message")
    received = await other.expect("message")

    assert ack["type"] == "ack"
    assert (ack["room"], ack["client_id"], ack["seq"]) == ("general", "c-1", 1)
    assert received == echoed
    assert received["room"] == "general"
    assert received["message"]["id"] == ack["id"]
    assert received["message"]["seq"] == 1
    assert received["message"]["author"] == "alice"
    assert received["message"]["body"] == "hi <b>bob</b>"
    assert received["message"]["client_id"] == "c-1"
    assert await database_sync_to_async(count_messages)(room=general) == 1
    await sender.close()
    await other.close()


async def test_resending_a_client_id_stores_nothing_and_acks_the_original(connect, alice, general):
    socket = await connect(alice)
    await joined_with_presence(socket, "general")
    frame = {"type": "send", "room": "general", "body": "once", "client_id": "same"}

    first = await socket.request(frame)
    await socket.expect("message")
    second = await socket.request({**frame, "body": "changed on retry"})

    assert second["type"] == "ack"
    assert (second["id"], second["seq"]) == (first["id"], first["seq"])
    assert await socket.nothing()  # no second broadcast
    assert await database_sync_to_async(count_messages)(room=general) == 1
    await socket.close()


async def test_seq_numbers_a_rooms_messages_one_by_one(connect, alice, general, make_room):
    await database_sync_to_async(make_room)("other")
    socket = await connect(alice)
    await joined_with_presence(socket, "general")
    await joined_with_presence(socket, "other")

    seqs = []
    for n, room in enumerate(["general", "general", "other", "general"]):
        ack = await socket.request(
            {"type": "send", "room": room, "body": f"m{n}", "client_id": f"id-{n}"}
        )
        await socket.expect("message")
        seqs.append((room, ack["seq"]))

    assert seqs == [("general", 1), ("general", 2), ("other", 1), ("general", 3)]
    await socket.close()


# typing ------------------------------------------------------------------------------------


async def test_typing_reaches_the_others_in_the_room_but_not_the_typist(
    connect, alice, bob, general
):
    typist = await connect(alice)
    other = await connect(bob)
    await joined_with_presence(typist, "general")
    await joined_with_presence(other, "general")
    await typist.expect("presence")

    await typist.send({"type": "typing", "room": "general"})

    assert await other.expect("typing") == {"type": "typing", "room": "general", "user": "alice"}
    assert await typist.nothing()
    assert await database_sync_to_async(count_messages)() == 0
    await typist.close()
    await other.close()


# history -----------------------------------------------------------------------------------


async def test_history_pages_backwards_oldest_first(connect, alice, general):
    await database_sync_to_async(post_messages)(general, alice, 30)
    socket = await connect()
    await socket.join("general")

    page = await socket.request({"type": "history", "room": "general", "before": 21, "limit": 5})
    first = await socket.request({"type": "history", "room": "general", "before": 3, "limit": 5})

    assert page["type"] == "history"
    assert [m["seq"] for m in page["messages"]] == [16, 17, 18, 19, 20]
    assert page["has_more"] is True
    assert [m["seq"] for m in first["messages"]] == [1, 2]
    assert first["has_more"] is False
    await socket.close()


async def test_history_limit_is_capped_at_100(connect, alice, general):
    await database_sync_to_async(post_messages)(general, alice, 150)
    socket = await connect()
    await socket.join("general")

    page = await socket.request(
        {"type": "history", "room": "general", "before": 151, "limit": 10_000}
    )

    assert [m["seq"] for m in page["messages"]] == list(range(51, 151))
    assert page["has_more"] is True
    await socket.close()


# leave, many rooms, disconnect -------------------------------------------------------------


async def test_leave_stops_delivery_from_that_room(connect, alice, bob, general):
    listener = await connect(bob)
    sender = await connect(alice)
    await joined_with_presence(listener, "general")
    await joined_with_presence(sender, "general")
    await listener.expect("presence")

    left = await listener.request({"type": "leave", "room": "general"})
    assert left == {"type": "left", "room": "general", "ref": left["ref"]}
    gone = await sender.expect("presence")
    await sender.request({"type": "send", "room": "general", "body": "hello?", "client_id": "x"})

    assert gone == {
        "type": "presence",
        "room": "general",
        "user": "bob",
        "online": False,
        "v": gone["v"],
    }
    assert await listener.nothing()
    refused = await listener.request(
        {"type": "send", "room": "general", "body": "hi", "client_id": "y"}
    )
    assert refused["code"] == "not_joined"
    await listener.close()
    await sender.close()


async def test_a_message_to_one_room_does_not_reach_a_socket_only_in_another(
    connect, alice, bob, general, make_room
):
    await database_sync_to_async(make_room)("random")
    both = await connect(alice)
    only_random = await connect(bob)
    await joined_with_presence(both, "general")
    await joined_with_presence(both, "random")
    await joined_with_presence(only_random, "random")
    await both.expect("presence")

    await both.request({"type": "send", "room": "general", "body": "to general", "client_id": "g"})
    in_general = await both.expect("message")
    await both.request({"type": "send", "room": "random", "body": "to random", "client_id": "r"})
    in_random = await both.expect("message")
    seen_by_bob = await only_random.expect("message")

    assert in_general["room"] == "general"
    assert in_random["room"] == "random"
    assert seen_by_bob["message"]["body"] == "to random"
    assert await only_random.nothing()
    await both.close()
    await only_random.close()


async def test_disconnect_leaves_every_group_and_updates_presence(
    connect, alice, bob, general, make_room
):
    random_room = await database_sync_to_async(make_room)("random")
    groups = {room_group(general.pk), room_group(random_room.pk)}
    leaver = await connect(alice)
    watcher = await connect(bob)
    for room in ["general", "random"]:
        await joined_with_presence(leaver, room)
        await joined_with_presence(watcher, room)
        await leaver.expect("presence")
    layer = get_channel_layer()
    fanout = runtime_for_loop().fanout
    assert {group: len(fanout.members[group]) for group in groups} == dict.fromkeys(groups, 2)

    await leaver.close()

    gone = [await watcher.expect("presence"), await watcher.expect("presence")]
    assert {(p["room"], p["user"], p["online"]) for p in gone} == {
        ("general", "alice", False),
        ("random", "alice", False),
    }
    assert {group: len(fanout.members[group]) for group in groups} == dict.fromkeys(groups, 1)
    rejoin = await watcher.join("general")
    assert rejoin["online"] == ["bob"]

    await watcher.close()

    # With its last socket gone, the process leaves the groups that carried the rooms too.
    assert fanout.members == {}
    assert {carrier(group) for group in groups} & set(layer.groups) == set()
    assert fanout.subscribed == set()


async def crash(user=None) -> None:
    """Open a socket, join general, and end it with an exception on its send path: a ref
    its transport cannot encode, the way daphne's send raised on a lone surrogate."""
    headers = [(b"host", HOST.encode()), (b"origin", ORIGIN.encode())]
    if user is not None:
        cookie = await database_sync_to_async(session_cookie)(user)
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    communicator = WebsocketCommunicator(
        encoding_like_daphne(application), "/ws/chat/", headers=headers
    )
    assert (await communicator.connect(timeout=3))[0]
    await communicator.send_json_to({"type": "join", "room": "general"})
    while (await communicator.receive_json_from(timeout=3))["type"] != "joined":
        pass
    await communicator.send_to(text_data='{"type": "ping", "ref": "\\ud800"}')

    async def read_until_the_app_fails() -> None:
        while True:
            await communicator.receive_output(timeout=3)

    with pytest.raises(UnicodeEncodeError):
        await read_until_the_app_fails()


@pytest.mark.parametrize("signed_in", [True, False], ids=["user", "guest"])
async def test_a_socket_that_ends_with_a_server_error_is_cleaned_up(
    connect, settings, monkeypatch, alice, bob, general, signed_in
):
    settings.CHAT_MAX_SOCKETS_PER_USER = 2
    watcher = await connect(bob)
    await joined_with_presence(watcher, "general")
    # Any exception on the send path will do: here, a lone surrogate let through decode.
    monkeypatch.setattr("chat.protocol.requests._encodable", lambda text, frame: True)

    for _ in range(3):  # more crashes than the socket cap
        await crash(alice if signed_in else None)

    monkeypatch.undo()
    # Nobody still counts the crashed sockets: the room, the fan-out, the socket cap.
    rejoin = await watcher.join("general")
    assert rejoin["online"] == ["bob"]
    assert rejoin["guests"] == 0
    assert runtime_for_loop().limits.sockets.keys() == {bob.pk}
    assert len(runtime_for_loop().fanout.members[room_group(general.pk)]) == 1
    again = await connect(alice if signed_in else None)
    assert (await again.join("general"))["room"] == "general"
    await watcher.close()
    await again.close()


async def test_a_users_second_tab_neither_repeats_nor_ends_their_presence(
    connect, alice, bob, general
):
    watcher = await connect(bob)
    await joined_with_presence(watcher, "general")
    tab1 = await connect(alice)
    tab2 = await connect(alice)
    await joined_with_presence(tab1, "general")
    assert (await watcher.expect("presence"))["user"] == "alice"

    second = await tab2.join("general")
    assert second["online"] == ["alice", "bob"]
    assert await watcher.nothing()
    await tab1.close()
    assert await watcher.nothing()
    await tab2.close()

    gone = await watcher.expect("presence")
    assert gone == {
        "type": "presence",
        "room": "general",
        "user": "alice",
        "online": False,
        "v": gone["v"],
    }
    assert gone["v"] > second["presence_v"]
    await watcher.close()


# errors ------------------------------------------------------------------------------------


BAD_FRAMES = [
    pytest.param("not json", "bad_request", id="not-json"),
    pytest.param("[1, 2]", "bad_request", id="not-an-object"),
    pytest.param('{"room": "general"}', "bad_request", id="no-type"),
    pytest.param('{"type": "shout", "room": "general"}', "bad_request", id="unknown-type"),
    pytest.param('{"type": "join"}', "bad_request", id="missing-room"),
    pytest.param('{"type": "join", "room": 7}', "bad_request", id="room-not-a-string"),
    pytest.param('{"type": "join", "room": "general", "since": "x"}', "bad_request", id="since"),
    pytest.param('{"type": "join", "room": "general", "since": -1}', "bad_request", id="neg"),
    pytest.param('{"type": "join", "room": "general", "since": true}', "bad_request", id="bool"),
    pytest.param('{"type": "join", "room": "general", "ref": 5}', "bad_request", id="ref"),
    pytest.param('{"type": "send", "room": "general", "body": "x"}', "bad_request", id="no-cid"),
    pytest.param(
        '{"type": "send", "room": "general", "client_id": "a"}', "bad_request", id="no-body"
    ),
    pytest.param(
        '{"type": "send", "room": "general", "body": "  \\n ", "client_id": "a"}',
        "bad_request",
        id="empty-body",
    ),
    pytest.param(
        '{"type": "send", "room": "general", "body": "a\\u0000b", "client_id": "a"}',
        "bad_request",
        id="nul-in-body",
    ),
    pytest.param(
        '{"type": "history", "room": "general", "limit": 0}', "bad_request", id="limit-zero"
    ),
    pytest.param('{"type": "join", "room": "../etc"}', "not_found", id="not-a-slug"),
    pytest.param(
        '{"type": "send", "room": "random", "body": "x", "client_id": "a"}',
        "not_joined",
        id="send-not-joined",
    ),
    pytest.param('{"type": "typing", "room": "random"}', "not_joined", id="typing-not-joined"),
    pytest.param('{"type": "history", "room": "random"}', "not_joined", id="history-not-joined"),
]


@pytest.mark.parametrize(("text", "code"), BAD_FRAMES)
async def test_a_bad_frame_gets_an_error_and_changes_nothing(
    connect, alice, general, make_room, text, code
):
    await database_sync_to_async(make_room)("random")
    socket = await connect(alice)
    await joined_with_presence(socket, "general")

    await socket.send(text)
    error = await socket.expect("error")

    assert error["code"] == code
    assert isinstance(error["message"], str)
    assert error["message"]
    assert await database_sync_to_async(count_messages)() == 0
    # The socket is still open and still in its room.
    ack = await socket.request(
        {"type": "send", "room": "general", "body": "still here", "client_id": "after"}
    )
    assert ack["type"] == "ack"
    assert ack["seq"] == 1
    await socket.close()


async def test_errors_echo_the_requests_ref(connect, alice):
    socket = await connect(alice)

    await socket.send({"type": "join", "room": "nowhere", "ref": "abc"})

    assert await socket.expect("error") == {
        "type": "error",
        "ref": "abc",
        "code": "not_found",
        "message": "No room 'nowhere'.",
    }
    await socket.close()


# Every string field a client sends, and some it may send anyway: a lone surrogate (JSON's
# "\ud800" escape decodes to one) cannot be encoded as UTF-8, whether the server would echo
# it (ref), store it (body), look it up (room), or ignore it (an unknown key).
SEND = {"type": "send", "room": "general", "body": "hi", "client_id": "a"}
UNENCODABLE = [
    pytest.param({"type": "ping", "ref": "\ud800"}, id="ref"),
    pytest.param({"type": "ping", "ref": "a\udfffb"}, id="ref-low-surrogate"),
    pytest.param({"type": "join", "room": "gen\ud800"}, id="room"),
    pytest.param({**SEND, "body": "hi \ud83d"}, id="body"),
    pytest.param({**SEND, "client_id": "\udc00"}, id="client-id"),
    pytest.param({"type": "edit", "room": "general", "id": 1, "body": "\ud800"}, id="edit-body"),
    pytest.param({"type": "ping\ud800"}, id="type"),
    pytest.param({"type": "ping", "\ud800": 1}, id="key"),
    pytest.param({"type": "ping", "x": [[{"y": "\ud800"}]]}, id="nested"),
]  # fmt: skip


@pytest.mark.parametrize("frame", UNENCODABLE)
@pytest.mark.parametrize("escaped", [True, False], ids=["escaped", "raw"])
async def test_text_that_cannot_be_encoded_is_a_bad_request_in_any_field(
    connect, alice, general, frame, escaped
):
    socket = await connect(alice)
    await joined_with_presence(socket, "general")

    # ensure_ascii sends the escape; without it the lone surrogate itself (as a test
    # transport can, though daphne never decodes one from UTF-8).
    await socket.send(json.dumps(frame, ensure_ascii=escaped))
    output = await socket.communicator.receive_output(timeout=3)

    output["text"].encode()  # everything sent back can be encoded
    assert json.loads(output["text"])["code"] == "bad_request"
    assert "ref" not in json.loads(output["text"])
    assert await database_sync_to_async(count_messages)() == 0
    assert (await socket.request({"type": "ping"}))["type"] == "pong"
    await socket.close()


async def test_valid_escapes_and_surrogate_pairs_are_still_text(connect, alice, general):
    socket = await connect(alice)
    await joined_with_presence(socket, "general")

    body = "\U0001f4ac \u00e9 \\ud800 \u202e"  # an emoji (a pair when escaped), and the text \ud800
    ack = await socket.request({"type": "send", "room": "general", "body": body, "client_id": "e"})

    assert ack["type"] == "ack"
    assert await database_sync_to_async(lambda: Message.objects.get().body)() == body
    await socket.close()


async def test_a_binary_frame_is_a_bad_request(connect, general):
    socket = await connect()

    await socket.communicator.send_to(bytes_data=b"\x00\x01")

    assert (await socket.expect("error"))["code"] == "bad_request"
    assert (await socket.join("general"))["room"] == "general"
    await socket.close()


@pytest.mark.parametrize("frame_type", ["send", "typing"])
async def test_anonymous_sockets_cannot_send_or_type(connect, general, frame_type):
    socket = await connect()
    await socket.join("general")

    reply = await socket.request(
        {"type": frame_type, "room": "general", "body": "hi", "client_id": "anon"}
    )

    assert reply["code"] == "auth_required"
    assert await database_sync_to_async(count_messages)() == 0
    await socket.close()


@override_settings(CHAT_MAX_MESSAGE_LENGTH=10)
async def test_a_body_over_the_length_limit_is_too_long(connect, alice, general):
    socket = await connect(alice)
    await joined_with_presence(socket, "general")

    too_long = await socket.request(
        {"type": "send", "room": "general", "body": "x" * 11, "client_id": "long"}
    )
    just_fits = await socket.request(
        {"type": "send", "room": "general", "body": "x" * 10, "client_id": "fits"}
    )

    assert too_long["code"] == "too_long"
    assert just_fits["type"] == "ack"
    assert just_fits["seq"] == 1
    await socket.close()


async def test_sending_to_a_room_archived_after_joining_is_refused(connect, alice, general):
    socket = await connect(alice)
    await joined_with_presence(socket, "general")
    # Archived behind the service's back, so the socket has not been told yet.
    await database_sync_to_async(Room.objects.filter(pk=general.pk).update)(is_archived=True)

    reply = await socket.request(
        {"type": "send", "room": "general", "body": "late", "client_id": "late"}
    )

    assert reply["code"] == "room_archived"
    assert await database_sync_to_async(count_messages)() == 0
    last_seq = await database_sync_to_async(lambda: Room.objects.get(pk=general.pk).last_seq)()
    assert last_seq == 0  # the refused send left no gap
    await socket.close()


async def test_an_unexpected_failure_is_a_server_error_and_the_socket_lives_on(
    connect, alice, general, monkeypatch
):
    socket = await connect(alice)
    await joined_with_presence(socket, "general")

    def broken(**kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr("chat.selectors.rooms_last_seq", broken)
    failed = await socket.request({"type": "ping"})
    monkeypatch.undo()
    answered = await socket.request({"type": "ping"})

    assert failed["type"] == "error"
    assert failed["code"] == "server_error"
    assert answered == {
        "type": "pong",
        "rooms": {"general": 0},
        "live": True,
        "ref": answered["ref"],
    }
    await socket.close()


async def test_concurrent_sends_are_written_together_and_each_acked(
    connect, make_user, general, monkeypatch
):
    users = [await database_sync_to_async(make_user)() for _ in range(20)]
    sockets = [await connect(user) for user in users]
    for socket in sockets:
        await socket.join("general")
    batches = []
    original = services.messages_create

    def counting(*, drafts):
        batches.append(len(drafts))
        return original(drafts=drafts)

    monkeypatch.setattr(services, "messages_create", counting)

    acks = await asyncio.gather(
        *(
            socket.request({"type": "send", "room": "general", "body": f"b{n}", "client_id": "c"})
            for n, socket in enumerate(sockets)
        )
    )

    assert sorted(ack["seq"] for ack in acks) == list(range(1, 21))
    assert sum(batches) == 20
    assert len(batches) < 20  # sends that arrived together were committed together
    for socket in sockets:
        await socket.close()


# pages -------------------------------------------------------------------------------------


async def test_every_frame_of_messages_a_client_asked_for_goes_by_the_paced_send(
    connect, alice, general, monkeypatch
):
    """Pages may be larger than what a connection may hold unread (chat/realtime/transport.py):
    each kind of them goes by the page send, and the small replies do not."""
    paced: list[str] = []

    def recording_page_send(scope, send):
        async def page_send(message):
            paced.append(json.loads(message["text"])["type"])
            await send(message)

        return page_send

    monkeypatch.setattr(transport, "page_send", recording_page_send)
    [root] = await database_sync_to_async(post_messages)(general, alice, 1)
    socket = await connect()

    await socket.join("general")
    await socket.request({"type": "history", "room": "general", "before": 2, "limit": 5})
    await socket.request({"type": "thread", "room": "general", "id": root.pk})
    await socket.request({"type": "ping"})

    assert paced == ["joined", "history", "thread"]
    await socket.close()
