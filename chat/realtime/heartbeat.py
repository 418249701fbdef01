"""The heartbeat of a registry shared through Redis (presence, the socket cap): refresh the
expiry of this process's entries every TTL/3 seconds, so entries a dead worker left behind
expire within the TTL while live ones never do."""

import asyncio
from typing import Any

from .outages import Outage, stop_if_cancelled


class Heartbeat:
    """Mixed into a registry with `ttl` (seconds) and `local` (this process's entries); the
    runtime runs `beat_forever` (chat/realtime/runtime.py)."""

    ttl: float
    local: dict[Any, Any]
    outage: Outage | None = None  # of Redis, as the heartbeat last found it

    async def beat(self) -> None:
        """Refresh this process's entries (and do any periodic work)."""
        raise NotImplementedError

    async def beat_forever(self) -> None:
        """Beat every TTL/3 seconds; a failed beat (Redis away) is logged once per outage and
        tried again at the next, which restores whatever Redis lost meanwhile."""
        self.outage = Outage(f"Redis ({type(self).__name__} heartbeat)")
        while True:
            stop_if_cancelled()
            await asyncio.sleep(self.ttl / 3)
            try:
                await self.beat()
            except Exception as error:
                self.outage.failed(error)
            else:
                self.outage.recovered()
