"""Delivery guarantees under faults (docs/reliability.md): lossy layers, slow readers,
expiring groups, racing retries and concurrent processes.

Readers run the browser's own delivery logic (sync.js, in Node; tests/support/js_client.py).
"""

import asyncio
import json
import os
import subprocess
import sys

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import connection

from chat.models import Message, Room
from chat.protocol.events import room_group
from chat.realtime import publisher
from chat.realtime.layer_events import EVENT_STREAMS, carrier, event_count, event_size, events_in
from chat.realtime.runtime import runtime_for_loop
from tests.support import PROJECT_ROOT
from tests.support.js_client import JsClient
from tests.support.redis_service import use_layer
from tests.support.sockets import frames_of
from tests.support.waiting import until

pytestmark = pytest.mark.django_db(transaction=True)


async def open_tab(connect, user=None, *, room: str = "general") -> tuple[JsClient, object]:
    """A browser tab: sync.js in Node, joined to `room` through a real consumer."""
    client = await JsClient.start()
    socket = await connect(user)
    await client.watch(room)
    await client.connected(socket)
    return client, socket


async def pump(client: JsClient, socket, *, quiet: float = 0.3) -> None:
    """Feed the client every frame its socket receives until the socket goes quiet."""
    while (frame := await socket.poll(quiet)) is not None:
        await client.receive(frame)


async def pump_until(client: JsClient, socket, stop: asyncio.Event) -> None:
    while not stop.is_set():
        frame = await socket.poll(0.02)
        if frame is not None:
            await client.receive(frame)


async def settle(client: JsClient, socket, *, within: float = 30.0) -> dict:
    """Let the client's timers run (ping after quiet → pong → resync) and drain the socket.

    It waits for the pong and then for every room to be out of sync, not for a quiet spell:
    on a loaded CI machine an answer can take longer than any fixed pause.
    """
    await pump(client, socket)
    await client.advance(30_000)
    async with asyncio.timeout(within):
        while (frame := await socket.poll(within)) is not None:
            await client.receive(frame)
            if frame.get("type") == "pong":
                break
        while True:
            await pump(client, socket)
            rooms = (await client.state())["rooms"]
            if not any(room["syncing"] for room in rooms.values()):
                return rooms


async def drain(client: JsClient, socket, room: str, count: int, *, within: float = 30.0) -> dict:
    """Feed the client frames until it shows `count` messages of `room`: a polling
    connection's come a poll at a time, and on a loaded machine later than `pump`'s quiet
    spell. The client's clock does not move, so no ping and no resync fill a gap meanwhile."""
    async with asyncio.timeout(within):
        while len((shown := (await client.state())["rooms"][room])["seqs"]) < count:
            if (frame := await socket.poll(within)) is not None:
                await client.receive(frame)
    return shown


async def post(socket, count: int, *, room: str = "general", prefix: str = "m") -> list[dict]:
    acks = []
    for n in range(count):
        ack = await socket.request(
            {"type": "send", "room": room, "body": f"{prefix}{n}", "client_id": f"{prefix}{n}"}
        )
        assert ack["type"] == "ack", ack
        acks.append(ack)
    return acks


@pytest.fixture
def lossy_layer(settings):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "tests.support.faults.LossyChannelLayer",
            "CONFIG": {"drop": 0.05, "reorder": 0.05, "seed": 20261125},
        }
    }
    return get_channel_layer()


async def test_readers_on_a_lossy_reordering_layer_converge_to_every_message_once(
    connect, lossy_layer, alice, bob, general, settings
):
    # An ack waits for its broadcast's local fan-out, at most this long: a dropped broadcast
    # never comes, so the default 2 s bound would make this test wait out every drop.
    settings.CHAT_ACK_WAITS_FOR_FANOUT = 0.1
    sender = await connect(alice)
    await sender.join("general")
    tabs = [await open_tab(connect, user) for user in (bob, None, None)]
    stop = asyncio.Event()
    pumps = [asyncio.create_task(pump_until(c, s, stop)) for c, s in tabs]

    acks = await post(sender, 200)
    stop.set()
    await asyncio.gather(*pumps)

    assert [a["seq"] for a in acks] == list(range(1, 201))
    # The faults really happened (each process receives a room's broadcast once, so a
    # dropped delivery is lost to every reader in the process at once).
    assert lossy_layer.dropped >= 5
    assert lossy_layer.reordered >= 5
    for client, socket in tabs:
        rooms = await settle(client, socket)
        assert rooms["general"]["seqs"] == list(range(1, 201))
        assert len(set(rooms["general"]["ids"])) == 200
        await client.close()
        await socket.close()
    await sender.close()


@pytest.mark.parametrize("transport", ["websocket", "http", "poll"])
async def test_a_reader_that_stops_reading_does_not_stall_the_room_and_recovers(
    connect, settings, alice, bob, general, transport
):
    settings.CHAT_SOCKET_BACKLOG = 20
    sender = await connect(alice)
    await sender.join("general")
    fast, fast_socket = await open_tab(connect, bob)
    slow, slow_socket = await open_tab(connect)
    await pump(fast, fast_socket)
    await pump(slow, slow_socket)
    # The slow tab stops reading: its transport takes 5 more frames, then sends to it wait
    # (as on a full TCP buffer), 20 more queue behind them, and the rest are dropped for it.
    slow_socket.communicator.output_queue._maxsize = 5
    stop = asyncio.Event()
    fast_pump = asyncio.create_task(pump_until(fast, fast_socket, stop))

    # A room the slow reader stalled would never get past this post (its acks would wait on
    # the slow tab), and the test's timeout would end it: no clock needed (over HTTP on a busy
    # PostgreSQL run, 200 POSTs through Django's test client took 46 s).
    await post(sender, 200)
    stop.set()  # one reader of the fast client at a time: stop its pump, then drain it
    await fast_pump
    await pump(fast, fast_socket)

    fast_rooms = (await fast.state())["rooms"]
    assert fast_rooms["general"]["seqs"] == list(range(1, 201))
    slow_socket.communicator.output_queue._maxsize = 0  # it reads again
    await pump(slow, slow_socket)
    gappy = (await slow.state())["rooms"]["general"]
    if transport == "poll":
        # A polling connection keeps its frames until a poll acks them (up to
        # CHAT_FALLBACK_MAX_UNACKED_BYTES; past that it ends, test_fallback.py), so a reader
        # that stops polling misses nothing; the room went on meanwhile all the same.
        gappy = await drain(slow, slow_socket, "general", 200)
        assert gappy["seqs"] == list(range(1, 201))
    else:
        assert len(gappy["seqs"]) < 200 or gappy["syncing"]  # it did miss some
    rooms = await settle(slow, slow_socket)
    assert rooms["general"]["seqs"] == list(range(1, 201))
    for client, socket in ((fast, fast_socket), (slow, slow_socket)):
        await client.close()
        await socket.close()
    await sender.close()


@pytest.mark.parametrize(("refresh", "delivered"), [(0.5, True), (3600, False)])
async def test_long_lived_sockets_stay_in_their_groups_past_group_expiry(
    connect, settings, alice, general, refresh, delivered
):
    """With group_expiry = 1 s, a process that refreshes its groups every 0.5 s still gets
    a broadcast 3 s later; one that does not is forgotten (so the refresh is what works)."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {"group_expiry": 1},
        }
    }
    settings.CHAT_GROUP_REFRESH_SECONDS = refresh
    listener = await connect()
    await listener.join("general")

    await asyncio.sleep(3)  # the layer checks expiry in whole seconds
    while await listener.poll(0.2) is not None:  # its own arrival's guest count, if heard
        pass
    sender = await connect(alice)
    await sender.join("general")
    await sender.request({"type": "send", "room": "general", "body": "hi", "client_id": "e"})

    if delivered:
        assert (await listener.expect("presence"))["user"] == "alice"
        assert (await listener.expect("message"))["message"]["body"] == "hi"
    else:
        assert await listener.nothing()
    for socket in (listener, sender):
        await socket.close()


@pytest.mark.parametrize("limit", ["whole", "split"])
@pytest.mark.parametrize("layer", ["in-memory", "redis", "redis-pubsub"])
async def test_many_rooms_sending_at_once_reach_each_listener_once_in_order(
    connect, settings, monkeypatch, alice, bob, make_room, layer, limit
):
    """Twelve rooms in eight shards: rooms that share a shard travel the layer together
    (layer_events.carrier), each in its own order, and each room's sockets hear only it;
    also when the size limit splits a shard's turn into many layer messages ("split")."""
    use_layer(settings, layer)
    settings.CHAT_FANOUT_SHARDS = 8
    # Acks go without waiting for their broadcast, held below, so every send is acked.
    settings.CHAT_ACK_WAITS_FOR_FANOUT = 0.05
    settings.CHAT_RATE_LIMIT = "off"  # alice sends 60 messages at once
    text_limit = 6 * 1024 if limit == "split" else publisher.BATCH_TEXT
    monkeypatch.setattr(publisher, "BATCH_TEXT", text_limit)
    slugs = [f"busy-{n}" for n in range(12)]
    rooms = [await database_sync_to_async(make_room)(slug) for slug in slugs]
    assert len({carrier(room_group(room.pk)) for room in rooms}) < len(rooms)  # some share
    everywhere, one_room = await connect(bob), await connect()
    senders = [await connect(alice) for _ in slugs]  # a socket answers one frame at a time
    for slug, sender in zip(slugs, senders, strict=True):
        await sender.join(slug)
        await everywhere.join(slug)
    await one_room.join(slugs[0])
    runtime = runtime_for_loop()
    # The publisher's first send waits until every message is queued behind it, so its
    # next turn holds them all (as when a busy process's sends pile up).
    released, group_send = asyncio.Event(), runtime.layer.group_send
    sent: list[dict] = []

    async def held(group: str, message: dict) -> None:
        await released.wait()
        sent.append(message)
        await group_send(group, message)

    monkeypatch.setattr(runtime.layer, "group_send", held)

    for n in range(1, 6):
        for slug, sender in zip(slugs, senders, strict=True):
            body = f"{slug}:{n}" + "." * 1000  # about 2.2 KB a frame, with its HTML
            frame = {"type": "send", "room": slug, "body": body, "client_id": f"{slug}:{n}"}
            await sender.send(frame)
    for sender in senders:  # each acked, so each committed and queued for the layer
        assert len(await frames_of(sender, "ack", 5)) == 5
    released.set()

    heard = await frames_of(everywhere, "message", 60)
    by_room = {
        slug: [f["message"]["body"].split(".")[0] for f in heard if f["room"] == slug]
        for slug in slugs
    }
    assert by_room == {slug: [f"{slug}:{n}" for n in range(1, 6)] for slug in slugs}
    assert [f["message"]["seq"] for f in heard if f["room"] == slugs[0]] == [1, 2, 3, 4, 5]
    alone = await frames_of(one_room, "message", 5)
    assert [f["message"]["body"].split(".")[0] for f in alone] == [
        f"{slugs[0]}:{n}" for n in range(1, 6)
    ]
    # The path taken: a shard's rooms together, within the limit, a room's five messages
    # in one layer message when whole and spread over several when split.
    assert any(message["type"] == EVENT_STREAMS for message in sent)
    sizes = [sum(map(event_size, events_in(message))) for message in sent]
    assert max(sizes) <= text_limit
    assert max(map(event_count, sent)) >= (5 if limit == "whole" else 2)
    if limit == "split":
        assert max(map(event_count, sent)) < 5


@pytest.mark.parametrize("layer", ["in-memory", "redis", "redis-pubsub"])
async def test_a_process_its_last_socket_left_takes_new_sockets_live(
    connect, settings, alice, bob, general, layer
):
    """The quiet spell with no socket at all (a small site at night): the fan-out stops its
    receive then, and the sockets that come next must still hear each other, on every layer
    CHAT_CHANNEL_LAYER offers. The pub/sub layer drops a channel whose receive was cancelled,
    so the process refused every later socket while it kept that channel's name."""
    use_layer(settings, layer)
    for n in range(2):  # and once more after the first comeback
        first = await connect(alice)
        await first.join("general")
        await first.close()
        await until(lambda: not runtime_for_loop().fanout.subscribed)

        listener, sender = await connect(bob), await connect(alice)
        for socket in (listener, sender):
            await socket.join("general")
        frame = {"type": "send", "room": "general", "body": "back", "client_id": f"back{n}"}
        ack = await sender.request(frame)
        assert ack["type"] == "ack", ack
        heard = await listener.recv_until("message")
        assert (heard["message"]["body"], heard["message"]["seq"]) == ("back", ack["seq"])
        for socket in (listener, sender):
            await socket.close()


async def test_pong_tells_each_joined_rooms_last_seq(connect, alice, general, make_room):
    await database_sync_to_async(make_room)("quiet")
    socket = await connect(alice)
    await socket.join("general")
    await socket.join("quiet")
    await post(socket, 3)

    pong = await socket.request({"type": "ping"})

    assert pong["rooms"] == {"general": 3, "quiet": 0}
    await socket.close()


@pytest.mark.parametrize("transport", ["websocket", "http", "poll"])
async def test_the_same_client_id_from_two_sockets_at_once_stores_one_message(
    connect, alice, general
):
    tabs = [await connect(alice), await connect(alice)]
    for tab in tabs:
        await tab.join("general")
    frame = {"type": "send", "room": "general", "body": "twice?", "client_id": "dup"}

    first, second = await asyncio.gather(*(tab.request(frame) for tab in tabs))

    assert first["type"] == second["type"] == "ack"
    assert (first["id"], first["seq"]) == (second["id"], second["seq"])
    assert await database_sync_to_async(Message.objects.filter(room=general).count)() == 1
    for tab in tabs:
        await tab.close()


def _subprocess_env() -> dict[str, str]:
    """The environment of a separate process using this test's database."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        url = f"sqlite:///{db['NAME']}"
    else:
        host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
        url = f"postgres://{db['USER'] or ''}@{host}/{db['NAME']}"
    return {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "chatsite.settings"}


def test_concurrent_senders_in_several_processes_get_gapless_seqs_and_one_row_per_client_id(
    general, make_user
):
    users = [make_user() for _ in range(8)]
    processes, threads, messages = 3, 16, 5
    env = _subprocess_env()
    command = [
        sys.executable,
        "-m",
        "tests.support.concurrent_sender",
        str(general.pk),
        str(threads),
        str(messages),
        *[str(u.pk) for u in users],
    ]

    runs = [
        subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(processes)
    ]
    outputs = [run.communicate(timeout=120)[0] for run in runs]

    assert [run.returncode for run in runs] == [0] * processes
    acks = [json.loads(output) for output in outputs]
    expected = threads * messages
    seqs = sorted(Message.objects.filter(room=general).values_list("seq", flat=True))
    assert seqs == list(range(1, expected + 1))
    assert Room.objects.get(pk=general.pk).last_seq == expected
    assert all(len(a) == expected for a in acks)
    assert acks[0] == acks[1] == acks[2]  # every process was acked the same row per client_id


async def test_a_resync_rejoins_a_group_the_layer_forgot(connect, alice, general):
    """If the layer loses the process's membership (expiry, a Redis restart), the client's
    resync, prompted by the gap or the pong, puts it back."""
    listener = await connect()
    await listener.join("general")
    sender = await connect(alice)
    await sender.join("general")
    assert (await listener.expect("presence"))["user"] == "alice"
    get_channel_layer().groups.clear()  # the layer forgets every group member

    await sender.request({"type": "send", "room": "general", "body": "lost", "client_id": "1"})
    assert await listener.nothing()
    replay = await listener.join("general", since=0)
    await sender.request({"type": "send", "room": "general", "body": "heard", "client_id": "2"})

    assert [m["body"] for m in replay["messages"]] == ["lost"]
    assert (await listener.expect("message"))["message"]["body"] == "heard"
    for socket in (listener, sender):
        await socket.close()


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="PostgreSQL's row locks and the order they are taken in are what this races; SQLite"
    " has one writer at a time, and 48 of them outwait its busy timeout on a loaded machine",
)
def test_group_commits_racing_in_several_processes_store_each_client_id_once_without_gaps(
    general, make_room, make_user
):
    """The batch path (one seq bump per room, one multi-row INSERT, the savepoint way again
    when a client_id collides) under 3 processes of 16 threads, each batch writing to every
    room in a different order and all of them to one client_id together."""
    rooms = [general, make_room("second"), make_room("third")]
    users = [make_user() for _ in range(5)]
    processes, threads, batches = 3, 16, 4
    command = [
        sys.executable,
        "-m",
        "tests.support.batch_sender",
        ",".join(str(room.pk) for room in rooms),
        str(threads),
        str(batches),
        *[str(u.pk) for u in users],
    ]

    runs = [
        subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=_subprocess_env(), stdout=subprocess.PIPE, text=True
        )
        for _ in range(processes)
    ]
    outputs = [run.communicate(timeout=180)[0] for run in runs]

    assert [run.returncode for run in runs] == [0] * processes
    acks = [json.loads(output) for output in outputs]
    assert acks[0] == acks[1] == acks[2]  # every process was acked the same row per client_id
    stored = {
        f"{room_id}:{author_id}:{client_id}": [pk, seq]
        for pk, room_id, author_id, client_id, seq in Message.objects.values_list(
            "pk", "room_id", "author_id", "client_id", "seq"
        )
    }
    assert stored == acks[0]  # every ack is a stored row, every row was acked, each key once
    assert len(stored) == threads * batches * len(rooms) + batches
    for room in rooms:
        seqs = sorted(Message.objects.filter(room=room).values_list("seq", flat=True))
        assert seqs == list(range(1, len(seqs) + 1))
        assert Room.objects.get(pk=room.pk).last_seq == len(seqs)
