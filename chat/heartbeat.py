"""The heartbeat of a registry shared through Redis (presence, the socket cap): while this
process holds entries, refresh their expiry every TTL/3 seconds, so entries a dead worker
left behind expire within the TTL while live ones never do."""

import asyncio
import logging
from typing import Any

from .outages import Outage

logger = logging.getLogger(__name__)


class Heartbeat:
    """Mixed into a registry with `ttl` (seconds) and `local` (this process's entries)."""

    ttl: float
    local: dict[Any, Any]
    task: asyncio.Task | None = None

    async def beat(self) -> None:
        """Refresh this process's entries (and do any periodic work)."""
        raise NotImplementedError

    def _start(self) -> None:
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._beat_forever())

    async def _beat_forever(self) -> None:
        """Beat while there are entries; a failed beat (Redis away) is logged once per outage
        and tried again at the next beat, which restores whatever Redis lost meanwhile."""
        outage = Outage(f"Redis ({type(self).__name__} heartbeat)")
        while self.local:
            await asyncio.sleep(self.ttl / 3)
            try:
                await self.beat()
            except Exception as error:
                outage.failed(error)
            else:
                outage.recovered()
        self.task = None
