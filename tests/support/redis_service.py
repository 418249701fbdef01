"""The Redis server for tests that need one: REDIS_URL, or a skip (a failure in CI) saying why."""

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlparse

from tests.support.deps import need


def redis_url() -> str:
    """REDIS_URL if a Redis server answers there; skips (or fails, if required) otherwise.

    When the suite runs in several processes (pytest-xdist), each gets a database of its
    own, counting down from REDIS_URL's (gw0 → /15, gw1 → /14, …), since a cluster test
    empties its database and every site there uses the same key names."""
    url = os.environ.get("REDIS_URL", "")
    need("redis", bool(url), "REDIS_URL is not set (e.g. REDIS_URL=redis://127.0.0.1:6379/15)")
    parsed = urlparse(url)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    offset = int(worker.removeprefix("gw") or 0)
    if offset:
        database = int(parsed.path.strip("/") or 0) - offset
        assert database >= 0, f"not enough Redis databases below {url} for worker {worker}"
        parsed = parsed._replace(path=f"/{database}")
        url = parsed.geturl()
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), 2):
            pass
    except OSError as error:
        need("redis", False, f"no Redis server answers at {url}: {error}")
    return url


LAYER_BACKENDS = {
    "redis": "channels_redis.core.RedisChannelLayer",
    "redis-pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
}


def use_layer(settings, layer: str) -> None:
    """Run the test on `layer`: "in-memory" (the suite's default), or one of channels-redis'
    layers that CHAT_CHANNEL_LAYER offers ("redis": core, "redis-pubsub": pub/sub) on the
    test Redis under a prefix of its own."""
    if layer == "in-memory":
        return
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": LAYER_BACKENDS[layer],
            "CONFIG": {"hosts": [redis_url()], "prefix": f"test{uuid.uuid4().hex}"},
        }
    }


@contextlib.asynccontextmanager
async def two_workers(registry: type, *, ttl: float = 1.2) -> AsyncIterator[list]:
    """Two workers' registries of a kind shared through Redis (presence, limits) on one
    Redis, under a key prefix of their own; stopped and their keys deleted afterwards."""
    prefix = f"chat:test:{uuid.uuid4().hex}:"
    workers = [registry(redis_url(), ttl=ttl, prefix=prefix) for _ in range(2)]
    for worker in workers:  # each worker's heartbeat, which a test may cancel: it died
        worker.task = asyncio.create_task(worker.beat_forever())
    try:
        yield workers
    finally:
        for worker in workers:
            worker.task.cancel()
        # Wait for the heartbeats to end, as the runtime does: one cancelled in the middle of
        # a pipeline still holds a pooled connection, and closing the pool under it left the
        # task waiting forever (the event loop's close then hung the suite for 120 s).
        await asyncio.gather(*(worker.task for worker in workers), return_exceptions=True)
        keys = [key async for key in workers[0].redis.scan_iter(f"{prefix}*")]
        if keys:
            await workers[0].redis.delete(*keys)
        for worker in workers:
            await worker.redis.aclose()


class RedisServer:
    """A redis-server of the test's own on a free port, which the test may kill, start again
    (empty, as a restarted Redis without persistence is) and pause (SIGSTOP) and resume,
    without touching the Redis that other tests share."""

    def __init__(self, folder: "os.PathLike[str]") -> None:
        binary = shutil.which("redis-server")
        need("redis", binary is not None, "no redis-server binary to start a Redis of its own")
        assert binary is not None
        self.binary = binary
        self.folder = folder
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--dir", str(self.folder)]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait()
