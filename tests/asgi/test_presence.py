"""Presence registries: in-process, and shared through Redis with a TTL heartbeat."""

import asyncio
import json
import logging
import math
import time
import uuid

import pytest
from channels.db import database_sync_to_async

from chat.realtime import presence
from chat.realtime.presence import GUEST, PRESENCE_EVERY, LocalPresence, RedisPresence
from chat.realtime.runtime import runtime_for_loop
from tests.support.redis_service import redis_url, two_workers


@pytest.fixture
async def redis_registries():
    """Two workers' registries on one Redis, under a prefix of this test's own."""
    async with two_workers(RedisPresence) as workers:
        yield workers


async def join(registry, user: str, socket: str, room: int = 1) -> bool:
    """Whether it was the user's first socket in the room."""
    return (await joined(registry, user, socket, room)).changed


async def leave(registry, user: str, socket: str, room: int = 1) -> bool:
    """Whether it was the user's last socket in the room."""
    return (await left(registry, user, socket, room)).changed


async def joined(registry, user: str, socket: str, room: int = 1) -> presence.Change:
    return await registry.add(
        room_id=room, room_slug=f"room-{room}", username=user, socket_id=socket
    )


async def left(registry, user: str, socket: str, room: int = 1) -> presence.Change:
    return await registry.remove(room_id=room, username=user, socket_id=socket)


async def check_first_and_last_socket_semantics(one, two) -> None:
    assert await join(one, "alice", "a1") is True  # her first socket: announce online
    assert await join(two, "alice", "a2") is False  # a second tab, on another worker
    assert await join(two, "bob", "b1") is True
    assert await one.online(room_id=1) == ["alice", "bob"]
    assert await two.online(room_id=2) == []
    # What a join tells its socket: the names and the guests, read together.
    assert await join(one, GUEST, "g1") is True
    assert (await two.in_room(room_id=1))[:2] == (["alice", "bob"], 1)
    assert (await one.in_room(room_id=2))[:2] == ([], 0)
    assert await leave(two, GUEST, "g1") is True

    assert await leave(one, "alice", "a1") is False  # she still has a tab
    assert await leave(two, "alice", "a2") is True  # her last: announce offline
    assert await leave(two, "alice", "a2") is False  # and only once
    assert await one.online(room_id=1) == ["bob"]


async def test_local_presence_counts_a_users_sockets_once():
    registry = LocalPresence()
    await check_first_and_last_socket_semantics(registry, registry)


async def test_redis_presence_is_shared_by_workers(redis_registries):
    await check_first_and_last_socket_semantics(*redis_registries)


async def check_every_change_and_read_takes_a_newer_version(one, two, forget) -> None:
    """Whatever happens to a room's presence, on whichever worker, and whatever it changed
    (a first socket or a second, a last or not, a guest, one not there at all), takes a
    version above every one before, as does each read a page is told (a join's snapshot, a
    guest count); `forget()` loses everything (a Redis restarted empty), and the versions
    still go on upwards. Rooms are counted apart, yet every version is a clock's: a room
    first touched later starts above."""
    steps = [
        lambda: joined(one, "alice", "a1"),
        lambda: joined(two, "alice", "a2"),
        lambda: joined(two, GUEST, "g1"),
        lambda: two.in_room(room_id=1),
        lambda: one.counted(room_id=1),
        lambda: left(one, "alice", "a1"),
        lambda: left(one, "alice", "a1"),  # not there any more
        lambda: left(two, "alice", "a2"),
        forget,
        lambda: one.in_room(room_id=1),
        lambda: joined(one, "bob", "b1"),
        lambda: joined(one, "carol", "c1", room=2),
        lambda: left(two, GUEST, "g1"),
        lambda: two.counted(room_id=1),
    ]
    versions = []
    for step in steps:
        done = await step()
        if done is not None:
            versions.append(done[-1] if isinstance(done, tuple) else done.v)
    assert versions == sorted(set(versions))  # strictly upwards
    assert abs(versions[-1] / 1e6 - time.time()) < 60  # microseconds of the clock


async def test_local_presence_versions_every_change_and_read():
    registry = LocalPresence()

    async def forget() -> None:
        registry._rooms.clear()

    await check_every_change_and_read_takes_a_newer_version(registry, registry, forget)


async def test_redis_presence_versions_every_change_and_read_across_workers(redis_registries):
    one, two = redis_registries

    async def forget() -> None:
        keys = [key async for key in one.redis.scan_iter(f"{one.prefix}*")]
        await one.redis.delete(*keys)

    await check_every_change_and_read_takes_a_newer_version(one, two, forget)


async def test_redis_versions_stay_exact_and_apart_when_changes_crowd_one_microsecond(
    redis_registries,
):
    """Many changes at once in one room, on two workers: each gets a version of its own,
    exactly as Redis stored it (a Lua number written with Lua's own conversion keeps 14
    digits: sixteen are needed), and the room's key holds the last."""
    one, two = redis_registries
    changes = await asyncio.gather(
        *(joined(worker, f"user{n}", f"s{n}") for n in range(50) for worker in (one, two))
    )
    versions = [change.v for change in changes]
    assert len(set(versions)) == len(versions)
    assert int(await one.redis.get(one._version_key(1))) == max(versions)


async def joins_at_once_each_see_themselves(registry) -> None:
    """As a storm's joins do: each registers its socket, then asks who is in the room."""

    async def one_join(n: int) -> tuple[presence.Change, presence.Snapshot]:
        change = await joined(registry, f"user{n}", f"s{n}")
        await join(registry, GUEST, f"g{n}")
        return change, await registry.in_room(room_id=1)

    answers = await asyncio.gather(*(one_join(n) for n in range(20)))

    for n, (change, (names, guests, v)) in enumerate(answers):
        assert f"user{n}" in names  # read after its own join, whoever else asked with it
        assert guests >= 1
        assert v > change.v  # and so newer than the join's own frame
    assert answers[-1][1][:2] == (sorted(f"user{n}" for n in range(20)), 20)


async def test_local_joins_at_once_each_see_themselves():
    await joins_at_once_each_see_themselves(LocalPresence())


async def test_redis_joins_at_once_each_see_themselves_in_one_read_a_turn(
    redis_registries, monkeypatch
):
    worker, _other = redis_registries
    reads: list[int] = []
    shared = worker.turns.shared

    async def counted(key, *commands):
        if key not in worker.turns.reads:
            reads.append(1)  # a read that goes out, not one that rides along
        return await shared(key, *commands)

    monkeypatch.setattr(worker.turns, "shared", counted)

    await joins_at_once_each_see_themselves(worker)

    assert 1 <= len(reads) < 20


async def test_a_dead_workers_users_expire_and_are_announced_offline_once(redis_registries):
    alive, dead = redis_registries
    heard = []

    async def announce(room_id: int, slug: str, username: str, v: int) -> None:
        heard.append((room_id, slug, username))
        versions.append(v)

    versions: list[int] = []
    alive.on_offline = announce
    await join(alive, "alice", "a1")
    await join(dead, "bob", "b1")
    await join(dead, "carol", "c1")
    last = await joined(alive, "carol", "c2")  # carol is also on the live worker
    dead.task.cancel()  # the worker dies: no more heartbeats from it
    dead.local.clear()

    await asyncio.sleep(2.2)  # > TTL (1.2 s): the live worker's heartbeat keeps its own
    await alive.sweep()
    await alive.sweep()

    assert await alive.online(room_id=1) == ["alice", "carol"]
    assert heard == [(1, "room-1", "bob")]
    assert versions[0] > last.v  # a page that saw the joins keeps the sweep's news


async def test_the_heartbeat_keeps_live_sockets_past_the_ttl(redis_registries):
    worker, _ = redis_registries
    await join(worker, "alice", "a1")

    await asyncio.sleep(2.5)  # two TTLs: only the heartbeat keeps her

    assert await worker.online(room_id=1) == ["alice"]
    assert await worker.sweep() == []


def published(monkeypatch) -> list[dict]:
    """The frames PresenceNews broadcasts from now on, kept in order."""
    sent: list[dict] = []
    monkeypatch.setattr(
        presence, "publish", lambda group, event: sent.append(json.loads(event["text"]))
    )
    return sent


async def test_a_reload_across_workers_is_told_in_versions_that_order_it(
    redis_registries, monkeypatch
):
    """The race a users run saw once (2026-12-02): bob reloads; his old tab closes on one
    worker, which holds the news (its grace, then its room's open window), and the new tab
    opens on the other worker, whose room is quiet (so it tells at once). The room hears
    "online" first and "offline" after: a page that took them in arrival order listed bob
    gone while he was there. Now the frames carry the versions Redis gave the changes, in
    the order Redis made them, and a page keeps the newest (tests/js/counts.test.js)."""
    monkeypatch.setattr(presence, "PRESENCE_EVERY", 0.2)
    monkeypatch.setattr(presence, "OFFLINE_GRACE", 0.1)
    sent = published(monkeypatch)
    old_worker, new_worker = redis_registries
    news = {worker: presence.PresenceNews(None) for worker in redis_registries}  # type: ignore
    await joined(old_worker, "bob", "old-tab")
    news[old_worker].presence_changed(1, "room-1", "carol", online=True, v=1)  # a busy room

    gone = await left(old_worker, "bob", "old-tab")
    news[old_worker].presence_changed(1, "room-1", "bob", online=False, v=gone.v)
    back = await joined(new_worker, "bob", "new-tab")
    news[new_worker].presence_changed(1, "room-1", "bob", online=True, v=back.v)
    await asyncio.sleep(0.3)  # the old worker's grace, then its window, end

    told = [(frame["online"], frame["v"]) for frame in sent if frame["user"] == "bob"]
    assert told == [(True, back.v), (False, gone.v)]  # arrival order: wrong way round
    assert gone.v < back.v  # the versions: the right way round
    newest = max(told, key=lambda pair: pair[1])
    assert newest == (True, back.v)


async def test_a_window_tells_each_users_net_change_with_its_latest_version(monkeypatch):
    monkeypatch.setattr(presence, "PRESENCE_EVERY", 0.2)
    monkeypatch.setattr(presence, "OFFLINE_GRACE", 0.3)
    sent = published(monkeypatch)
    news = presence.PresenceNews(None)  # type: ignore[arg-type]
    news.presence_changed(1, "r", "alice", online=True, v=10)  # at once; opens the window
    news.presence_changed(1, "r", "bob", online=True, v=11)
    news.presence_changed(1, "r", "bob", online=False, v=12)
    news.presence_changed(1, "r", "bob", online=True, v=13)  # back within the grace
    news.presence_changed(1, "r", "carol", online=True, v=14)
    news.presence_changed(1, "r", "carol", online=False, v=15)  # came and went: untold
    news.presence_changed(1, "r", "alice", online=False, v=16)  # gone for good
    await asyncio.sleep(0.25)  # the window closed; alice's grace runs

    assert [(f["user"], f["online"], f["v"]) for f in sent] == [
        ("alice", True, 10),
        ("bob", True, 11),
    ]
    await asyncio.sleep(0.5)
    assert [(f["user"], f["online"], f["v"]) for f in sent][2:] == [("alice", False, 16)]
    assert news.going == {}


async def test_a_reload_that_stays_on_the_worker_is_no_change_to_the_room(monkeypatch):
    """Seen running it as users: bob reloaded, his new tab landed on the worker of his old
    one, and the room heard him go at once and come back only at the end of its second: a
    second listed as gone. His going now waits OFFLINE_GRACE, and his coming back within it
    cancels both; a reload slower than that is told as both, in order."""
    monkeypatch.setattr(presence, "PRESENCE_EVERY", 0.2)
    monkeypatch.setattr(presence, "OFFLINE_GRACE", 0.3)
    sent = published(monkeypatch)
    registry = LocalPresence()
    news = presence.PresenceNews(None)  # type: ignore[arg-type]

    async def reload(old: str, new: str, pause: float) -> None:
        gone = await left(registry, "bob", old)
        news.presence_changed(1, "r", "bob", online=False, v=gone.v)
        await asyncio.sleep(pause)
        back = await joined(registry, "bob", new)
        news.presence_changed(1, "r", "bob", online=True, v=back.v)

    await joined(registry, "bob", "tab1")
    await reload("tab1", "tab2", 0.05)
    await asyncio.sleep(0.5)
    assert sent == []  # never heard to go
    await reload("tab2", "tab3", 0.5)  # slower than the grace
    await asyncio.sleep(0.3)  # the window the going opened closes
    assert [frame["online"] for frame in sent] == [False, True]
    assert sent[0]["v"] < sent[1]["v"]


@pytest.mark.django_db(transaction=True)
async def test_join_and_leave_churn_reaches_listeners_as_one_net_change_per_user_per_second(
    connect, settings, alice, bob, make_user, general
):
    settings.CHAT_JOIN_RATE_LIMIT = "off"
    carol = await database_sync_to_async(make_user)("carol")
    listener = await connect(bob)
    await listener.join("general")
    assert (await listener.expect("presence"))["user"] == "bob"  # himself
    await asyncio.sleep(PRESENCE_EVERY * 1.2)  # the window his arrival opened closes
    churners = [await connect(alice), await connect(carol)]

    await churners[0].join("general")  # a quiet room: announced at once
    first = await listener.poll(PRESENCE_EVERY / 2)
    started = time.monotonic()
    for _ in range(30):
        for churner in churners:
            await churner.join("general")
            await churner.request({"type": "leave", "room": "general"})
    await churners[1].join("general")  # carol stays; alice has left
    windows = math.ceil((time.monotonic() - started) / PRESENCE_EVERY) + 1

    heard = [first]
    while (frame := await listener.poll(PRESENCE_EVERY * 1.5)) is not None:
        heard.append(frame)
    assert first == {
        "type": "presence",
        "room": "general",
        "user": "alice",
        "online": True,
        "v": first["v"],
    }
    presence = [(f["user"], f["online"]) for f in heard if f["type"] == "presence"]
    # Not 122: the first at once, then at most one per user per window (a busy machine may
    # stretch the churn over more than one window).
    assert len(presence) <= 1 + 2 * windows < 20
    last = {user: online for user, online in presence}
    assert last == {"alice": False, "carol": True}
    assert (await listener.join("general"))["online"] == ["bob", "carol"]


async def test_users_redis_lost_are_put_back_by_the_heartbeat_and_announced_online_once(
    redis_registries,
):
    """Redis restarted empty: the next beat puts back this worker's sockets, and names the
    users it had to put back in each room's list (a page that joined meanwhile was told
    they were away), once, and not those who left before the beat."""
    worker, other = redis_registries
    heard: list[tuple[int, str, str]] = []

    async def announce(room_id: int, slug: str, username: str, v: int) -> None:
        heard.append((room_id, slug, username))

    worker.on_online = announce
    await join(worker, "alice", "a1")
    await join(worker, "alice", "a2")  # two tabs: still one user to announce
    await join(worker, "bob", "b1", room=2)
    await join(worker, "carol", "c1")
    await join(worker, GUEST, "g1", room=2)  # an anonymous reader: its room's count changes
    await join(other, "dave", "d1")  # the other worker's: put back by its own beat
    assert await worker.heartbeat() == []  # nothing lost: nothing to announce

    keys = [key async for key in worker.redis.scan_iter(f"{worker.prefix}*")]
    await worker.redis.delete(*keys)  # Redis restarted empty
    assert await worker.online(room_id=1) == []
    worker.local[1].pop("c1")  # carol's socket left after the loss, before the beat

    restored = await worker.heartbeat()

    everyone = [(1, "room-1", "alice"), (2, "room-2", GUEST), (2, "room-2", "bob")]
    assert restored == heard == everyone
    assert await worker.online(room_id=1) == ["alice"]
    assert await worker.online(room_id=2) == ["bob"]
    assert await worker.heartbeat() == []  # once
    assert heard == everyone


@pytest.mark.parametrize(
    ("tabs", "told_offline", "put_back"),
    [
        ({"a1": "worker"}, True, []),
        ({"a1": "worker", "a2": "worker"}, False, []),
        ({"a1": "worker", "a2": "other"}, True, ["alice"]),
    ],
    ids=["her only tab", "another tab here", "another tab on the other worker"],
)
async def test_a_tab_closing_after_redis_restarted_empty_before_the_beat_tells_the_room(
    tabs, told_offline, put_back
):
    """Redis restarted empty and alice's tab closed before this worker's beat put its
    entries back: Redis knew no socket of hers, so the removal told no one, and the pages
    open since before the restart listed her online for good. Now the removal of a socket
    the worker had tells the room whenever Redis holds no other socket of hers (never while
    this worker has one); a tab of hers on another worker is put back by that worker's beat,
    which says she is online again, with a newer version. Said once, not per removal."""
    async with two_workers(RedisPresence, ttl=30.0) as (worker, other):
        for registry in (worker, other):
            registry.task.cancel()  # this test beats by hand
        registries = {"worker": worker, "other": other}
        for socket, where in tabs.items():
            await join(registries[where], "alice", socket)
        keys = [key async for key in worker.redis.scan_iter(f"{worker.prefix}*")]
        await worker.redis.delete(*keys)  # Redis restarted empty

        gone = await left(worker, "alice", "a1")
        again = await left(worker, "alice", "a1")  # removed twice: not the worker's now
        back: list[tuple[str, int]] = []

        async def announce(room_id: int, slug: str, username: str, v: int) -> None:
            back.append((username, v))

        other.on_online = announce
        await worker.heartbeat()
        await other.heartbeat()

        assert (gone.changed, again.changed) == (told_offline, False)
        assert [username for username, _ in back] == put_back
        assert all(v > gone.v for _, v in back)  # a page keeps the newest: online
        listed = ["alice"] if len(tabs) > 1 else []
        assert await other.online(room_id=1) == listed


async def test_a_beat_refreshes_every_socket_in_one_call_per_room_and_share(
    redis_registries, monkeypatch
):
    """The beat batches a room's sockets (per user, BEAT_CHUNK at most per call): every
    socket's expiry and every user's still move forward, whichever call it fell in, and a
    user whose tabs straddle two calls is put back once. Redis lost everything first, so
    each call also meets a Redis without its script."""
    monkeypatch.setattr(presence, "BEAT_CHUNK", 3)
    worker, _other = redis_registries
    sockets = {"a1": "alice", "g1": GUEST, "a2": "alice", "g2": GUEST, "b1": "bob", "a3": "alice"}
    for socket, user in sockets.items():
        await join(worker, user, socket)
    await join(worker, "carol", "c1", room=2)
    keys = [key async for key in worker.redis.scan_iter(f"{worker.prefix}*")]
    await worker.redis.delete(*keys)  # Redis restarted empty: no keys,
    code = f"{presence.BEAT}-- {uuid.uuid4()}\n"  # and no script (this one is new to it)
    worker.scripts["beat"] = worker.redis.register_script(code)
    heard: list[tuple[int, str, str]] = []

    async def announce(room_id: int, slug: str, username: str, v: int) -> None:
        heard.append((room_id, slug, username))

    worker.on_online = announce
    calls: list[int] = []
    run = worker.turns.run

    async def counted(*commands):
        calls.append(len(commands))
        return await run(*commands)

    monkeypatch.setattr(worker.turns, "run", counted)
    before = time.time()
    restored = await worker.heartbeat()

    assert calls == [3]  # room 1's six sockets in two calls, room 2's in one: one turn
    assert (
        restored
        == heard
        == [
            (1, "room-1", GUEST),
            (1, "room-1", "alice"),
            (1, "room-1", "bob"),
            (2, "room-2", "carol"),
        ]
    )
    room = worker._room_key(1)
    for socket, user in sockets.items():
        assert await worker.redis.zscore(f"{room}:{user}", socket) > before + worker.ttl / 2
    assert await worker.redis.zscore(room, "alice") > before + worker.ttl / 2
    assert (await worker.in_room(room_id=1))[:2] == (["alice", "bob"], 2)
    assert await worker.online(room_id=2) == ["carol"]
    assert await worker.heartbeat() == []  # put back once


@pytest.mark.django_db(transaction=True)
async def test_a_page_that_joined_after_redis_lost_presence_hears_who_the_heartbeat_put_back(
    connect, settings, alice, bob, general
):
    """Redis restarted empty, and a page joined before the next beat: it was told alice
    was away while her tab stayed open. The beat puts her back and the room hears it
    (before, that page showed her away until it joined again)."""
    settings.CHAT_PRESENCE_REDIS_URL = redis_url()
    tab = await connect(alice)
    await tab.join("general")
    runtime = runtime_for_loop()
    runtime.stop("presence heartbeat")  # the beat runs below, when the test says
    registry = runtime.presence
    await registry.redis.delete(*[key async for key in registry.redis.scan_iter("chat:presence:*")])

    page = await connect(bob)
    assert (await page.join("general"))["online"] == ["bob"]
    await registry.beat()

    async with asyncio.timeout(5):
        while True:
            frame = await page.recv_until("presence")
            if frame["user"] == "alice":
                break
    assert frame["online"] is True
    for socket in (tab, page):
        await socket.close()


class _Runtime:
    """A runtime whose presence registry fails to count guests while `away`."""

    def __init__(self) -> None:
        self.away = True
        self.presence = self

    async def counted(self, *, room_id: int) -> tuple[int, int]:
        if self.away:
            raise ConnectionError("Redis is away")
        return 2, 1


async def test_while_redis_is_away_a_guest_count_failure_is_logged_once_an_outage(
    monkeypatch, caplog
):
    """Every room's count fails while Redis is away: the first is logged with its
    traceback, the rest quietly, and the first count Redis answers says how many failed."""
    monkeypatch.setattr(presence, "GUESTS_EVERY", 0)
    sent = []
    monkeypatch.setattr(presence, "publish", lambda *broadcast: sent.append(broadcast))
    caplog.set_level(logging.DEBUG, logger="chat.realtime.presence")
    runtime = _Runtime()
    news = presence.PresenceNews(runtime)  # type: ignore[arg-type]

    for room in range(3):
        news.guests_changed(room, f"room-{room}")
    await asyncio.gather(*news.guest_updates.values())
    runtime.away = False
    news.guests_changed(3, "room-3")
    await asyncio.gather(*news.guest_updates.values())

    records = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert [level for level, _ in records] == ["ERROR", "DEBUG", "DEBUG", "WARNING"]
    assert "Could not count a room's guests" in records[0][1]
    assert "3 request(s) fell back" in records[3][1]
    assert len(sent) == 1  # the count that Redis answered
