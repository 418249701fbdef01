"""The Redis server for tests that need one: REDIS_URL, or a skip (a failure in CI) saying why."""

import os
import socket
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
