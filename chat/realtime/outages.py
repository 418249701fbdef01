"""How a background loop lives through a dependency that stops answering (the channel layer,
Redis): it says so in the log once when the dependency fails and once when it answers again,
and waits a little longer before each retry, up to a few seconds, so it is back within
seconds of the dependency but never spins while it is away."""

import asyncio
import logging
import random
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import redis.asyncio

logger = logging.getLogger(__name__)

T = TypeVar("T")

FIRST_RETRY = 0.1  # seconds
LAST_RETRY = 2.0  # the longest wait between two tries
# Seconds work that needs the channel layer waits out a failing one before giving up: a
# broadcast later than this is worth less than the clients' resync, and a socket's
# subscription waits as long as a broadcast would.
LAYER_PATIENCE = 10.0


def stop_if_cancelled() -> None:
    """Raise CancelledError if this task was asked to stop and a library swallowed the request.

    Python 3.11's `asyncio.wait_for`, which redis-py connects and sends through, returns the
    awaited result instead of raising when that operation finishes just as the cancel arrives
    (CPython gh-86296, fixed in 3.12). A loop that simply went on would never stop, and
    `Runtime.close()` would wait for it forever; so every loop asks this once per turn."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def redis_client(url: str) -> "redis.asyncio.Redis":
    """A client of the Redis at `url` for the registries every socket uses (presence, the
    limits), with a pool of up to 50 connections that waits for a free one rather than
    failing a join when a thousand sockets connect at once.

    After Redis restarts, every connection in the pool is one the server has closed. redis-py
    retries nothing by default, so each of them failed its next command: a rate limit let
    through, a presence entry missed, a traceback in the log, until the pool had gone
    through all fifty. One retry sends the command again on a fresh connection. A command
    on a connection that closed is one Redis never ran, so nothing runs twice; if Redis is
    down, the retry fails as fast as the first try."""
    import redis.asyncio as redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    pool = redis.BlockingConnectionPool.from_url(
        url, max_connections=50, timeout=20, retry=Retry(NoBackoff(), 1)
    )
    return redis.Redis(connection_pool=pool)


def redis_away(error: BaseException) -> bool:
    """Whether `error` says Redis did not answer (down, restarting, unreachable, silent),
    which trying again later mends, rather than that it refused the command (a bug)."""
    from redis.exceptions import ConnectionError, TimeoutError

    return isinstance(error, ConnectionError | TimeoutError | OSError)


class Outage:
    """The state of one loop's dependency: answering, or away since when."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.since: float | None = None
        self.failures = 0
        self.skipped = 0  # work given up while the dependency was away

    @property
    def ok(self) -> bool:
        return self.since is None

    def failed(self, error: BaseException) -> float:
        """Record a failure (logged at the first of an outage); the seconds to wait before
        the next try."""
        self.failures += 1
        if self.since is None:
            self.since = time.monotonic()
            logger.error("Lost %s (%s: %s); retrying", self.what, type(error).__name__, error)
        delay = min(LAST_RETRY, FIRST_RETRY * 2 ** (self.failures - 1))
        return delay * random.uniform(0.5, 1.0)

    async def retry(
        self, attempt: Callable[[], Awaitable[T]], *, deadline: float | None = None
    ) -> T:
        """What `attempt()` returns, tried again with backoff while it fails (logged as
        above). With a `deadline` (`time.monotonic()`), a failure whose next try would start
        past it is raised instead."""
        while True:
            stop_if_cancelled()
            try:
                result = await attempt()
            except Exception as error:
                delay = self.failed(error)
                if deadline is not None and time.monotonic() + delay > deadline:
                    raise
                await asyncio.sleep(delay)
            else:
                self.recovered()
                return result

    def given_up(self, why: str) -> None:
        """The loop that retried stopped for good, its work gone (`why`): the outage ends
        unresolved, said so in the log, so that neither the log nor /healthz goes on
        saying the dependency is away when nothing here watches it any more."""
        if self.since is None:
            return
        away = time.monotonic() - self.since
        logger.warning("Stopped waiting for %s after %.1f s: %s", self.what, away, why)
        self.since = None
        self.failures = 0
        self.skipped = 0

    def recovered(self) -> bool:
        """Record a success; True (and logged) when it ends an outage."""
        if self.since is None:
            return False
        away = time.monotonic() - self.since
        skipped = f"; {self.skipped} event(s) could not be sent meanwhile" if self.skipped else ""
        logger.warning("Regained %s after %.1f s%s", self.what, away, skipped)
        self.since = None
        self.failures = 0
        self.skipped = 0
        return True


class Fallbacks:
    """The log of one registry's per-request fallbacks while Redis is away (a rate limit let
    through, a socket let in uncounted, @here notifying nobody). Every user action falls
    back while Redis is down, so only the first failure of an outage is logged with its
    traceback; the rest go to the debug log, and the first request that Redis answers again
    says how many fell back meanwhile."""

    def __init__(self, what: str, log: logging.Logger) -> None:
        self.what = what
        self.log = log
        self.since: float | None = None
        self.last = 0.0  # the latest fallback's time
        self.fell_back = 0

    def failed(self, message: str) -> None:
        """Log `message` for the exception being handled: once an outage, then quietly. An
        exception that is not Redis failing to answer (a bug) is logged every time."""
        from redis.exceptions import RedisError

        if not isinstance(sys.exc_info()[1], RedisError | OSError):
            self.log.exception(message)
            return
        self.fell_back += 1
        self.last = time.monotonic()
        if self.since is None:
            self.since = self.last
            self.log.exception(
                "%s; until %s answers again, the same goes to the debug log", message, self.what
            )
        else:
            self.log.debug(message, exc_info=True)

    @property
    def away(self) -> bool:
        """Whether the last request fell back (no request has been answered since)."""
        return self.since is not None

    def answered(self) -> None:
        """A request got its answer: if that ends an outage, say so. The times are the
        requests': a quiet site's next request may come long after Redis did, so the log
        says when the last one fell back rather than call the whole wait an outage."""
        if self.since is not None:
            now = time.monotonic()
            self.log.warning(
                "%s answers again; %d request(s) fell back, over %.1f s, the last %.1f s ago",
                self.what,
                self.fell_back,
                self.last - self.since,
                now - self.last,
            )
            self.since = None
            self.fell_back = 0
