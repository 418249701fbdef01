"""Presence registries: in-process, and shared through Redis with a TTL heartbeat."""

import asyncio
import math
import time

import pytest
from channels.db import database_sync_to_async

from chat.realtime.presence import PRESENCE_EVERY, LocalPresence, RedisPresence
from tests.support.redis_service import two_workers


@pytest.fixture
async def redis_registries():
    """Two workers' registries on one Redis, under a prefix of this test's own."""
    async with two_workers(RedisPresence) as workers:
        yield workers


async def join(registry, user: str, socket: str, room: int = 1) -> bool:
    return await registry.add(
        room_id=room, room_slug=f"room-{room}", username=user, socket_id=socket
    )


async def leave(registry, user: str, socket: str, room: int = 1) -> bool:
    return await registry.remove(room_id=room, username=user, socket_id=socket)


async def check_first_and_last_socket_semantics(one, two) -> None:
    assert await join(one, "alice", "a1") is True  # her first socket: announce online
    assert await join(two, "alice", "a2") is False  # a second tab, on another worker
    assert await join(two, "bob", "b1") is True
    assert await one.online(room_id=1) == ["alice", "bob"]
    assert await two.online(room_id=2) == []

    assert await leave(one, "alice", "a1") is False  # she still has a tab
    assert await leave(two, "alice", "a2") is True  # her last: announce offline
    assert await leave(two, "alice", "a2") is False  # and only once
    assert await one.online(room_id=1) == ["bob"]


async def test_local_presence_counts_a_users_sockets_once():
    registry = LocalPresence()
    await check_first_and_last_socket_semantics(registry, registry)


async def test_redis_presence_is_shared_by_workers(redis_registries):
    await check_first_and_last_socket_semantics(*redis_registries)


async def test_a_dead_workers_users_expire_and_are_announced_offline_once(redis_registries):
    alive, dead = redis_registries
    heard = []

    async def announce(room_id: int, slug: str, username: str) -> None:
        heard.append((room_id, slug, username))

    alive.on_offline = announce
    await join(alive, "alice", "a1")
    await join(dead, "bob", "b1")
    await join(dead, "carol", "c1")
    await join(alive, "carol", "c2")  # carol is also on the live worker
    dead.task.cancel()  # the worker dies: no more heartbeats from it
    dead.local.clear()

    await asyncio.sleep(2.2)  # > TTL (1.2 s): the live worker's heartbeat keeps its own
    await alive.sweep()
    await alive.sweep()

    assert await alive.online(room_id=1) == ["alice", "carol"]
    assert heard == [(1, "room-1", "bob")]


async def test_the_heartbeat_keeps_live_sockets_past_the_ttl(redis_registries):
    worker, _ = redis_registries
    await join(worker, "alice", "a1")

    await asyncio.sleep(2.5)  # two TTLs: only the heartbeat keeps her

    assert await worker.online(room_id=1) == ["alice"]
    assert await worker.sweep() == []


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
    assert first == {"type": "presence", "room": "general", "user": "alice", "online": True}
    presence = [(f["user"], f["online"]) for f in heard if f["type"] == "presence"]
    # Not 122: the first at once, then at most one per user per window (a busy machine may
    # stretch the churn over more than one window).
    assert len(presence) <= 1 + 2 * windows < 20
    last = {user: online for user, online in presence}
    assert last == {"alice": False, "carol": True}
    assert (await listener.join("general"))["online"] == ["bob", "carol"]
