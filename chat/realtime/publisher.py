"""Channel-layer sends from the sync code of services, without making it wait.

A service runs in a worker thread (database_sync_to_async, or Django's handler for a sync
view) and schedules its broadcast with `transaction.on_commit`. Waiting there for the send
(`async_to_sync`) would hold the database thread, which serves every socket of the process,
for a round trip to the event loop and the layer. Instead the event goes to the loop's
queue and the thread returns at once; one task per loop sends the queued events in the order
they were committed (each room's stream in its own order: see `Publisher`). Outside any
event loop (a management command, a sync test), the send simply happens before returning.
"""

import asyncio
import collections
import logging
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from chatsite.patches.asgiref_loop import event_loop_of_this_thread

from .layer_events import (
    BATCH_EVENTS,
    BATCH_TEXT,
    carrier,
    event_count,
    event_size,
    is_room_stream,
    streams_event,
)
from .outages import LAYER_PATIENCE, Outage, stop_if_cancelled
from .runtime import runtime_for_loop

if TYPE_CHECKING:
    from .runtime import Runtime

logger = logging.getLogger(__name__)

GIVE_UP_AFTER = LAYER_PATIENCE  # seconds after it was queued, a broadcast is dropped
TURN = 2000  # events taken from the queue at most per turn
LANES = 32  # layer groups sent side by side at most (on Redis, each holds a pooled connection)


def publish(group: str, event: dict[str, Any]) -> None:
    """Send `event` to `group`, in order, from any thread, without waiting.

    On the event loop itself (a consumer announcing presence or typing) it is queued too: a
    thousand sockets joining at once then make one ordered stream of sends, not a thousand
    concurrent ones competing for the layer's connections."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is not None:
        _enqueue(group, event)
        return
    loop = event_loop_of_this_thread()
    if loop is None:
        async_to_sync(get_channel_layer().group_send)(carrier(group), event)
    else:
        _handoff(loop).put(group, event)


def _enqueue(group: str, event: dict[str, Any]) -> None:
    """On the loop: hand the event to this loop's publisher."""
    runtime_for_loop().publisher.enqueue(group, event)


class Handoff:
    """Events published from worker threads on their way to one event loop, in order, with
    one wakeup of the loop for all those put before it runs rather than one each: a group
    commit's fifty broadcasts cost the database thread a `call_soon_threadsafe` (a lock and
    a write to the loop's self-pipe) each time the loop has drained, not one per event."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # Weakly: `_handoffs` keeps a handoff only as long as its loop lives.
        self.loop = weakref.ref(loop)
        self.events: collections.deque[tuple[str, dict[str, Any]]] = collections.deque()
        self.scheduled = False

    def put(self, group: str, event: dict[str, Any]) -> None:
        """From any thread: queue the event for the loop, waking it unless a wakeup is due."""
        self.events.append((group, event))
        # Read after the append: a drain that already cleared the flag will see the event,
        # and one that has not will clear it before it looks.
        if not self.scheduled:
            self.scheduled = True
            try:
                loop = self.loop()
                if loop is None:
                    raise RuntimeError("Event loop is gone")
                loop.call_soon_threadsafe(self.drain)
            except RuntimeError:  # the loop is closed or gone: nobody will drain
                self.scheduled = False
                raise

    def drain(self) -> None:
        """On the loop: everything put so far, to the loop's publisher, in order."""
        self.scheduled = False
        while self.events:
            try:
                _enqueue(*self.events.popleft())
            except Exception:  # as one callback each would: the others still go
                logger.exception("Could not queue a broadcast for the channel layer")


_handoffs: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Handoff]" = (
    weakref.WeakKeyDictionary()
)
_handoffs_made = threading.Lock()


def _handoff(loop: asyncio.AbstractEventLoop) -> Handoff:
    """The loop's one `Handoff` (one per loop, whichever thread asks first, so that one
    thread's events keep their order)."""
    handoff = _handoffs.get(loop)
    if handoff is None:
        with _handoffs_made:
            handoff = _handoffs.get(loop)
            if handoff is None:
                handoff = _handoffs[loop] = Handoff(loop)
    return handoff


class Publisher:
    """The ordered queue of one event loop's channel-layer sends, and the loop sending it.

    Each turn takes everything queued so far and sends it in as few layer messages as the
    order allows. Rooms' streams may pass each other (`layer_events.is_room_stream`), as
    each is ordered by its own seqs: the stream events of all the rooms of one shard go
    together (`layer_events.carrier`), each room's in order, and the shards go side by
    side. Any other event waits for everything queued before it and goes before anything
    queued after it. On Redis a send is several round trips, and so is a process's receive
    of each message: one message per room would bound the process's broadcasts (and the
    acks waiting for them) at a few hundred a second, whatever the database could store."""

    def __init__(self, runtime: "Runtime") -> None:
        self.runtime = runtime
        self.queue: asyncio.Queue[tuple[float, str, dict[str, Any]]] = asyncio.Queue()
        self.outage = Outage("the channel layer (publisher)")
        self.lanes = asyncio.Semaphore(LANES)

    def enqueue(self, group: str, event: dict[str, Any]) -> None:
        self.queue.put_nowait((time.monotonic(), group, event))
        self.runtime.start("publisher", self.send_forever)

    async def send_forever(self) -> None:
        """Send what is queued, in rounds (`rounds`), until cancelled."""
        while True:
            stop_if_cancelled()
            queued = [await self.queue.get()]
            while not self.queue.empty() and len(queued) < TURN:
                queued.append(self.queue.get_nowait())
            for round_ in rounds(queued):
                if len(round_) == 1:
                    await self._send_in_order(*round_[0])
                else:
                    await asyncio.gather(*(self._send_in_order(*sends) for sends in round_))

    async def _send_in_order(self, group: str, sends: list["Send"]) -> None:
        async with self.lanes:
            for queued_at, message in sends:
                await self._send(queued_at, group, message)

    async def _send(self, queued_at: float, group: str, message: dict[str, Any]) -> None:
        """Send one layer message to the layer group `group`. A send that fails (a stale
        connection after Redis restarted, or Redis away) is tried again with backoff; a
        message still unsent GIVE_UP_AFTER seconds after its first event was queued is
        dropped (the clients resync what they miss). The outage is logged once, and its end
        too."""
        try:
            await self.outage.retry(
                lambda: self.runtime.layer.group_send(group, message),
                deadline=queued_at + GIVE_UP_AFTER,
            )
        except Exception:
            self.outage.skipped += event_count(message)


Send = tuple[float, dict[str, Any]]  # (when its first event was queued, the layer message)


def rounds(queued: list[tuple[float, str, dict[str, Any]]]) -> list[list[tuple[str, list[Send]]]]:
    """Split `queued` (in the order it was queued) into rounds, each sent once the one
    before it is, each a list of (layer group, its layer messages in order). A run of
    room-stream events is one round, its events packed by shard (`_packed`); any other
    event is a round of its own, to its group's carrier. Within a round the layer groups
    go side by side."""
    result: list[list[tuple[str, list[Send]]]] = []
    run: dict[str, list[tuple[float, dict[str, Any]]]] = {}
    for queued_at, group, event in queued:
        if is_room_stream(group, event):
            run.setdefault(group, []).append((queued_at, event))
            continue
        if run:
            result.append(_packed(run))
            run = {}
        result.append([(carrier(group), [(queued_at, event)])])
    if run:
        result.append(_packed(run))
    return result


def _packed(run: dict[str, list[tuple[float, dict[str, Any]]]]) -> list[tuple[str, list[Send]]]:
    """A run's events by shard, each shard's in as few layer messages as the batch limits
    allow: a message holds the events of several rooms, each room's in order, and a room's
    events that fill more than one message continue in the next, sent after it."""
    shards: dict[str, list[tuple[str, float, dict[str, Any]]]] = {}
    for group, events in run.items():
        shard = shards.setdefault(carrier(group), [])
        shard += ((group, queued_at, event) for queued_at, event in events)
    return [(shard, _messages(events)) for shard, events in shards.items()]


def _messages(events: list[tuple[str, float, dict[str, Any]]]) -> list[Send]:
    """(group, queued at, event)s, each group's in order, as layer messages within the
    limits; each message is stamped with its oldest event's time."""
    sends: list[Send] = []
    streams: dict[str, list[dict[str, Any]]] = {}
    count = size = 0
    first = 0.0
    for group, queued_at, event in events:
        weight = event_size(event)
        if count and (count >= BATCH_EVENTS or size + weight > BATCH_TEXT):
            sends.append((first, streams_event(streams)))
            streams, count, size = {}, 0, 0
        first = queued_at if not count else min(first, queued_at)
        streams.setdefault(group, []).append(event)
        count += 1
        size += weight
    if count:
        sends.append((first, streams_event(streams)))
    return sends
