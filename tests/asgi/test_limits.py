"""Abuse limits on the socket: send and typing rates, rooms per socket, sockets per user,
frame size. Each refusal is a clear error that changes nothing and keeps the socket open."""

import asyncio
import logging
import re

import pytest
from channels.db import database_sync_to_async

from chat.models import Message
from chat.realtime.limits import OPEN, SEND, TAKE, TYPING, LocalLimits, RedisLimits, parse_rate
from chat.realtime.outages import redis_client
from chat.realtime.redis_turns import Turns
from tests.support.redis_service import two_workers
from tests.support.sockets import RECEIVE_TIMEOUT

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


async def refused_with_4008(socket) -> dict:
    """The refusal a socket over a cap gets before the server closes it with 4008."""
    refusal = await socket.recv()
    closed = await socket.communicator.receive_output(RECEIVE_TIMEOUT)
    socket.open = False
    assert closed == {"type": "websocket.close", "code": 4008}
    return refusal


@pytest.mark.parametrize("signed_in", [True, False], ids=["user", "guest"])
async def test_join_and_leave_churn_is_rate_limited_and_floods_nobody(
    connect, settings, alice, bob, general, signed_in
):
    settings.CHAT_JOIN_RATE_LIMIT = "4/10"
    listener = await connect(bob)
    await listener.join("general")
    await listener.expect("presence")
    churner = await connect(alice if signed_in else None)

    replies = []
    for _ in range(10):
        replies.append(await churner.request({"type": "join", "room": "general"}))
        await churner.request({"type": "leave", "room": "general"})

    assert [r["type"] for r in replies] == ["joined"] * 4 + ["error"] * 6
    assert {r["code"] for r in replies[4:]} == {"rate_limited"}
    assert all(r["retry_after"] > 0 for r in replies[4:])
    heard = []
    while (frame := await listener.poll(1.2)) is not None:
        heard.append(frame["type"])
    assert len(heard) <= 8  # a presence pair, or a guest count, per accepted join at most
    await churner.close()
    await listener.close()


async def test_anonymous_history_is_rate_limited_per_address_across_sockets(
    connect, settings, general
):
    settings.CHAT_HISTORY_RATE_LIMIT = "3/10"
    tabs = [await connect(address="198.51.100.7") for _ in range(3)]
    elsewhere = await connect(address="203.0.113.9")
    for socket in (*tabs, elsewhere):
        await socket.join("general")

    pages = [await tab.request({"type": "history", "room": "general"}) for tab in tabs]
    over = await tabs[0].request({"type": "history", "room": "general"})
    other = await elsewhere.request({"type": "history", "room": "general"})

    assert [p["type"] for p in pages] == ["history"] * 3
    assert over["code"] == "rate_limited"
    assert other["type"] == "history"
    for socket in (*tabs, elsewhere):
        await socket.close()


async def test_history_is_rate_limited_per_user(connect, settings, alice, general):
    settings.CHAT_HISTORY_RATE_LIMIT = "2/10"
    socket = await connect(alice)
    await socket.join("general")

    replies = [await socket.request({"type": "history", "room": "general"}) for _ in range(3)]

    assert [r["type"] for r in replies] == ["history", "history", "error"]
    assert replies[2]["code"] == "rate_limited"
    await socket.close()


async def test_an_address_opens_at_most_the_anonymous_socket_cap(connect, settings, alice):
    settings.CHAT_MAX_ANONYMOUS_SOCKETS_PER_ADDRESS = 2
    first = await connect(address="198.51.100.7")
    await connect(address="198.51.100.7")

    refusal = await refused_with_4008(await connect(address="198.51.100.7"))
    elsewhere = await connect(address="203.0.113.9")
    signed_in = await connect(alice, address="198.51.100.7")  # users count on their own cap

    assert refusal["code"] == "limit_reached"
    assert (await elsewhere.request({"type": "ping"}))["type"] == "pong"
    assert (await signed_in.request({"type": "ping"}))["type"] == "pong"
    await first.close()
    again = await connect(address="198.51.100.7")  # a slot is free again
    assert (await again.request({"type": "ping"}))["type"] == "pong"


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


async def test_who_is_connected_counts_sockets_on_every_worker_until_they_close_or_die(
    two_workers_limits,
):
    """@here's question (services._notify): which of these users has a socket now."""
    alive, dead = two_workers_limits
    await alive.socket_opened(1, "a", 3)
    await dead.socket_opened(2, "b", 3)
    await dead.socket_opened(3, "c", 3)
    await dead.socket_closed(3, "c")

    assert await alive.connected([1, 2, 3, 4]) == {1, 2}
    assert await alive.connected([]) == set()
    dead.task.cancel()  # the worker dies: its sockets stop counting after the TTL (1.2 s)
    await asyncio.sleep(1.6)
    assert await alive.connected([1, 2, 3, 4]) == {1}


async def test_who_is_connected_in_one_process():
    limits = LocalLimits()
    await limits.socket_opened(1, "a", 3)
    await limits.socket_opened(2, "b", 3)
    await limits.socket_closed(2, "b")

    assert await limits.connected([1, 2, 3]) == {1}


async def test_limits_let_actions_through_when_redis_fails(caplog):
    caplog.set_level(logging.DEBUG, logger="chat.realtime.limits")  # all but the first: debug
    broken = RedisLimits("redis://127.0.0.1:1/0", ttl=1.2)

    assert await broken.wait(SEND, 7, "1/10") == 0.0
    assert await broken.socket_opened(7, "a", 1) is True
    assert await broken.connected([7]) == set()  # @here notifies nobody; the send goes on
    assert "letting" in caplog.text
    assert "@here notifies nobody" in caplog.text
    await broken.redis.aclose()


# What each of the limits' per-request calls does when Redis cannot answer: it falls back
# (lets the action or socket through, notifies nobody), and says so.
FALLBACKS = {
    "rate limit": (lambda w, n: w.wait(SEND, n, "3/10"), 0.0, "Rate limit unavailable"),
    "socket cap": (lambda w, n: w.socket_opened(n, f"s{n}", 5), True, "Socket cap unavailable"),
    "uncount": (lambda w, n: w.socket_closed(n, f"s{n}"), None, "Could not uncount"),
    "@here": (lambda w, n: w.connected([n]), set(), "Who is connected is unknown"),
}


@pytest.mark.parametrize(("call", "fallback", "said"), FALLBACKS.values(), ids=FALLBACKS)
async def test_while_redis_is_away_each_fallback_is_logged_once_and_the_return_said(
    two_workers_limits, caplog, monkeypatch, call, fallback, said
):
    worker, _ = two_workers_limits
    for n in range(3):  # sockets counted while Redis answered, for "uncount" to uncount
        await worker.socket_opened(n, f"s{n}", 5)
    answering = worker.redis
    away = redis_client("redis://127.0.0.1:1/0")  # nothing listens there: refused at once
    scripts = {"take_script": TAKE, "open_script": OPEN}
    for name, code in scripts.items():
        monkeypatch.setattr(worker, name, away.register_script(code))
    monkeypatch.setattr(worker, "redis", away)
    monkeypatch.setattr(worker, "turns", Turns(away))
    caplog.set_level(logging.DEBUG, logger="chat.realtime.limits")

    assert [await call(worker, n) for n in range(3)] == [fallback] * 3

    records = [r for r in caplog.records if r.name == "chat.realtime.limits"]
    assert [(r.levelname, said in r.getMessage()) for r in records] == [
        ("ERROR", True),  # the first, with its traceback
        ("DEBUG", True),
        ("DEBUG", True),
    ]
    assert records[0].exc_info is not None
    caplog.clear()
    for name, code in scripts.items():
        monkeypatch.setattr(worker, name, answering.register_script(code))
    monkeypatch.setattr(worker, "redis", answering)
    monkeypatch.setattr(worker, "turns", Turns(answering))

    await worker.socket_opened(9, "s9", 5)  # Redis answers again

    [back] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "answers again" in back.getMessage()
    assert re.search(
        r"3 request\(s\) fell back, over [\d.]+ s, the last [\d.]+ s ago", back.getMessage()
    )
    await away.aclose()


async def test_a_fallback_that_is_not_redis_failing_is_logged_every_time(
    two_workers_limits, caplog, monkeypatch
):
    worker, _ = two_workers_limits

    class Buggy:
        async def run(self, *commands):
            raise TypeError("a bug, not an outage")

    monkeypatch.setattr(worker, "turns", Buggy())

    for _ in range(3):
        assert await worker.wait(SEND, 1, "3/10") == 0.0

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 3
    assert all(r.exc_info[0] is TypeError for r in errors)
