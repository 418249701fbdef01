"""Every background loop and every cleanup lives through its dependency failing: the channel
layer or Redis goes away (killed, paused, restarted empty) and comes back. Each loop logs the
outage once, retries, and is live again afterwards; `disconnect` finishes whatever fails.
The same against real daphne workers and a real Redis server: tests/live/test_cluster_outages.py."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlparse

import psycopg
import pytest
import redis.asyncio as redis
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.core.exceptions import ImproperlyConfigured
from django.db import OperationalError, connection

from chat.apps import check_layer_timeouts
from chat.models import Message
from chat.protocol import events
from chat.realtime import fanout, limits, publisher, redis_turns
from chat.realtime.agreement import SharedSettings
from chat.realtime.heartbeat import Heartbeat
from chat.realtime.layer_events import carrier
from chat.realtime.limits import RedisLimits
from chat.realtime.outages import Fallbacks
from chat.realtime.presence import GUEST, LocalPresence, RedisPresence
from chat.realtime.runtime import runtime_for_loop
from tests.support.redis_service import redis_url, two_workers, use_layer
from tests.support.waiting import until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def flaky_layer(settings: Any) -> None:
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "tests.support.faults.FlakyLayer"}}


def outage_log(caplog: pytest.LogCaptureFixture, what: str) -> list[str]:
    return [
        record.getMessage().split(" (")[0].split(" after")[0]
        for record in caplog.records
        if what in record.getMessage()
    ]


@pytest.mark.usefixtures("flaky_layer")
async def test_live_delivery_comes_back_after_the_layer_fails_and_forgets_the_groups(
    connect, alice, bob, general, caplog
):
    caplog.set_level(logging.WARNING)
    sender, reader = await connect(alice), await connect(bob)
    await sender.join("general")
    await reader.join("general")
    await sender.recv_until("presence")  # bob arrived
    layer = get_channel_layer()

    layer.go_down()  # the fan-out's receive fails; Redis restarted empty
    await asyncio.sleep(0.3)  # a few failed retries
    layer.come_back()
    # Told the rooms' last seqs, unasked, so the client resyncs what it missed.
    regained = await reader.recv_until("pong")
    assert regained == {"type": "pong", "rooms": {"general": 0}, "live": True}

    ack = await sender.request(
        {"type": "send", "room": "general", "body": "after the outage", "client_id": "c1"}
    )
    assert ack["type"] == "ack"
    assert (await reader.recv_until("message"))["message"]["body"] == "after the outage"
    assert outage_log(caplog, "the channel layer (fan-out)") == [
        "Lost the channel layer",
        "Regained the channel layer",
    ]


@pytest.mark.usefixtures("flaky_layer")
async def test_every_socket_hears_when_broadcasts_stop_being_live_and_when_they_are_again(
    connect, alice, bob, general
):
    """The users run of 2026-12-02: Redis was killed and the page said "Connected" while no
    one's messages reached it. Every socket of the process hears `live` false when its
    receive first fails, and one that connects during the outage hears it at once; all hear
    `live` true when it is back, then the unasked pong that resyncs them. Once each."""
    reader = await connect(bob)
    await reader.join("general")
    layer = get_channel_layer()

    layer.go_down()
    assert await reader.recv_until("live") == {"type": "live", "ok": False}
    late = await connect()  # a reader: its process is in every group it needs already
    assert await late.expect("live") == {"type": "live", "ok": False}
    await late.join("general")
    asked = await late.request({"type": "ping"})  # a page that missed the frame learns it so
    assert (asked["type"], asked["live"]) == ("pong", False)
    await asyncio.sleep(0.3)  # more failed retries: no more frames
    layer.come_back()

    for socket in (reader, late):
        assert await socket.recv_until("live") == {"type": "live", "ok": True}
        assert (await socket.expect("pong"))["rooms"] == {"general": 0}
    fresh = await connect(alice)  # after the outage: nothing to hear of it
    await fresh.join("general")
    for socket in (reader, late, fresh):
        heard = []
        while (frame := await socket.poll(0.3)) is not None:
            heard.append(frame["type"])
        assert "live" not in heard  # (the guest count and alice's arrival, maybe)


async def _back_after(layer: Any, seconds: float) -> None:
    await asyncio.sleep(seconds)
    layer.come_back()


@pytest.mark.usefixtures("flaky_layer")
async def test_a_socket_connecting_through_a_layer_blip_waits_for_it_and_is_served(
    connect, alice, general, caplog
):
    """Before: the process's first subscription (the site's group, at connect) raised, and
    daphne closed the socket with 1011. CI saw it in a storm, when a new connection to Redis
    timed out while a thousand handshakes held the event loop."""
    caplog.set_level(logging.WARNING)
    layer = get_channel_layer()
    layer.go_down()
    back = asyncio.ensure_future(_back_after(layer, 0.3))

    socket = await connect(alice)
    await socket.join("general")

    await back
    assert outage_log(caplog, "subscribing sockets") == [
        "Lost the channel layer",
        "Regained the channel layer",
    ]


@pytest.mark.usefixtures("flaky_layer")
async def test_a_join_through_a_layer_blip_waits_for_it_and_is_joined(connect, alice, general):
    socket = await connect(alice)
    layer = get_channel_layer()
    layer.go_down()
    back = asyncio.ensure_future(_back_after(layer, 0.3))

    joined = await socket.join("general")

    await back
    assert joined["room"] == "general"
    ack = await socket.request(
        {"type": "send", "room": "general", "body": "after the blip", "client_id": "c1"}
    )
    assert ack["type"] == "ack"
    assert (await socket.recv_until("message"))["message"]["body"] == "after the blip"


@pytest.mark.usefixtures("flaky_layer")
async def test_a_resync_through_a_layer_blip_waits_for_it_and_is_joined_again(
    connect, alice, general
):
    """A join of a room the socket is in already joins the process to its group again
    (`Fanout.refresh`): the third way a socket subscribes, with the same patience."""
    socket = await connect(alice)
    await socket.join("general")
    layer = get_channel_layer()
    layer.go_down()
    back = asyncio.ensure_future(_back_after(layer, 0.3))

    joined = await socket.join("general", since=0)

    await back
    assert joined["room"] == "general"


@pytest.mark.usefixtures("flaky_layer")
async def test_a_layer_down_longer_than_the_patience_still_ends_the_connecting_socket(
    connect, alice, monkeypatch
):
    monkeypatch.setattr(fanout, "SUBSCRIBE_PATIENCE", 0.3)
    get_channel_layer().go_down()

    socket = await connect(alice)

    with pytest.raises(ConnectionError, match="the layer is down"):
        await socket.communicator.receive_output(timeout=5)
    socket.open = False  # the application ended: nothing left to close


@pytest.mark.usefixtures("flaky_layer")
async def test_a_join_the_layer_is_away_for_too_long_is_answered_unavailable_said_once(
    connect, alice, bob, general, make_room, monkeypatch, caplog
):
    """Seen running it as users (2026-12-02): Redis killed, a page's resync join waited out
    its patience and was answered `server_error`, with an "Unexpected failure" traceback
    per frame, for an outage the worker already knew and waited out. Now it is answered
    `unavailable` (the client retries both), said once an outage, and the first frame
    answered afterwards says how many were not."""
    monkeypatch.setattr(fanout, "SUBSCRIBE_PATIENCE", 0.3)
    caplog.set_level(logging.DEBUG, logger="chat.realtime.consumers")
    await database_sync_to_async(make_room)("elsewhere")
    sockets = [await connect(alice), await connect(bob)]
    layer = get_channel_layer()
    layer.go_down()

    refused = [await socket.request({"type": "join", "room": "elsewhere"}) for socket in sockets]
    layer.come_back()
    joined = await sockets[0].join("elsewhere")

    assert [(r["type"], r["code"]) for r in refused] == [("error", "unavailable")] * 2
    assert joined["room"] == "elsewhere"
    said = [(r.levelname, r.getMessage()) for r in caplog.records if r.name.endswith("consumers")]
    assert [level for level, _ in said] == ["ERROR", "DEBUG", "WARNING"]
    assert "2 request(s) fell back" in said[2][1]
    assert not [message for _, message in said if "Unexpected failure" in message]


@pytest.mark.usefixtures("flaky_layer")
async def test_an_ack_does_not_wait_for_a_broadcast_the_failed_layer_will_not_bring(
    connect, alice, general, settings
):
    settings.CHAT_ACK_WAITS_FOR_FANOUT = 60  # were it waited for, the test would time out
    sender = await connect(alice)
    await sender.join("general")
    get_channel_layer().go_down()
    await until(lambda: not runtime_for_loop().fanout.outage.ok)

    ack = await sender.request(
        {"type": "send", "room": "general", "body": "while down", "client_id": "c1"}
    )

    assert ack["type"] == "ack"  # stored, and acked: the clients resync the broadcast


def probe(group: str, n: int) -> dict:
    """A broadcast of a frame the protocol knows (the test Socket checks each one), told
    apart by its `id`."""
    frame = events.announcement_frame(announcement_id=n, body="probe", created=PROBE_TIME)
    return events.broadcast_event(group=group, frame=frame)


PROBE_TIME = "2026-01-01T00:00:00+00:00"


@pytest.mark.parametrize(
    ("give_up_after", "heard"),
    [(60.0, [1, 2]), (0.2, [2])],  # retried until the layer is back; dropped when too late
)
@pytest.mark.usefixtures("flaky_layer")
async def test_the_publisher_retries_what_the_layer_refused_until_it_is_too_late(
    connect, bob, general, caplog, monkeypatch, give_up_after, heard
):
    monkeypatch.setattr(publisher, "GIVE_UP_AFTER", give_up_after)
    caplog.set_level(logging.WARNING)
    listener = await connect(bob)
    await listener.join("general")
    layer = get_channel_layer()
    group = next(g for g in runtime_for_loop().fanout.members if g.startswith("room."))
    layer.down = True  # sends fail; the fan-out's receive goes on waiting
    publisher.publish(group, probe(group, 1))
    await until(lambda: outage_log(caplog, "the channel layer (publisher)"))
    await asyncio.sleep(0.4)
    layer.come_back()

    publisher.publish(group, probe(group, 2))

    assert [(await listener.recv_until("announcement"))["id"] for _ in heard] == heard
    assert await listener.nothing()
    assert outage_log(caplog, "the channel layer (publisher)") == [
        "Lost the channel layer",
        "Regained the channel layer",
    ]


@pytest.mark.usefixtures("flaky_layer")
async def test_the_group_refresh_loop_outlives_a_failed_refresh(connect, alice, general, settings):
    settings.CHAT_GROUP_REFRESH_SECONDS = 0.05
    reader = await connect(alice)
    await reader.join("general")
    fanout = runtime_for_loop().fanout
    refresh = runtime_for_loop().loops["fanout refresh"].task
    get_channel_layer().down = True
    await asyncio.sleep(0.2)  # several failed refreshes
    assert not refresh.done()
    get_channel_layer().come_back()
    get_channel_layer().groups.clear()  # forgotten: only a refresh brings them back

    await until(lambda: fanout.subscribed <= set(get_channel_layer().groups))


class FailingBeats(Heartbeat):
    def __init__(self, failures: int) -> None:
        self.ttl = 0.03
        self.local = {"entry": 1}
        self.failures = failures
        self.beats = 0

    async def beat(self) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("Redis is down (test)")
        self.beats += 1


async def test_a_heartbeat_outlives_failed_beats_and_says_so_once(caplog):
    caplog.set_level(logging.WARNING)
    registry = FailingBeats(failures=3)
    registry.task = asyncio.create_task(registry.beat_forever())
    await until(lambda: registry.beats >= 2)
    assert not registry.task.done()
    registry.task.cancel()
    assert outage_log(caplog, "FailingBeats") == ["Lost Redis", "Regained Redis"]


class TimedBeats(FailingBeats):
    """Beats that fail `failures` times, each beat's time kept."""

    def __init__(self, failures: int, *, ttl: float) -> None:
        super().__init__(failures)
        self.ttl = ttl
        self.times: list[float] = []

    async def beat(self) -> None:
        self.times.append(asyncio.get_running_loop().time())
        await super().beat()


async def test_a_failed_beat_is_tried_again_within_the_outages_backoff_not_a_ttl_later():
    """After Redis comes back the next beat puts back what it lost: with TTL 3 s, a beat
    that failed is tried again within the backoff's first step (0.1 s), not 1 s later."""
    registry = TimedBeats(failures=1, ttl=3.0)
    registry.task = asyncio.create_task(registry.beat_forever())
    try:
        await until(lambda: registry.beats >= 1, seconds=3)
        failed, succeeded = registry.times[:2]
        assert succeeded - failed < 0.6  # 0.05 to 0.1 s; 1.0 s (TTL/3) before
    finally:
        registry.task.cancel()


async def test_a_heartbeat_asked_to_beat_soon_beats_at_once_and_then_keeps_its_pace():
    registry = TimedBeats(failures=0, ttl=30.0)  # its own beat: every 10 s
    registry.task = asyncio.create_task(registry.beat_forever())
    try:
        await until(lambda: registry.due is not None)
        registry.beat_soon()
        await until(lambda: registry.beats == 1, seconds=1)
        await asyncio.sleep(0.2)
        assert registry.beats == 1  # asked once, beat once
    finally:
        registry.task.cancel()


@pytest.mark.usefixtures("flaky_layer")
async def test_when_the_layer_comes_back_every_registry_in_redis_puts_its_entries_back_at_once(
    connect, alice, bob, general, settings, monkeypatch
):
    """Redis restarted empty: the fan-out's receive broke, and came back. Presence, the socket
    cap and the shared settings each beat at once, not at their next heartbeat up to TTL/3
    (10 s) later, so a page that joins right after sees alice online. A users run on
    2026-12-01 saw her missing from a reloaded page's list for 7.6 s after such a restart."""
    settings.CHAT_PRESENCE_REDIS_URL = settings.CHAT_LIMITS_REDIS_URL = redis_url()
    tab = await connect(alice)
    await tab.join("general")
    runtime = runtime_for_loop()
    registries = [runtime.presence, runtime.limits, runtime.shared]
    assert [type(registry) for registry in registries] == [
        RedisPresence,
        RedisLimits,
        SharedSettings,
    ]
    beats: dict[str, int] = {}

    def counted(registry: Heartbeat) -> None:
        beat = registry.beat

        async def counting() -> None:
            beats[type(registry).__name__] = beats.get(type(registry).__name__, 0) + 1
            await beat()

        monkeypatch.setattr(registry, "beat", counting)

    for registry in registries:
        counted(registry)
    await runtime.presence.redis.flushdb()  # restarted empty
    layer = get_channel_layer()
    layer.go_down()
    await asyncio.sleep(0.3)
    layer.come_back()
    await tab.recv_until("pong")  # the fan-out is back

    await until(lambda: len(beats) == 3, seconds=2)
    page = await connect(bob)
    assert (await page.join("general"))["online"] == ["alice", "bob"]
    for socket in (tab, page):
        await socket.close()


class RemoveFails(LocalPresence):
    async def remove(self, **kwargs: Any) -> bool:
        await super().remove(**kwargs)
        raise ConnectionError("Redis is down (test)")


class RemoveHangs(LocalPresence):
    async def remove(self, **kwargs: Any) -> bool:
        await super().remove(**kwargs)
        await asyncio.Event().wait()  # Redis paused: no answer, ever
        return False


@pytest.mark.parametrize("failure", [RemoveFails, RemoveHangs])
async def test_disconnect_finishes_every_step_when_presence_fails_or_hangs(
    connect, alice, general, make_room, failure
):
    await database_sync_to_async(make_room)("random")
    await database_sync_to_async(make_room)("third")
    socket = await connect(alice)
    for room in ("general", "random", "third"):
        await socket.join(room)
    fanout = runtime_for_loop().fanout
    presence = runtime_for_loop().presence
    presence.__class__ = failure  # every removal from here on raises, or never returns

    await socket.close()  # gives the application a second, then cancels it

    assert fanout.members == {}  # every room, the site and the user's group let go
    assert runtime_for_loop().limits.sockets == {}  # and the socket cap counts it no more


async def _frames_within(socket: Any, seconds: float) -> AsyncIterator[dict[str, Any]]:
    while (frame := await socket.poll(seconds)) is not None:
        yield frame


def _channels_in(layer: Any) -> dict[str, set[str]]:
    """Layer group → the channels in it, as the in-process layer holds them."""
    return {group: set(channels) for group, channels in layer.groups.items() if channels}


@pytest.mark.usefixtures("flaky_layer")
async def test_a_leave_the_layer_refuses_is_answered_and_made_once_the_layer_answers(
    connect, alice, bob, general, caplog
):
    """Before: the failed `group_discard` became the leave's error frame, after the room
    was left here, and the process stayed in the room's shard group, receiving and dropping
    its broadcasts until the layer's group_expiry (a day)."""
    caplog.set_level(logging.WARNING)
    leaver, stayer = await connect(alice), await connect(bob)
    await leaver.join("general")
    layer, fan = get_channel_layer(), runtime_for_loop().fanout
    shard = carrier(events.room_group(general.pk))
    layer.down = True  # paused: every call fails, the groups stay

    left = await leaver.request({"type": "leave", "room": "general"})

    assert left["type"] == "left", left
    await asyncio.sleep(0.3)  # a few failed tries
    assert fan.channel_name in _channels_in(layer)[shard]  # owed, not forgotten
    layer.come_back()
    await until(lambda: shard not in _channels_in(layer))
    await until(lambda: "fanout leave" not in runtime_for_loop().loops)  # its work done
    assert fan.owed == set()
    # Live, and the leaver hears the room no more.
    await stayer.join("general")
    ack = await stayer.request(
        {"type": "send", "room": "general", "body": "after", "client_id": "c1"}
    )
    assert ack["type"] == "ack", ack
    assert (await stayer.recv_until("message"))["message"]["body"] == "after"
    heard = [frame async for frame in _frames_within(leaver, 0.3)]
    assert [frame for frame in heard if frame["type"] == "message"] == []
    assert outage_log(caplog, "leaving groups") == [
        "Lost the channel layer",
        "Regained the channel layer",
    ]
    assert "Cleanup of socket" not in caplog.text


@pytest.mark.usefixtures("flaky_layer")
async def test_the_last_socket_closing_while_the_layer_is_away_leaves_every_group_later(
    connect, alice, bob, general, caplog
):
    """The process's last socket: its room's shard, the site's and the user's groups all
    go, with the channel; each leave is owed and made once the layer answers, and the next
    socket is served on a new channel."""
    caplog.set_level(logging.WARNING)
    socket = await connect(alice)
    await socket.join("general")
    layer, fan = get_channel_layer(), runtime_for_loop().fanout
    old = fan.channel_name
    layer.down = True

    await socket.close()

    owed = {group for group, channels in _channels_in(layer).items() if old in channels}
    assert {carrier(events.room_group(general.pk)), events.SITE_GROUP} <= owed
    assert fan.owed == {(group, old) for group in owed}
    assert "Cleanup of socket" not in caplog.text
    layer.come_back()
    await until(lambda: not any(old in channels for channels in _channels_in(layer).values()))
    reader, sender = await connect(bob), await connect(alice)
    await reader.join("general")
    await sender.join("general")
    assert fan.channel_name != old
    await sender.request({"type": "send", "room": "general", "body": "new", "client_id": "c1"})
    assert (await reader.recv_until("message"))["message"]["body"] == "new"


@pytest.mark.usefixtures("flaky_layer")
async def test_a_room_joined_again_before_its_owed_leave_is_made_stays_joined(
    connect, alice, bob, general, monkeypatch
):
    """The owed leave must not undo a later join on the same channel (the socket's site
    group keeps the process's channel)."""
    socket, sender = await connect(alice), await connect(bob)
    await socket.join("general")
    layer, fan = get_channel_layer(), runtime_for_loop().fanout
    shard = carrier(events.room_group(general.pk))
    refused = ConnectionError("the layer refuses leaves (test)")

    async def refusing(group: str, channel: str) -> None:
        raise refused

    with monkeypatch.context() as patched:
        patched.setattr(layer, "group_discard", refusing)
        await socket.request({"type": "leave", "room": "general"})
        assert fan.owed == {(shard, fan.channel_name)}
        await socket.join("general")  # group_add answers: joined again, same channel
    await until(lambda: "fanout leave" not in runtime_for_loop().loops)

    assert fan.owed == set()
    assert fan.channel_name in _channels_in(layer)[shard]
    await sender.join("general")
    await sender.request({"type": "send", "room": "general", "body": "hi", "client_id": "c1"})
    assert (await socket.recv_until("message"))["message"]["body"] == "hi"


async def test_a_leave_after_redis_closed_every_connection_is_made_at_once(
    connect, alice, general, settings, caplog
):
    """The real layer after a Redis restart: redis-py hands out a fresh connection for one
    the server closed, so the leave goes through at once (which is why `_group_discard`
    does not retry at once): nothing owed, nothing logged about leaving."""
    use_layer(settings, "redis")
    caplog.set_level(logging.WARNING)
    socket = await connect(alice)
    await socket.join("general")
    layer, fan = get_channel_layer(), runtime_for_loop().fanout
    key = layer._group_key(carrier(events.room_group(general.pk)))
    channel = fan.channel_name.encode()
    assert channel in await layer.connection(0).zrange(key, 0, -1)
    assert await _close_every_connection_of_this_database(redis_url()) >= 1

    left = await socket.request({"type": "leave", "room": "general"})

    assert left["type"] == "left", left
    assert fan.owed == set()
    assert channel not in await layer.connection(0).zrange(key, 0, -1)
    assert outage_log(caplog, "leaving groups") == []
    await socket.close()


@pytest.mark.parametrize(
    ("hosts", "ok"),
    [
        (["redis://127.0.0.1:6379/0"], False),  # redis-py's 5 s timeout = the 5 s pop
        ([{"address": "redis://127.0.0.1:6379/0", "socket_timeout": 5}], False),
        ([{"address": "redis://127.0.0.1:6379/0", "socket_timeout": 10}], True),
    ],
)
def test_a_redis_layer_whose_replies_time_out_before_its_pop_does_not_start(hosts, ok):
    layers = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": hosts}}
    }
    if ok:
        check_layer_timeouts(layers)
    else:
        with pytest.raises(ImproperlyConfigured, match="socket_timeout"):
            check_layer_timeouts(layers)


def test_the_shipped_redis_settings_pass_the_check(monkeypatch):
    import importlib

    import chatsite.settings

    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        fresh = importlib.reload(chatsite.settings)
        assert "RedisChannelLayer" in fresh.CHANNEL_LAYERS["default"]["BACKEND"]
        check_layer_timeouts(fresh.CHANNEL_LAYERS)
    finally:
        monkeypatch.undo()
        importlib.reload(chatsite.settings)


async def test_a_send_whose_database_connection_died_is_stored_once_and_acked(
    connect, alice, general, monkeypatch
):
    """The write meets a dead connection once (OperationalError, as a terminated PostgreSQL
    backend raises): it is retried on a fresh one instead of answering server_error."""
    from chat import services

    real = services.messages_create
    calls = []

    def dies_once(**kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("terminating connection due to administrator command")
        return real(**kwargs)

    monkeypatch.setattr(services, "messages_create", dies_once)
    sender = await connect(alice)
    await sender.join("general")

    ack = await sender.request(
        {"type": "send", "room": "general", "body": "once", "client_id": "c1"}
    )

    assert ack["type"] == "ack"
    assert len(calls) == 2
    count = await database_sync_to_async(Message.objects.filter(body="once").count)()
    assert count == 1


async def test_a_send_after_postgresql_terminated_the_connection_is_acked(
    connect, alice, general, monkeypatch
):
    """The real thing: the server kills the backend of the thread that writes messages,
    whose connection is kept between messages as in production (CONN_MAX_AGE)."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL=postgres://…): SQLite has no server")
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 60)
    sender = await connect(alice)
    await sender.join("general")
    first = {"type": "send", "room": "general", "body": "before", "client_id": "c1"}
    assert (await sender.request(first))["type"] == "ack"

    def backend_of_this_thread() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return cursor.fetchone()[0]

    pid = await database_sync_to_async(backend_of_this_thread)()
    with psycopg.connect(**psycopg_params(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])

    ack = await sender.request(
        {"type": "send", "room": "general", "body": "after", "client_id": "c2"}
    )

    assert ack["type"] == "ack", ack
    count = await database_sync_to_async(Message.objects.filter(body="after").count)()
    assert count == 1


def psycopg_params() -> dict[str, Any]:
    db = connection.settings_dict
    params = {"dbname": db["NAME"], "user": db["USER"], "host": db["HOST"], "port": db["PORT"]}
    if db["PASSWORD"]:
        params["password"] = db["PASSWORD"]
    return {key: value for key, value in params.items() if value}


async def _close_every_connection_of_this_database(url: str) -> int:
    """What a Redis restart does to a worker's pooled connections: the server closes them
    all. Only this test database's clients are closed, so parallel test processes (each on a
    database of its own) are left alone."""
    admin = redis.Redis.from_url(url)
    try:
        me = await admin.client_id()
        database = int(urlparse(url).path.strip("/") or 0)
        clients = [c for c in await admin.client_list() if int(c["db"]) == database]
        for client in clients:
            if int(client["id"]) != me:
                await admin.client_kill_filter(_id=client["id"])
        return len(clients) - 1
    finally:
        await admin.aclose()


async def _presence_call(worker: RedisPresence, n: int) -> Any:
    added = await worker.add(room_id=1, room_slug="r", username=f"u{n}", socket_id=f"s{n}")
    return added.changed


async def _limits_call(worker: RedisLimits, n: int) -> Any:
    return await worker.socket_opened(f"u{n}", f"s{n}", 10)


@pytest.mark.parametrize(
    ("registry", "call"), [(RedisPresence, _presence_call), (RedisLimits, _limits_call)]
)
async def test_a_registry_answers_at_once_when_redis_closed_every_connection(
    caplog, registry, call
):
    async with two_workers(registry) as (worker, _):
        # Several pooled connections, as a busy worker has.
        await asyncio.gather(*(worker.redis.execute_command("PING") for _ in range(5)))
        assert await _close_every_connection_of_this_database(redis_url()) >= 5

        answers = [await call(worker, n) for n in range(8)]  # through every stale one

    assert answers == [True] * 8
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@contextlib.contextmanager
def refusing(monkeypatch: pytest.MonkeyPatch, *registries: Any) -> Iterator[None]:
    """Redis away for these registries, as after a crash or a cut cable: every command and
    pipeline fails to connect, while the data stays (the other workers see it)."""

    async def refused(*args: Any, **kwargs: Any) -> Any:
        raise redis.ConnectionError("Error 111 connecting to Redis. Connection refused (test).")

    with monkeypatch.context() as patched:
        for registry in registries:
            patched.setattr(registry.redis.connection_pool, "get_connection", refused)
        yield


def told_offline(worker: Any) -> list[tuple[int, str, str]]:
    """What the registry tells the rooms of users gone (room id, slug, username), kept;
    each told with a version above the last one told."""
    gone: list[tuple[int, str, str]] = []
    versions = [0]

    async def offline(room_id: int, slug: str, username: str, v: int) -> None:
        assert v > versions[-1]
        versions.append(v)
        gone.append((room_id, slug, username))

    worker.on_offline = offline
    return gone


@contextlib.contextmanager
def pausing(monkeypatch: pytest.MonkeyPatch, *registries: Any) -> Iterator[None]:
    """Redis paused for these registries (SIGSTOP, or a network that drops packets): every
    command waits for a connection until the pause ends, then goes through."""
    resumed = asyncio.Event()
    with monkeypatch.context() as patched:
        for registry in registries:
            pool = registry.redis.connection_pool

            async def paused(*args: Any, _get: Any = pool.get_connection, **kwargs: Any) -> Any:
                await resumed.wait()
                return await _get(*args, **kwargs)

            patched.setattr(pool, "get_connection", paused)
        try:
            yield
        finally:
            resumed.set()


async def _presence_opened(worker: RedisPresence) -> None:
    await worker.add(room_id=1, room_slug="r", username="u", socket_id="s")


async def _presence_closed(worker: RedisPresence) -> None:
    removed = await worker.remove(room_id=1, username="u", socket_id="s")
    assert removed.changed is False  # not known


async def _presence_listed(worker: RedisPresence) -> bool:
    return await worker.online(room_id=1) == ["u"]


async def _limits_opened(worker: RedisLimits) -> None:
    assert await worker.socket_opened("u", "s", 10)


async def _limits_closed(worker: RedisLimits) -> None:
    await worker.socket_closed("u", "s")


async def _limits_listed(worker: RedisLimits) -> bool:
    return await worker.connected(["u"]) == {"u"}


REMOVALS = {
    "presence": (RedisPresence, _presence_opened, _presence_closed, _presence_listed),
    "socket cap": (RedisLimits, _limits_opened, _limits_closed, _limits_listed),
}


@pytest.mark.parametrize(
    ("registry", "opened", "closed", "listed"), REMOVALS.values(), ids=REMOVALS
)
async def test_a_removal_redis_refuses_is_owed_and_made_as_soon_as_redis_answers(
    monkeypatch, caplog, registry, opened, closed, listed
):
    """Every registry entry a closing socket removes. Before: the removal failed, the
    entry was left to expire (the TTL, 30 s by default), its user shown online or counted
    against their socket cap meanwhile, and a disconnect logged a traceback per room.
    With a TTL of 30 s here, only the owed removal can take the entry out within 5 s."""
    caplog.set_level(logging.WARNING)
    async with two_workers(registry, ttl=30.0) as (worker, other):
        gone = told_offline(worker)
        await opened(worker)
        with refusing(monkeypatch, worker):
            await closed(worker)  # answered, not raised
            assert worker.owed
            await until(lambda: worker.outage is not None and not worker.outage.ok)
            assert await listed(other)  # still there: owed, not made

        await until(lambda: not worker.owed)
        assert not await listed(other)
    if registry is RedisPresence:
        assert gone == [(1, "r", "u")]  # the room told the user went, once
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len([e for e in errors if "(Redis); owed" in e]) == 1  # once an outage
    assert any("answers again" in r.getMessage() for r in caplog.records)


async def _flushed(worker: RedisPresence, other: RedisPresence) -> None:
    """Redis restarted empty while away: every key of the registry gone."""
    keys = [key async for key in other.redis.scan_iter(f"{worker.prefix}*")]
    await other.redis.delete(*keys)


async def _kept(worker: RedisPresence, other: RedisPresence) -> None:
    """Redis came back with its data (a network cut, a failover)."""


@pytest.mark.parametrize(
    ("what", "sockets", "redis_came_back", "told", "online", "guests"),
    [
        ("the user's last tab, Redis kept", [("u", "s")], _kept, ["u"], [], 0),
        ("the user's last tab, Redis empty", [("u", "s")], _flushed, ["u"], [], 0),
        ("another tab stays, Redis empty", [("u", "s"), ("u", "s2")], _flushed, [], ["u"], 0),
        ("a guest, another stays", [(GUEST, "s"), (GUEST, "s2")], _kept, [GUEST], [], 1),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
async def test_an_owed_removal_tells_the_room_what_redis_holds_once_it_answers(
    monkeypatch, what, sockets, redis_came_back, told, online, guests
):
    """The users run of 2026-12-02 (second pass): every tab of bob's closed while Redis
    was away, Redis came back empty, and the pages open since before listed bob online for
    good: the removal found him unlisted (Redis had lost him), so it told no one, and no
    sweep could find him either. An owed removal now tells the room whenever the user has
    no socket left, listed or not; never while this worker still has one of theirs (put
    back by the same beat, first); a guest's, the room's count."""
    async with two_workers(RedisPresence, ttl=30.0) as (worker, other):
        worker.task.cancel()  # this test beats by hand
        gone = told_offline(worker)
        for username, socket_id in sockets:
            await worker.add(room_id=1, room_slug="r", username=username, socket_id=socket_id)
        username, socket_id = sockets[0]
        with refusing(monkeypatch, worker):
            await worker.remove(room_id=1, username=username, socket_id=socket_id)
        await redis_came_back(worker, other)

        await worker.heartbeat()

        assert worker.owed == {}
        assert [username for _, _, username in gone] == told
        assert await other.online(room_id=1) == online
        assert await other.guests(room_id=1) == guests


@pytest.mark.parametrize(
    ("registry", "opened", "closed", "listed"), REMOVALS.values(), ids=REMOVALS
)
async def test_a_removal_redis_does_not_answer_is_owed_once_its_pipeline_gives_up(
    monkeypatch, registry, opened, closed, listed
):
    """The third way Redis fails a removal: no answer at all. It fails when its pipeline
    does (redis_turns.TIMEOUT_SECONDS: 20 s, 0.3 s here), and is owed like a refused one,
    then made once Redis answers, well within the TTL."""
    monkeypatch.setattr(redis_turns, "TIMEOUT_SECONDS", 0.3)
    async with two_workers(registry, ttl=30.0) as (worker, other):
        await opened(worker)
        with pausing(monkeypatch, worker):
            await closed(worker)  # answered once the pipeline gave up
            assert worker.owed
            assert await listed(other)  # owed, not made

        await until(lambda: not worker.owed)
        assert not await listed(other)


async def test_a_users_request_gives_redis_a_few_seconds_when_it_hangs_then_a_moment(
    monkeypatch, caplog
):
    """Seen running it as users (2026-12-02): Redis paused, and a send waited on its rate
    limit for the whole pipeline's 20 s ("sending…", nothing stored until then). A rate
    limit and @here's who-is-connected now wait PATIENCE at most, and while Redis is known
    away only PATIENCE_AWAY, then fall back as when it refuses; the first answer after it
    is back ends the outage. The pipeline itself still gives up only after its 20 s."""
    monkeypatch.setattr(limits, "PATIENCE", 0.3)
    monkeypatch.setattr(limits, "PATIENCE_AWAY", 0.05)
    caplog.set_level(logging.WARNING, logger="chat.realtime.limits")
    async with two_workers(RedisLimits, ttl=30.0) as (worker, _):
        await worker.socket_opened(7, "s1", 10)
        with pausing(monkeypatch, worker):
            timed = []
            for call in (
                lambda: worker.wait("send", 7, "10/10"),
                lambda: worker.connected([7]),
                lambda: worker.wait("send", 7, "10/10"),
                lambda: worker.connected([7]),
            ):
                started = asyncio.get_running_loop().time()
                timed.append((await call(), asyncio.get_running_loop().time() - started))

        assert [answer for answer, _ in timed] == [0.0, set(), 0.0, set()]  # let through
        assert 0.25 < timed[0][1] < 1.5  # PATIENCE
        assert all(took < 0.3 for _, took in timed[1:])  # PATIENCE_AWAY: known away
        assert await worker.connected([7]) == {7}  # back: answered, and the outage ends
    said = [r.getMessage() for r in caplog.records]
    assert len([m for m in said if "Rate limit unavailable" in m]) == 1  # then quietly
    assert "4 request(s) fell back" in said[-1]


ENTRY_KEYS = {"presence": "r:1:u", "socket cap": "sockets:u"}  # the user's, after the prefix


@pytest.mark.parametrize(
    ("registry", "opened", "closed", "listed"), REMOVALS.values(), ids=REMOVALS
)
async def test_an_owed_removal_redis_refuses_outright_is_dropped_not_tried_every_beat(
    monkeypatch, caplog, registry, opened, closed, listed
):
    """A removal Redis answers with an error (a bug, not an outage) must not fail every
    beat after it: the heartbeat that refreshes every other entry (and sweeps the dead
    workers') would fail with it, for good."""
    async with two_workers(registry, ttl=30.0) as (worker, other):
        await opened(worker)
        with refusing(monkeypatch, worker):
            await closed(worker)
            await until(lambda: worker.outage is not None and not worker.outage.ok)
            # The user's entry is no sorted set any more: Redis refuses the removal (WRONGTYPE).
            name = next(k for k, v in REMOVALS.items() if v[0] is registry)
            await other.redis.set(f"{worker.prefix}{ENTRY_KEYS[name]}", "not a sorted set")

        await until(lambda: not worker.owed)
        await until(lambda: worker.outage.ok)
    assert "left to expire" in caplog.text
    assert "WRONGTYPE" in caplog.text


@pytest.mark.parametrize("when", ["before the beat", "while the beat makes it"])
async def test_a_socket_that_joins_again_before_its_owed_removal_is_made_stays_listed(
    monkeypatch, when
):
    """The owed removal must not undo a later join of the same socket (a socket may leave
    a room and join it again), whether the join comes before the beat or while the beat's
    removal is on its way (Redis then runs the removal first, and the join after it)."""
    async with two_workers(RedisPresence, ttl=30.0) as (worker, other):
        worker.task.cancel()  # this test beats by hand
        gone = told_offline(worker)
        await _presence_opened(worker)
        with refusing(monkeypatch, worker):
            await _presence_closed(worker)
        assert list(worker.owed) == [(1, "s")]

        if when == "before the beat":
            await _presence_opened(worker)  # Redis answers: joined again
            await worker.heartbeat()
            assert gone == []  # never removed
        else:
            beat = asyncio.create_task(worker.heartbeat())
            await asyncio.sleep(0)  # its removal is asked for
            await _presence_opened(worker)  # joined again, asked for after it
            await beat
            assert gone == [(1, "r", "u")]  # removed, then back (the join says so)

        assert worker.owed == {}
        assert await _presence_listed(other)


async def test_a_tab_closing_while_redis_is_away_is_shown_gone_once_it_answers(
    connect, alice, bob, general, settings, monkeypatch, caplog
):
    """The users run of 2026-12-02: a tab closed during a Redis restart logged 'Cleanup of
    socket … failed at leaving room' with a traceback, and the user stayed listed online
    until the TTL ran out."""
    settings.CHAT_PRESENCE_REDIS_URL = settings.CHAT_LIMITS_REDIS_URL = redis_url()
    caplog.set_level(logging.WARNING)
    await _delete_registries(redis_url())  # another test's entries would confuse the counts
    tab, watcher = await connect(alice), await connect(bob)
    await tab.join("general")
    await watcher.join("general")
    runtime = runtime_for_loop()
    presence, limits = runtime.presence, runtime.limits
    try:
        with refusing(monkeypatch, presence, limits):
            await tab.close()
            assert [room_id for room_id, _ in presence.owed] == [general.pk]
            assert [user_id for user_id, _ in limits.owed] == [alice.pk]

        while (left := await watcher.recv_until("presence"))["user"] != "alice":
            pass  # bob's own arrival
        assert left["online"] is False
        await until(lambda: not limits.owed)
        assert await limits.connected([alice.pk]) == set()
        assert await presence.online(room_id=general.pk) == ["bob"]
        assert "Cleanup of socket" not in caplog.text
    finally:
        await watcher.close()
        await _delete_registries(redis_url())


async def _delete_registries(url: str) -> None:
    """The keys of the registries a site keeps in this test database of Redis."""
    client = redis.Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter("chat:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.mark.usefixtures("flaky_layer")
async def test_the_last_socket_leaving_during_an_outage_does_not_leave_the_layer_reported_away(
    connect, alice, bob, general, caplog
):
    """The users run of 2026-12-02: a worker whose last socket closed while Redis was away
    logged "Lost the channel layer (fan-out)" and never its end, since the receive that
    would have seen the layer back stopped with the last socket; its outage stayed open,
    so /healthz reported the layer away for good and acks no longer waited for their
    broadcasts, with the layer long back and new sockets served."""
    caplog.set_level(logging.WARNING)
    runtime = runtime_for_loop()
    socket = await connect(alice)
    await socket.join("general")
    layer = get_channel_layer()
    layer.go_down()
    await until(lambda: not runtime.fanout.outage.ok)

    await socket.close()
    layer.come_back()
    reader, sender = await connect(bob), await connect(alice)
    await reader.join("general")
    await sender.join("general")
    await sender.request({"type": "send", "room": "general", "body": "back", "client_id": "c1"})
    assert (await reader.recv_until("message"))["message"]["body"] == "back"

    assert runtime.fanout.outage.ok
    assert runtime.health()["dependencies"]["channel layer"] is True
    assert outage_log(caplog, "the channel layer (fan-out)") == [
        "Lost the channel layer",
        "Stopped waiting for the channel layer",
    ]


def test_a_single_fallback_is_said_to_span_no_time(caplog):
    """A users run read "fell back, over -0.0 s": the outage's start was read a moment
    after its one fallback's time."""
    fallbacks = Fallbacks("Redis (test)", logging.getLogger("tests.fallbacks"))
    try:
        raise redis.ConnectionError("Redis is down (test)")
    except redis.ConnectionError:
        fallbacks.failed("Fell back (test)")

    fallbacks.answered()

    assert "1 request(s) fell back, over 0.0 s, the last" in caplog.text
