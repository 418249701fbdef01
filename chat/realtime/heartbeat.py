"""The heartbeat of a registry shared through Redis (presence, the socket cap): refresh the
expiry of this process's entries every TTL/3 seconds, so entries a dead worker left behind
expire within the TTL while live ones never do."""

import asyncio
import contextlib
from typing import Any

from .outages import Outage, stop_if_cancelled


class Heartbeat:
    """Mixed into a registry with `ttl` (seconds) and `local` (this process's entries); the
    runtime runs `beat_forever` (chat/realtime/runtime.py)."""

    ttl: float
    local: dict[Any, Any]
    outage: Outage | None = None  # of Redis, as the heartbeat last found it
    due: asyncio.Event | None = None  # set: beat now, not at the next TTL/3

    async def beat(self) -> None:
        """Refresh this process's entries (and do any periodic work)."""
        raise NotImplementedError

    def beat_soon(self) -> None:
        """Beat at once rather than up to TTL/3 from now: Redis may have restarted empty
        (the channel layer's connection broke and came back), and until a beat puts this
        process's entries back, its users are missing from the rooms' online lists and its
        sockets from the socket cap."""
        if self.due is not None:
            self.due.set()

    def owed_soon(self) -> None:
        """Something Redis refused is owed to the next beat: beat at once, unless the
        beats are failing already (they retry with the outage's backoff, and one
        triggered per refusal would defeat it)."""
        if self.outage is None or self.outage.ok:
            self.beat_soon()

    async def beat_forever(self) -> None:
        """Beat every TTL/3 seconds, or at once when asked (`beat_soon`); a failed beat
        (Redis away) is logged once per outage and tried again with the outage's backoff
        (0.1 s, doubling up to 2 s), so the beat that restores whatever Redis lost comes
        within moments of its return, not up to TTL/3 later."""
        self.outage = Outage(f"Redis ({type(self).__name__} heartbeat)")
        self.due = asyncio.Event()
        delay = self.ttl / 3
        while True:
            stop_if_cancelled()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.due.wait(), timeout=delay)
            self.due.clear()
            try:
                await self.beat()
            except Exception as error:
                delay = min(self.ttl / 3, self.outage.failed(error))
            else:
                self.outage.recovered()
                delay = self.ttl / 3
