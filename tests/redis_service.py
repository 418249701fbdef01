"""The Redis server for tests that need one: REDIS_URL, or a skip (a failure in CI) saying why."""

import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlparse

from tests.deps import need


def redis_url() -> str:
    """REDIS_URL if a Redis server answers there; skips (or fails, if required) otherwise."""
    url = os.environ.get("REDIS_URL", "")
    need("redis", bool(url), "REDIS_URL is not set (e.g. REDIS_URL=redis://127.0.0.1:6379/15)")
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), 2):
            pass
    except OSError as error:
        need("redis", False, f"no Redis server answers at {url}: {error}")
    return url


@contextlib.asynccontextmanager
async def two_workers(registry: type, *, ttl: float = 1.2) -> AsyncIterator[list]:
    """Two workers' registries of a kind shared through Redis (presence, limits) on one
    Redis, under a key prefix of their own; stopped and their keys deleted afterwards."""
    prefix = f"chat:test:{uuid.uuid4().hex}:"
    workers = [registry(redis_url(), ttl=ttl, prefix=prefix) for _ in range(2)]
    try:
        yield workers
    finally:
        for worker in workers:
            if worker.task is not None:
                worker.task.cancel()
        keys = [key async for key in workers[0].redis.scan_iter(f"{prefix}*")]
        if keys:
            await workers[0].redis.delete(*keys)
        for worker in workers:
            await worker.redis.aclose()
