"""Fault injection for the reliability and outage tests: a channel layer that loses and
reorders, and one the test takes down and brings back."""

import asyncio
import random
from typing import Any

from channels.layers import InMemoryChannelLayer

from chat.realtime.layers import InProcessChannelLayer


class LossyChannelLayer(InMemoryChannelLayer):
    """The in-memory layer, but a fraction of deliveries vanish and some arrive late.

    Each delivery to a channel is dropped with probability `drop`; otherwise, with
    probability `reorder`, it is held back and delivered after the channel's next one.
    Seeded, so a failing run can be replayed. What it did is counted in `dropped` and
    `reordered`, so a test can show the faults really happened.
    """

    def __init__(self, *, drop: float = 0.05, reorder: float = 0.05, seed: int = 1, **kwargs: Any):
        super().__init__(**kwargs)
        self.drop = drop
        self.reorder = reorder
        self.random = random.Random(seed)
        self.held: dict[str, dict[str, Any]] = {}
        self.dropped = 0
        self.reordered = 0

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        roll = self.random.random()
        if roll < self.drop:
            self.dropped += 1
            return
        if roll < self.drop + self.reorder and channel not in self.held:
            self.held[channel] = message
            self.reordered += 1
            return
        await super().send(channel, message)
        late = self.held.pop(channel, None)
        if late is not None:
            await super().send(channel, late)


class FlakyLayer(InProcessChannelLayer):
    """The in-process layer, which the test can take down (every call raises, a receive in
    progress fails) and bring back, forgetting its groups as a restarted Redis does."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.down = False
        self.failures: set[asyncio.Future] = set()

    def go_down(self) -> None:
        self.down = True
        self.groups.clear()
        for failure in self.failures:
            if not failure.done():
                failure.set_result(None)

    def come_back(self) -> None:
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise ConnectionError("the layer is down (test)")

    async def receive(self, channel: str) -> dict:
        self._check()
        failure = asyncio.get_running_loop().create_future()
        self.failures.add(failure)
        receiving = asyncio.ensure_future(super().receive(channel))
        try:
            await asyncio.wait({receiving, failure}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.failures.discard(failure)
        if receiving.done():
            return receiving.result()
        receiving.cancel()
        raise ConnectionError("the layer went down during a receive (test)")

    async def group_add(self, group: str, channel: str) -> None:
        self._check()
        await super().group_add(group, channel)

    async def group_discard(self, group: str, channel: str) -> None:
        self._check()
        await super().group_discard(group, channel)

    async def group_send(self, group: str, message: dict) -> None:
        self._check()
        await super().group_send(group, message)
