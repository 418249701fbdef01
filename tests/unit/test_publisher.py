"""The publisher sends what is queued in as few layer messages as order allows, and the
fan-out hands a batch on in order (chat/realtime/publisher.py, fanout.py, layer_events.py).

Each room's stream keeps its order and may pass another room's; every other event keeps its
place among all of them. The delivery guarantees end to end are in tests/asgi
(test_reliability, test_bans, test_revocations); here, the rules themselves."""

import asyncio
import gc
import logging
import threading
import weakref
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer

from chat.protocol import events
from chat.realtime import layer_events
from chat.realtime import publisher as publisher_module
from chat.realtime.fanout import Fanout
from chat.realtime.layer_events import carrier, events_in
from chat.realtime.publisher import Publisher, rounds
from chatsite.patches.daphne_frames import text_frame


def message(room: int, seq: int, text: str | None = None) -> tuple[str, dict[str, Any]]:
    group = events.room_group(room)
    event = {"type": events.EVENT_BROADCAST, "group": group, "text": text or f"m{room}.{seq}"}
    event["seq"] = seq
    return group, event


def typing(room: int, sender: str) -> tuple[str, dict[str, Any]]:
    group = events.room_group(room)
    return group, {"type": events.EVENT_TYPING, "group": group, "text": "t", "sender": sender}


def queued(*sends: tuple[str, dict[str, Any]]) -> list[tuple[float, str, dict[str, Any]]]:
    return [(float(i), group, event) for i, (group, event) in enumerate(sends)]


@pytest.fixture(autouse=True)
def eight_shards(settings):
    """Rooms 1 to 7 in shards of their own, room 10 in room 1's."""
    settings.CHAT_FANOUT_SHARDS = 8
    assert len({carrier(events.room_group(room)) for room in range(1, 8)}) == 7
    assert carrier(events.room_group(10)) == carrier(events.room_group(1))


def shard(room: int) -> str:
    return carrier(events.room_group(room))


def plan(sends: list[tuple[float, str, dict[str, Any]]]) -> list[dict[str, list[list[Any]]]]:
    """rounds() as {layer group: [[event, ...] per layer message]} per round."""
    return [
        {group: [events_in(message) for _, message in messages] for group, messages in round_}
        for round_ in rounds(sends)
    ]


def test_room_streams_of_one_shard_go_in_one_message_each_in_order():
    m11, m10, m12 = message(1, 1), message(10, 1), message(1, 2)
    t10 = typing(10, "s1")

    [[(layer_group, [(_, sent)])]] = rounds(queued(m11, m10, m12, t10))

    assert layer_group == shard(1)
    assert sent["type"] == layer_events.EVENT_STREAMS
    assert sent["streams"] == [["room.1", [m11[1], m12[1]]], ["room.10", [m10[1], t10[1]]]]


def test_shards_go_side_by_side_each_room_in_order():
    m11, m21, m12 = message(1, 1), message(2, 1), message(1, 2)
    t2 = typing(2, "s1")

    assert plan(queued(m11, m21, m12, t2)) == [
        {shard(1): [[m11[1], m12[1]]], shard(2): [[m21[1], t2[1]]]}
    ]


def test_a_single_event_travels_as_itself_not_as_a_batch():
    group, event = message(1, 1)

    [[(sent_group, [(_, sent)])]] = rounds(queued((group, event)))

    assert (sent_group, sent) == (shard(1), event)


# Everything that is not one frame of a room's own stream: a user's or the site's frames,
# and every event that changes who hears what.
BARRIERS = {
    "a user's frame": events.user_broadcast(7, {"type": "notification"}),
    "the site's frame": (events.SITE_GROUP, {"type": events.EVENT_BROADCAST, "text": "a"}),
    "a ban (user leaves a room)": (
        events.user_group(7),
        events.removed_event(user_id=7, room_slug="general", reason="banned"),
    ),
    "a room closed": (
        events.room_group(1),
        events.room_closed_event(room_id=1, room_slug="general", reason="archived"),
    ),
    "a room's readers rechecked": (
        events.room_group(1),
        events.room_recheck_event(room_id=1, room_slug="general", reason="private"),
    ),
    "a session ended": (events.user_group(7), events.session_ended_event(user_id=7, reason="x")),
}


@pytest.mark.parametrize("barrier", BARRIERS.values(), ids=BARRIERS.keys())
def test_any_other_event_keeps_its_place_among_all_of_them(barrier):
    before, after = message(1, 1), message(1, 2)
    other, same_shard = message(2, 1), message(10, 1)

    assert plan(queued(before, other, same_shard, barrier, after)) == [
        {shard(1): [[before[1], same_shard[1]]], shard(2): [[other[1]]]},
        {carrier(barrier[0]): [[barrier[1]]]},  # a room's own event goes to its shard
        {shard(1): [[after[1]]]},
    ]


def test_a_long_stream_is_split_in_order_within_the_batch_limits():
    many = [message(1, seq) for seq in range(1, 2 * layer_events.BATCH_EVENTS + 2)]

    [round_] = plan(queued(*many))

    assert [len(batch) for batch in round_[shard(1)]] == [
        layer_events.BATCH_EVENTS,
        layer_events.BATCH_EVENTS,
        1,
    ]
    assert [event for batch in round_[shard(1)] for event in batch] == [e for _, e in many]

    big = "x" * (layer_events.BATCH_TEXT // 2)
    heavy = [message(1, seq, text=big) for seq in range(1, 6)]
    [round_] = plan(queued(*heavy))
    assert [len(batch) for batch in round_[shard(1)]] == [2, 2, 1]


def test_rooms_sharing_a_message_keep_their_order_across_the_limits():
    half = layer_events.BATCH_EVENTS * 3 // 4
    interleaved = [m for seq in range(1, half + 1) for m in (message(1, seq), message(10, seq))]

    [[(layer_group, sends)]] = rounds(queued(*interleaved))

    assert layer_group == shard(1)
    assert [layer_events.event_count(sent) for _, sent in sends] == [
        layer_events.BATCH_EVENTS,
        2 * half - layer_events.BATCH_EVENTS,
    ]
    heard = [event for _, sent in sends for event in events_in(sent)]
    for group in ("room.1", "room.10"):
        assert [e["seq"] for e in heard if e["group"] == group] == list(range(1, half + 1))
    # Each message is stamped with the oldest of its events (the publisher gives up on it
    # GIVE_UP_AFTER seconds after that): room 1's events and room 10's first 50 went first,
    # so the second holds room 10's seq 51 on, queued at 2 * 50 + 1.
    assert [stamp for stamp, _ in sends] == [0.0, 101.0]


class RecordingLayer:
    """A layer whose sends take their time, recording when each began and ended."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str, list[dict[str, Any]]]] = []

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        self.log.append(("begin", group, events_in(message)))
        await asyncio.sleep(0.01)
        self.log.append(("end", group, events_in(message)))


class Runtime:
    def __init__(self) -> None:
        self.layer = RecordingLayer()
        self.tasks: list[asyncio.Task] = []

    def start(self, name: str, run: Any) -> None:
        if not self.tasks:
            self.tasks.append(asyncio.create_task(run()))


async def test_the_publisher_sends_rooms_at_once_and_waits_around_anything_else():
    runtime = Runtime()
    publisher = Publisher(runtime)  # type: ignore[arg-type]
    ban = BARRIERS["a ban (user leaves a room)"]
    sends = [message(1, 1), message(2, 1), message(1, 2), ban, message(1, 3)]
    for group, event in sends:
        publisher.enqueue(group, event)  # all in one turn of the loop

    async with asyncio.timeout(2):
        while len(runtime.layer.log) < 8:  # noqa: ASYNC110 - the layer's record
            await asyncio.sleep(0.01)
    runtime.tasks[0].cancel()

    steps = [
        (step, group, tuple(e.get("seq") for e in batch))
        for step, group, batch in runtime.layer.log
    ]
    assert steps[:2] == [("begin", shard(1), (1, 2)), ("begin", shard(2), (1,))]  # side by side
    assert {steps[2], steps[3]} == {("end", shard(1), (1, 2)), ("end", shard(2), (1,))}
    assert steps[4:] == [  # the ban after both, the next message after the ban
        ("begin", ban[0], (None,)),
        ("end", ban[0], (None,)),
        ("begin", shard(1), (3,)),
        ("end", shard(1), (3,)),
    ]


async def test_the_publisher_sends_at_most_its_lanes_of_groups_at_once(monkeypatch):
    monkeypatch.setattr(publisher_module, "LANES", 2)
    runtime = Runtime()
    publisher = Publisher(runtime)  # type: ignore[arg-type]
    for room in range(1, 6):
        publisher.enqueue(*message(room, 1))

    async with asyncio.timeout(2):
        while len(runtime.layer.log) < 10:  # noqa: ASYNC110 - the layer's record
            await asyncio.sleep(0.01)
    runtime.tasks[0].cancel()

    in_flight = peak = 0
    for step, _, _ in runtime.layer.log:
        in_flight += 1 if step == "begin" else -1
        peak = max(peak, in_flight)
    assert peak == 2


class Socket:
    def __init__(self, socket_id: str, log: list[tuple[str, list[str]]]) -> None:
        self.socket_id = socket_id
        self.log = log

    def deliver(self, texts: list[str], frames: bytes, longest: int) -> None:
        self.log.append((self.socket_id, list(texts)))
        assert frames == b"".join(map(text_frame, texts))
        assert longest == max(len(text_frame(text)) for text in texts)


class Failing(Socket):
    def deliver(self, texts: list[str], frames: bytes, longest: int) -> None:
        raise ConnectionError("closing")


class Closed(Socket):
    """What uvicorn raises for a send after the client went (ASGI: an OSError)."""

    def deliver(self, texts: list[str], frames: bytes, longest: int) -> None:
        raise type("ClientDisconnected", (OSError,), {})()


class Broken(Socket):
    def deliver(self, texts: list[str], frames: bytes, longest: int) -> None:
        raise RuntimeError("a bug")


@pytest.mark.parametrize(("failing", "logged"), [(Closed, False), (Failing, False), (Broken, True)])
async def test_a_socket_that_closed_is_skipped_quietly_and_only_a_real_failure_is_logged(
    caplog, failing, logged
):
    fanout = Fanout(layer=None, runtime=None)  # type: ignore[arg-type]
    log: list[tuple[str, list[str]]] = []
    fanout.members["room.1"] = {Socket("s1", log), failing("s0", log)}

    with caplog.at_level(logging.DEBUG, logger="chat.realtime.fanout"):
        await fanout.dispatch(message(1, 1)[1])

    assert log == [("s1", ["m1.1"])]
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in errors] == (["Delivery to a socket failed"] if logged else [])
    assert logged or any("closed before a broadcast" in r.getMessage() for r in caplog.records)


async def test_the_fan_out_hands_a_batch_on_in_order_each_run_in_one_write():
    fanout = Fanout(layer=None, runtime=None)  # type: ignore[arg-type]
    log: list[tuple[str, list[str]]] = []
    fanout.members["room.1"] = {Socket("s1", log), Failing("s0", log)}
    batch = [message(1, 1), message(1, 2), typing(1, "s1"), message(1, 3)]
    waiting = asyncio.ensure_future(fanout.fanned_out("room.1", 2, within=1))

    await fanout.dispatch(layer_events.batch_event("room.1", [event for _, event in batch]))

    # s1 typed, so it does not hear its own typing; the failing socket costs it nothing.
    assert log == [("s1", ["m1.1", "m1.2"]), ("s1", ["m1.3"])]
    assert fanout.fanned_out_seq["room.1"] == 3
    await asyncio.wait_for(waiting, 1)  # an ack waiting for seq 2 is let go


async def test_the_fan_out_hands_on_each_room_of_a_shard_message_and_drops_rooms_not_here():
    fanout = Fanout(layer=None, runtime=None)  # type: ignore[arg-type]
    log: list[tuple[str, list[str]]] = []
    fanout.members["room.1"] = {Socket("s1", log)}
    fanout.members["room.27"] = {Socket("s27", log)}
    assert shard(27) == shard(1)
    streams = {  # one shard's rooms
        "room.1": [message(1, 1)[1], message(1, 2)[1]],
        "room.10": [message(10, 1)[1]],  # a room of the shard with no socket here
        "room.27": [message(27, 1)[1]],
    }

    await fanout.dispatch(layer_events.streams_event(streams))
    await fanout.dispatch(layer_events.batch_event("room.10", [message(10, 2)[1]] * 2))
    await fanout.dispatch(message(10, 3)[1])

    assert log == [("s1", ["m1.1", "m1.2"]), ("s27", ["m27.1"])]
    assert fanout.fanned_out_seq == {"room.1": 2, "room.27": 1}  # nothing kept of room 10


class GroupsLayer:
    """A layer that records the process's group memberships."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def new_channel(self, prefix: str) -> str:
        return f"{prefix}.process"

    async def group_add(self, group: str, channel: str) -> None:
        self.calls.append(("add", group))

    async def group_discard(self, group: str, channel: str) -> None:
        self.calls.append(("discard", group))


class Loops:
    def __init__(self) -> None:
        self.running: set[str] = set()

    def start(self, name: str, run: Any) -> None:
        self.running.add(name)

    def stop(self, name: str) -> None:
        self.running.discard(name)


async def test_the_process_is_in_a_shard_group_while_any_of_its_rooms_has_a_socket_here():
    layer, loops = GroupsLayer(), Loops()
    fanout = Fanout(layer=layer, runtime=loops)  # type: ignore[arg-type]
    a, b = Socket("a", []), Socket("b", [])

    await fanout.add("room.1", a)
    await fanout.add("room.10", b)  # the same shard: nothing more to join
    await fanout.add("room.1", b)
    await fanout.add(events.user_group(7), a)  # a user's group carries itself
    assert layer.calls == [("add", shard(1)), ("add", events.user_group(7))]
    await fanout.refresh("room.10")
    assert layer.calls[-1] == ("add", shard(1))

    await fanout.discard("room.1", a)
    await fanout.discard("room.1", b)  # room 10 still has b here
    assert fanout.subscribed == {shard(1), events.user_group(7)}
    await fanout.discard("room.10", b)
    await fanout.discard(events.user_group(7), a)

    assert layer.calls[-2:] == [("discard", shard(1)), ("discard", events.user_group(7))]
    assert (fanout.members, fanout.carried, fanout.subscribed) == ({}, {}, set())
    assert loops.running == set()  # no receive loop without a group


def test_outside_any_event_loop_a_rooms_event_goes_to_its_shard_at_once():
    """The other way onto the layer (a management command, a sync test): sent before
    publish returns, to the group that carries the room, as the publisher's turns do."""
    layer, channel = get_channel_layer(), "test.sync-publish"
    async_to_sync(layer.group_add)(shard(3), channel)
    group, event = message(3, 1)

    publisher_module.publish(group, event)

    async def received() -> dict[str, Any]:
        return await asyncio.wait_for(layer.receive(channel), 2)

    assert async_to_sync(received)() == event
    async_to_sync(layer.group_discard)(shard(3), channel)


async def wait_for(condition: Any) -> None:
    async with asyncio.timeout(2):
        while not condition():  # noqa: ASYNC110 - a plain list filled by callbacks
            await asyncio.sleep(0.001)


async def test_a_worker_threads_burst_reaches_the_loop_in_order_through_its_handoff(
    monkeypatch,
):
    """publish() from the database thread (a group commit's broadcasts after commit): the
    events reach this loop's publisher in the order published, through the loop's one
    Handoff."""
    loop = asyncio.get_running_loop()
    got: list[int] = []
    monkeypatch.setattr(publisher_module, "_enqueue", lambda group, event: got.append(event["seq"]))

    def burst(first: int) -> None:
        for seq in range(first, first + 50):
            publisher_module.publish(*message(1, seq))

    await sync_to_async(burst)(1)
    await wait_for(lambda: len(got) == 50)
    await sync_to_async(burst)(51)
    await wait_for(lambda: len(got) == 100)

    assert got == list(range(1, 101))
    assert publisher_module._handoffs.get(loop) is not None


async def test_a_burst_put_before_the_loop_runs_wakes_it_once(monkeypatch):
    """A wakeup only when none is due: fifty events put while the loop runs nothing (here
    it waits for the putting thread) cost one `call_soon_threadsafe`, not fifty."""
    loop = asyncio.get_running_loop()
    handoff = publisher_module.Handoff(loop)
    got: list[int] = []
    monkeypatch.setattr(publisher_module, "_enqueue", lambda group, event: got.append(event["seq"]))
    wakeups: list[Any] = []
    wake = loop.call_soon_threadsafe

    def counted(callback: Any, *args: Any) -> Any:
        wakeups.append(callback)
        return wake(callback, *args)

    monkeypatch.setattr(loop, "call_soon_threadsafe", counted)
    thread = threading.Thread(
        target=lambda: [handoff.put(*message(1, seq)) for seq in range(1, 51)]
    )
    thread.start()
    thread.join()  # the loop runs nothing meanwhile
    await wait_for(lambda: len(got) == 50)

    assert got == list(range(1, 51))
    assert wakeups == [handoff.drain]


async def test_an_event_put_while_the_loop_drains_is_not_left_behind(monkeypatch):
    """The wakeup is skipped only while one is due: an event put from another thread while
    the loop is draining goes in that drain or the next, never waits for a later put."""
    handoff = publisher_module.Handoff(asyncio.get_running_loop())
    got: list[int] = []

    def enqueue(group: str, event: dict[str, Any]) -> None:
        got.append(event["seq"])
        if event["seq"] == 1:  # another thread puts the next one meanwhile
            handoff.put(*message(1, 2))

    monkeypatch.setattr(publisher_module, "_enqueue", enqueue)
    handoff.put(*message(1, 1))
    await wait_for(lambda: len(got) == 2)
    handoff.put(*message(1, 3))  # after the drain emptied the queue: a wakeup of its own
    await wait_for(lambda: len(got) == 3)

    assert got == [1, 2, 3]
    assert not handoff.events


async def test_an_event_that_cannot_be_queued_does_not_hold_back_the_next(monkeypatch, caplog):
    handoff = publisher_module.Handoff(asyncio.get_running_loop())
    got: list[int] = []

    def enqueue(group: str, event: dict[str, Any]) -> None:
        if event["seq"] == 1:
            raise RuntimeError("no runtime")
        got.append(event["seq"])

    monkeypatch.setattr(publisher_module, "_enqueue", enqueue)
    handoff.put(*message(1, 1))
    handoff.put(*message(1, 2))
    await wait_for(lambda: got == [2])

    assert "Could not queue a broadcast" in caplog.text


def test_a_closed_loop_refuses_the_event_and_no_wakeup_stays_due():
    loop = asyncio.new_event_loop()
    loop.close()
    handoff = publisher_module.Handoff(loop)

    with pytest.raises(RuntimeError):
        handoff.put(*message(1, 1))
    assert handoff.scheduled is False


def test_a_handoff_does_not_keep_its_loop_alive():
    """The handoffs are kept by loop, weakly: a handoff must not hold its loop either."""
    loop = asyncio.new_event_loop()
    handoff = publisher_module._handoff(loop)
    gone = weakref.ref(loop)
    loop.close()
    del loop
    gc.collect()

    assert gone() is None
    with pytest.raises(RuntimeError):
        handoff.put(*message(1, 1))
