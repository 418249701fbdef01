"""One owner for this process's real-time state: a `Runtime` per event loop.

A Redis client, an asyncio queue and a task all belong to one event loop, so everything the
sockets of a loop share lives in that loop's runtime, made on first use:

- `fanout`: the process's subscription to room groups and the local sockets in each
  (chat/realtime/fanout.py), with its receive loop and its group-refresh loop;
- `publisher`: the ordered queue of channel-layer sends from services and consumers
  (chat/realtime/publisher.py);
- `writer`: the group commit of sends (chat/realtime/group_commit.py);
- `joinable` and `reader`: the joins' room checks and pages, read together
  (chat/realtime/join_reads.py);
- `presence` and `limits`: in memory, or shared through Redis with a heartbeat loop each,
  which beats at once when the channel layer comes back (`layer_regained`);
- `news`: the coalesced guest-count and presence broadcasts (chat/realtime/presence.py);
- `answers`: the answers to the HTTP fallback's polls this process forwards
  (chat/realtime/fallback.py), with their receive loop.

Every background loop is started here, by name, and supervised: a loop that raises is
logged and started again with backoff (each loop also lives through its dependency failing:
chat/realtime/outages.py), and `close()` stops them all. `health()` says whether each loop is alive
and whether its dependency answers, for /healthz and `manage.py health`.

How an ack waits for its broadcast, across modules: the send's broadcast event carries the
message's `seq` (events.broadcast_event); when the fan-out hands it to the local sockets it
marks that seq fanned out for the group; `Fanout.fanned_out(group, seq, within=…)` returns
then (or after `within`, or at once while the layer is away), and only then is the ack sent
(ChatConsumer.on_send). So a sender never outruns the fan-out of its own room.
"""

import asyncio
import contextvars
import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from channels.layers import BaseChannelLayer, get_channel_layer

from .outages import stop_if_cancelled

logger = logging.getLogger(__name__)

FIRST_RESTART = 0.1  # seconds before a crashed loop starts again, doubling…
LAST_RESTART = 5.0  # …up to this
CLOSE_TIMEOUT = 5.0  # seconds close() waits for the loops to stop


@dataclass
class Supervised:
    """One background loop: its task, and how often it crashed."""

    name: str
    run: Callable[[], Awaitable[None]]
    task: asyncio.Task | None = None
    crashes: int = 0

    @property
    def alive(self) -> bool:
        return self.task is not None and not self.task.done()


class Runtime:
    """The real-time state and background loops of one event loop."""

    def __init__(self, layer: BaseChannelLayer) -> None:
        from .agreement import shared_settings
        from .fallback import PollAnswers
        from .fanout import Fanout
        from .group_commit import message_writer
        from .join_reads import join_pages, room_checks
        from .limits import make_limits
        from .presence import PresenceNews, make_presence
        from .publisher import Publisher

        self.layer = layer
        self.loops: dict[str, Supervised] = {}
        self.publisher = Publisher(self)
        self.fanout = Fanout(layer, self)
        self.writer = message_writer()
        self.joinable = room_checks()
        self.reader = join_pages()
        self.news = PresenceNews(self)
        self.presence = make_presence(self)
        self.limits = make_limits(self)
        self.answers = PollAnswers(self)
        self.shared = shared_settings(self)

    # Background loops ---------------------------------------------------------------------

    def start(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        """Run `run()` in the background under `name` until it returns (its work done: it
        leaves `loops`, so /healthz does not count it dead) or `stop(name)`; should it
        raise, log it and start it again with backoff. Idempotent while alive.

        The loop runs in a context of its own, not its starter's: a loop first started by a
        worker thread's broadcast (through the loop's `call_soon_threadsafe`) would inherit
        asgiref's mark that the database thread is busy, and each of its own database calls
        would then be refused ("Single thread executor already being used")."""
        loop = self.loops.get(name)
        if loop is not None and loop.alive:
            return
        loop = self.loops[name] = Supervised(name=name, run=run)
        loop.task = asyncio.get_running_loop().create_task(
            self._supervise(loop), name=name, context=contextvars.Context()
        )

    def stop(self, name: str) -> None:
        loop = self.loops.pop(name, None)
        if loop is not None and loop.task is not None:
            loop.task.cancel()

    async def _supervise(self, loop: Supervised) -> None:
        while True:
            stop_if_cancelled()
            try:
                await loop.run()
                if self.loops.get(loop.name) is loop:
                    del self.loops[loop.name]
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                loop.crashes += 1
                delay = min(LAST_RESTART, FIRST_RESTART * 2 ** (loop.crashes - 1))
                logger.exception("%s crashed; starting it again in %.1f s", loop.name, delay)
                await asyncio.sleep(delay)

    async def close(self) -> None:
        """Stop every background loop and close the Redis clients (shutdown, tests)."""
        running = {loop.task: name for name, loop in self.loops.items() if loop.task is not None}
        for name in list(self.loops):
            self.stop(name)
        if running:
            _, stuck = await asyncio.wait(running, timeout=CLOSE_TIMEOUT)
            for task in stuck:  # a bug: each loop stops at its next turn (stop_if_cancelled)
                logger.error(
                    "%s did not stop within %s s of its cancel", running[task], CLOSE_TIMEOUT
                )
        for registry in (self.presence, self.limits):
            redis = getattr(registry, "redis", None)
            if redis is not None:
                await redis.aclose()

    def layer_regained(self) -> None:
        """The channel layer answers again after an outage. It lives on Redis, and a Redis
        that restarted came back empty: every registry kept there (presence, the socket cap,
        the shared settings) puts this process's entries back now, not at its next
        heartbeat up to TTL/3 later, so that a page joining meanwhile sees everyone online."""
        for registry in (self.presence, self.limits, self.shared):
            beat_soon = getattr(registry, "beat_soon", None)  # a Heartbeat's (Redis) only
            if beat_soon is not None:
                beat_soon()

    # Health -------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """Each background loop: alive, and how often it crashed; each dependency the loops
        use: answering (or away since when, as the loops last found it)."""
        outages = {
            "channel layer": [self.fanout.outage, self.publisher.outage],
            "redis": [
                registry.outage
                for registry in (self.presence, self.limits)
                if getattr(registry, "outage", None) is not None
            ],
        }
        dependencies = {
            what: all(outage.ok for outage in watched)
            for what, watched in outages.items()
            if watched
        }
        if self.shared is not None:
            dependencies["the other workers' CHAT_FANOUT_SHARDS"] = self.shared.agree
        return {
            "loops": {
                name: {"alive": loop.alive, "crashes": loop.crashes}
                for name, loop in sorted(self.loops.items())
            },
            "dependencies": dependencies,
        }


_runtimes: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Runtime]" = (
    weakref.WeakKeyDictionary()
)


def runtime_for_loop() -> Runtime:
    """The runtime of the running event loop (made on first use, for the current layer)."""
    loop = asyncio.get_running_loop()
    runtime = _runtimes.get(loop)
    layer = get_channel_layer()
    if runtime is None or runtime.layer is not layer:
        runtime = _runtimes[loop] = Runtime(layer)
    return runtime


def runtime_if_any(loop: asyncio.AbstractEventLoop) -> Runtime | None:
    """The runtime of `loop` if one was made (for code running off the loop)."""
    return _runtimes.get(loop)
