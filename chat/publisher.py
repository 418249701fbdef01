"""Channel-layer sends from the sync code of services, without making it wait.

A service runs in a worker thread (database_sync_to_async, or Django's handler for a sync
view) and schedules its broadcast with `transaction.on_commit`. Waiting there for the send
(`async_to_sync`) would hold the database thread, which serves every socket of the process,
for a round trip to the event loop and the layer. Instead the event goes to the loop's
queue and the thread returns at once; one task per loop sends the queued events in the order
they were committed. Outside any event loop (a management command, a sync test), the send
simply happens before returning.
"""

import asyncio
import logging
import time
import weakref
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from chatsite.patches.asgiref_loop import event_loop_of_this_thread

from .outages import Outage

logger = logging.getLogger(__name__)

GIVE_UP_AFTER = 10.0  # seconds: a broadcast this late is worth less than the resync

_queues: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Queue]" = (
    weakref.WeakKeyDictionary()
)


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
        _enqueue(running, group, event)
        return
    loop = event_loop_of_this_thread()
    if loop is None:
        async_to_sync(get_channel_layer().group_send)(group, event)
    else:
        loop.call_soon_threadsafe(_enqueue, loop, group, event)


def _enqueue(loop: asyncio.AbstractEventLoop, group: str, event: dict[str, Any]) -> None:
    queue = _queues.get(loop)
    if queue is None:
        queue = _queues[loop] = asyncio.Queue()
        loop.create_task(_send_forever(queue), name="publisher")
    queue.put_nowait((time.monotonic(), group, event))


async def _send_forever(queue: asyncio.Queue) -> None:
    """Send queued events, in order, until cancelled. A send that fails (a stale connection
    after Redis restarted, or Redis away) is tried again with backoff; an event still unsent
    GIVE_UP_AFTER seconds after it was queued is dropped (the clients resync what they
    miss). The outage is logged once, and its end too."""
    outage = Outage("the channel layer (publisher)")
    while True:
        queued_at, group, event = await queue.get()
        while True:
            try:
                await get_channel_layer().group_send(group, event)
            except Exception as error:
                delay = outage.failed(error)
                if time.monotonic() + delay - queued_at > GIVE_UP_AFTER:
                    outage.skipped += 1
                    break
                await asyncio.sleep(delay)
            else:
                outage.recovered()
                break
