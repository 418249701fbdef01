"""Fault injection for the reliability tests: a channel layer that loses and reorders."""

import random
from typing import Any

from channels.layers import InMemoryChannelLayer


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
