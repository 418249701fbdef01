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
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from chatsite.patches.asgiref_loop import event_loop_of_this_thread

from .outages import Outage, stop_if_cancelled
from .runtime import runtime_for_loop

if TYPE_CHECKING:
    from .runtime import Runtime

logger = logging.getLogger(__name__)

GIVE_UP_AFTER = 10.0  # seconds: a broadcast this late is worth less than the resync


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
        async_to_sync(get_channel_layer().group_send)(group, event)
    else:
        loop.call_soon_threadsafe(_enqueue, group, event)


def _enqueue(group: str, event: dict[str, Any]) -> None:
    """On the loop: hand the event to this loop's publisher."""
    runtime_for_loop().publisher.enqueue(group, event)


class Publisher:
    """The ordered queue of one event loop's channel-layer sends, and the loop sending it."""

    def __init__(self, runtime: "Runtime") -> None:
        self.runtime = runtime
        self.queue: asyncio.Queue[tuple[float, str, dict[str, Any]]] = asyncio.Queue()
        self.outage = Outage("the channel layer (publisher)")

    def enqueue(self, group: str, event: dict[str, Any]) -> None:
        self.queue.put_nowait((time.monotonic(), group, event))
        self.runtime.start("publisher", self.send_forever)

    async def send_forever(self) -> None:
        """Send queued events, in order, until cancelled. A send that fails (a stale
        connection after Redis restarted, or Redis away) is tried again with backoff; an
        event still unsent GIVE_UP_AFTER seconds after it was queued is dropped (the clients
        resync what they miss). The outage is logged once, and its end too."""
        while True:
            stop_if_cancelled()
            queued_at, group, event = await self.queue.get()
            while True:
                stop_if_cancelled()
                try:
                    await self.runtime.layer.group_send(group, event)
                except Exception as error:
                    delay = self.outage.failed(error)
                    if time.monotonic() + delay - queued_at > GIVE_UP_AFTER:
                        self.outage.skipped += 1
                        break
                    await asyncio.sleep(delay)
                else:
                    self.outage.recovered()
                    break
