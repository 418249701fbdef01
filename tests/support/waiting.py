"""Waiting in async tests for a condition that no event announces."""

import asyncio
from collections.abc import Callable


async def until(predicate: Callable[[], object], seconds: float = 5.0) -> None:
    """Return once `predicate()` is true; TimeoutError after `seconds`."""
    async with asyncio.timeout(seconds):
        while not predicate():  # noqa: ASYNC110 - a condition, not an event
            await asyncio.sleep(0.02)
