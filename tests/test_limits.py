"""Abuse limits on the socket: send and typing rates, rooms per socket, sockets per user,
frame size. Each refusal is a clear error that changes nothing and keeps the socket open."""

import asyncio

import pytest
from channels.db import database_sync_to_async

from chat.limits import SEND, TYPING, RedisLimits, parse_rate
from chat.models import Message
from tests.conftest import RECEIVE_TIMEOUT
from tests.redis_service import two_workers

pytestmark = pytest.mark.django_db(transaction=True)


def send(n: int) -> dict:
    return {"type": "send", "room": "general", "body": f"m{n}", "client_id": f"c{n}"}


async def test_sends_beyond_the_rate_are_refused_with_retry_after(
    connect, settings, alice, general
):
    settings.CHAT_RATE_LIMIT = "3/10"
    socket = await connect(alice)
    await socket.join("general")

    replies = [await socket.request(send(n)) for n in range(4)]

    assert [r["type"] for r in replies] == ["ack", "ack", "ack", "error"]
    assert replies[3]["code"] == "rate_limited"
    assert 0 < replies[3]["retry_after"] <= 10 / 3 + 0.1
    assert await database_sync_to_async(Message.objects.count)() == 3
    assert (await socket.request({"type": "ping"}))["type"] == "pong"  # still open
    await socket.close()


async def test_the_send_rate_is_per_user_across_their_sockets(
    connect, settings, alice, bob, general
):
    settings.CHAT_RATE_LIMIT = "2/10"
    tabs = [await connect(alice), await connect(alice)]
    other = await connect(bob)
    for socket in (*tabs, other):
        await socket.join("general")

    first = await tabs[0].request(send(1))
    second = await tabs[1].request(send(2))
    third = await tabs[0].request(send(3))
    bobs = await other.request({**send(4), "client_id": "b"})

    assert (first["type"], second["type"], third["type"]) == ("ack", "ack", "error")
    assert bobs["type"] == "ack"
    for socket in (*tabs, other):
        await socket.close()


async def test_typing_beyond_its_rate_is_refused(connect, settings, alice, general):
    settings.CHAT_TYPING_RATE_LIMIT = "2/10"
    socket = await connect(alice)
    await socket.join("general")

    for _ in range(2):
        await socket.send({"type": "typing", "room": "general"})
    refused = await socket.request({"type": "typing", "room": "general"})

    assert refused["code"] == "rate_limited"
    assert refused["retry_after"] > 0
    await socket.close()


async def test_a_socket_joins_at_most_the_room_cap(connect, settings, alice, general, make_room):
    settings.CHAT_MAX_ROOMS_PER_SOCKET = 2
    for slug in ("one", "two"):
        await database_sync_to_async(make_room)(slug)
    socket = await connect()

    await socket.join("general")
    await socket.join("one")
    refused = await socket.request({"type": "join", "room": "two"})
    again = await socket.join("one")  # a resync of a joined room is not a new room

    assert refused["code"] == "limit_reached"
    assert again["room"] == "one"
    await socket.close()


async def test_a_user_opens_at_most_the_socket_cap(connect, settings, alice):
    settings.CHAT_MAX_SOCKETS_PER_USER = 2
    first = await connect(alice)
    await connect(alice)

    third = await connect(alice)
    refusal = await third.recv()
    closed = await third.communicator.receive_output(RECEIVE_TIMEOUT)
    third.open = False

    assert refusal["code"] == "limit_reached"
    assert closed == {"type": "websocket.close", "code": 4008}
    await first.close()
    fourth = await connect(alice)  # a slot is free again
    assert (await fourth.request({"type": "ping"}))["type"] == "pong"


async def test_an_oversized_frame_is_refused_unread(connect, settings, alice, general):
    settings.CHAT_MAX_FRAME_BYTES = 1000
    socket = await connect(alice)
    await socket.join("general")

    await socket.send({**send(1), "body": "x" * 1200})
    refused = await socket.recv_until("error")

    assert refused["code"] == "bad_request"
    assert "1000 bytes" in refused["message"]
    assert await database_sync_to_async(Message.objects.count)() == 0
    assert (await socket.request(send(2)))["type"] == "ack"
    await socket.close()


@pytest.mark.parametrize(
    ("value", "rate"), [("10/10", (10, 10.0)), ("off", None), ("5/2.5", (5, 2.5))]
)
def test_rate_limits_are_read_as_actions_per_seconds(value, rate):
    assert parse_rate(value) == rate


@pytest.mark.parametrize("value", ["0/10", "ten", "5/0"])
def test_a_malformed_rate_limit_is_an_error(value):
    with pytest.raises(ValueError):  # noqa: PT011 - the message is for the operator
        parse_rate(value)


# Shared by every worker -------------------------------------------------------------------


@pytest.fixture
async def two_workers_limits():
    """Two workers' registries on one Redis, under a prefix of this test's own."""
    async with two_workers(RedisLimits) as workers:
        yield workers


async def test_a_users_send_rate_is_shared_by_every_worker(two_workers_limits):
    first, second = two_workers_limits

    waits = [
        await first.wait(SEND, 7, "3/10"),
        await second.wait(SEND, 7, "3/10"),
        await first.wait(SEND, 7, "3/10"),
        await second.wait(SEND, 7, "3/10"),  # the fourth, wherever it lands
    ]

    assert waits[:3] == [0.0, 0.0, 0.0]
    assert 3.0 < waits[3] <= 3.34  # one token comes back every 10/3 s
    assert await first.wait(SEND, 8, "3/10") == 0.0  # another user is not affected
    assert await first.wait(TYPING, 7, "3/10") == 0.0  # nor is another kind of action
    assert await second.wait(SEND, 7, "off") == 0.0


async def test_a_users_socket_cap_counts_their_sockets_on_every_worker(two_workers_limits):
    first, second = two_workers_limits

    opened = [
        await first.socket_opened(7, "a", 3),
        await second.socket_opened(7, "b", 3),
        await second.socket_opened(7, "c", 3),
        await first.socket_opened(7, "d", 3),
    ]
    await second.socket_closed(7, "b")
    after_close = await first.socket_opened(7, "e", 3)

    assert opened == [True, True, True, False]
    assert after_close is True


async def test_a_dead_workers_sockets_stop_counting_and_live_ones_keep_counting(
    two_workers_limits,
):
    alive, dead = two_workers_limits
    assert await alive.socket_opened(7, "kept", 2)
    assert await dead.socket_opened(7, "lost", 2)
    dead.task.cancel()  # the worker dies: no heartbeat, no goodbye

    await asyncio.sleep(1.6)  # past the TTL (1.2 s); the live worker's heartbeat ran

    assert await alive.socket_opened(7, "new", 2) is True  # "lost" no longer counts
    assert await alive.socket_opened(7, "one too many", 2) is False  # "kept" still does


async def test_limits_let_actions_through_when_redis_fails(caplog):
    broken = RedisLimits("redis://127.0.0.1:1/0", ttl=1.2)

    assert await broken.wait(SEND, 7, "1/10") == 0.0
    assert await broken.socket_opened(7, "a", 1) is True
    assert "letting" in caplog.text
    broken.task.cancel()
    await broken.redis.aclose()
