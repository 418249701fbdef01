"""Per-user rate limits and the cap on open sockets, counted for the whole site.

A token bucket lets a user act in bursts (up to the bucket's size) while holding the average
to the configured rate. Two registries with one interface, like presence:
- `LocalLimits`, in this process's memory: right for one process (the laptop default).
- `RedisLimits`, shared by every worker through Redis (chosen whenever `REDIS_URL` is set):
  a user's allowance and socket count are the same whichever workers their tabs reach.
  Buckets live in Redis hashes updated by one Lua script (Redis's clock, so workers' clocks
  do not matter). Each socket is an entry with an expiry, refreshed by its worker's
  heartbeat, so a killed worker's sockets stop counting within CHAT_PRESENCE_TTL (30 s).
  Should Redis fail, a limit lets the action through (logged): limits guard against abuse,
  and must not take the chat down with them.
"""

import asyncio
import functools
import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.conf import settings

from .heartbeat import Heartbeat
from .outages import Fallbacks, redis_client
from .redis_turns import ScriptCall, Turns

if TYPE_CHECKING:
    from .runtime import Runtime

logger = logging.getLogger(__name__)

# Kinds of rate-limited action.
SEND = "send"
TYPING = "typing"
EDIT = "edit"  # edits and deletions
READ = "read"
REACT = "react"  # reactions set or taken back
JOIN = "join"  # joins (leaves are free: a leave undoes one join)
HISTORY = "history"  # pages of older messages

# Whom a limit counts: a signed-in user's id, or, for anonymous sockets, "address:<ip>".
Key = int | str


def socket_key(*, user_id: int | None, address: str) -> Key:
    """Signed-in sockets count against their user; anonymous ones against their address."""
    return user_id if user_id is not None else f"address:{address}"


@dataclass
class TokenBucket:
    size: int
    per_seconds: float
    tokens: float = field(init=False)
    updated: float = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = float(self.size)
        self.updated = time.monotonic()

    def take(self) -> float:
        """Take a token: 0.0 if there was one, else the seconds until there will be."""
        now = time.monotonic()
        rate = self.size / self.per_seconds
        self.tokens = min(self.size, self.tokens + (now - self.updated) * rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / rate


@functools.lru_cache(maxsize=16)
def parse_rate(value: str) -> tuple[int, float] | None:
    """ "10/10" → (10, 10.0): 10 actions per 10 seconds; "off" → None."""
    if value.strip().lower() in {"off", "none", "0"}:
        return None
    count, _, seconds = value.partition("/")
    rate = (int(count), float(seconds or 1))
    if rate[0] < 1 or rate[1] <= 0:
        raise ValueError(f"A rate limit looks like 10/10 (actions/seconds) or off, not {value!r}")
    return rate


class LocalLimits:
    """Buckets and socket counts in this process's memory."""

    def __init__(self) -> None:
        self.buckets: dict[tuple[str, Key], TokenBucket] = {}
        self.sockets: dict[Key, set[str]] = defaultdict(set)

    async def wait(self, kind: str, user_id: Key, limit: str) -> float:
        """0.0 if the user may act now under `limit` ("10/10" or "off"), else the seconds
        until they may."""
        rate = parse_rate(limit)
        if rate is None:
            return 0.0
        bucket = self.buckets.get((kind, user_id))
        if bucket is None or (bucket.size, bucket.per_seconds) != rate:
            bucket = self.buckets[(kind, user_id)] = TokenBucket(*rate)
        return bucket.take()

    async def socket_opened(self, user_id: Key, socket_id: str, cap: int) -> bool:
        """Count a new socket of the user; False (and not counted) if they have `cap`."""
        sockets = self.sockets[user_id]
        if len(sockets) >= cap:
            return False
        sockets.add(socket_id)
        return True

    async def connected(self, user_ids: Iterable[int]) -> set[int]:
        """Of `user_ids`, those with a socket counted now (@here: services._notify)."""
        return {user_id for user_id in user_ids if self.sockets.get(user_id)}

    async def socket_closed(self, user_id: Key, socket_id: str) -> None:
        sockets = self.sockets.get(user_id)
        if sockets is not None:
            sockets.discard(socket_id)
            if not sockets:
                del self.sockets[user_id]


# KEYS[1]: the bucket (a hash). ARGV: size, seconds. Returns the wait as a string (a Lua
# number would come back truncated to an integer).
TAKE = """
local size, per = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate = size / per
local b = redis.call('HMGET', KEYS[1], 'tokens', 'updated', 'size', 'per')
local tokens, updated = tonumber(b[1]), tonumber(b[2])
if tokens == nil or tonumber(b[3]) ~= size or tonumber(b[4]) ~= per then
  tokens, updated = size, now
end
tokens = math.min(size, tokens + math.max(0, now - updated) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now),
  'size', size, 'per', per)
redis.call('PEXPIRE', KEYS[1], math.ceil(per * 1000) + 1000)
return tostring(wait)
"""

# KEYS[1]: the user's sockets (a sorted set, socket id → expiry). ARGV: socket, expiry, now,
# cap, key lifetime (ms). 1 if counted, 0 if the user is at the cap.
OPEN = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
if not redis.call('ZSCORE', KEYS[1], ARGV[1])
   and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""


# Seconds a user's request waits for Redis before it falls back (a rate limit let through,
# @here notifying nobody). A reply takes a millisecond, a storm's whole pipeline a fraction
# of a second; but a Redis that hangs (paused, or a network dropping packets) held every
# send for its pipeline's 20 s (seen running it as users: "sending…" for 20 s, the message
# not stored until then). While Redis is known to be away a request tries only briefly, so
# that the first answer still ends the outage.
PATIENCE = 2.0
PATIENCE_AWAY = 0.1


class RedisLimits(Heartbeat):
    """Buckets and socket counts shared by every worker through Redis."""

    def __init__(self, url: str, *, ttl: float, prefix: str = "chat:limits:") -> None:
        self.redis = redis_client(url)
        self.fallbacks = Fallbacks("Redis (rate limits and socket caps)", logger)
        self.ttl = ttl
        self.prefix = prefix
        self.take_script = self.redis.register_script(TAKE)
        self.open_script = self.redis.register_script(OPEN)
        self.turns = Turns(self.redis)  # a turn's checks in one pipeline (redis_turns.py)
        self.local: dict[Key, set[str]] = defaultdict(set)  # this worker's sockets
        self.owed: set[tuple[Key, str]] = set()  # uncounts Redis refused: the next beat's
        self.task = None

    def _sockets_key(self, user_id: Key) -> str:
        return f"{self.prefix}sockets:{user_id}"

    def _patience(self) -> float:
        return PATIENCE_AWAY if self.fallbacks.away else PATIENCE

    async def wait(self, kind: str, user_id: Key, limit: str) -> float:
        rate = parse_rate(limit)
        if rate is None:
            return 0.0
        try:
            key = f"{self.prefix}{kind}:{user_id}"
            async with asyncio.timeout(self._patience()):  # its take may still be made later
                (wait,) = await self.turns.run(ScriptCall(self.take_script, [key], list(rate)))
        except Exception:
            self.fallbacks.failed("Rate limit unavailable (Redis); letting the action through")
            return 0.0
        self.fallbacks.answered()
        return float(wait)

    async def socket_opened(self, user_id: Key, socket_id: str, cap: int) -> bool:
        now = time.time()
        try:
            args = [socket_id, now + self.ttl, now, cap, int(self.ttl * 2000)]
            (counted,) = await self.turns.run(
                ScriptCall(self.open_script, [self._sockets_key(user_id)], args)
            )
        except Exception:
            self.fallbacks.failed("Socket cap unavailable (Redis); letting the socket in")
            counted = 1
        else:
            self.fallbacks.answered()
        if counted:
            self.local[user_id].add(socket_id)
        return bool(counted)

    async def socket_closed(self, user_id: Key, socket_id: str) -> None:
        sockets = self.local.get(user_id)
        if sockets is None or socket_id not in sockets:
            return
        sockets.discard(socket_id)
        if not sockets:
            del self.local[user_id]
        try:
            await self.turns.run(lambda pipe: pipe.zrem(self._sockets_key(user_id), socket_id))
        except Exception:  # Redis away (a bug is logged each time: Fallbacks)
            # Owed, not left to expire: until then it counted against the user's cap for up
            # to the TTL, refusing tabs they opened again after Redis came back.
            self.owed.add((user_id, socket_id))
            self.fallbacks.failed("Could not uncount a socket (Redis); owed to the next beat")
            self.owed_soon()
        else:
            self.fallbacks.answered()

    async def connected(self, user_ids: Iterable[int]) -> set[int]:
        """Of `user_ids`, those with a socket counted now on any worker (one round trip);
        nobody while Redis is out (an @here then notifies no one; the message still posts)."""
        user_ids = list(user_ids)
        now = time.time()
        keys = [self._sockets_key(user_id) for user_id in user_ids]
        try:
            # In the turn's pipeline, so that giving up leaves the pipeline be (a pipeline
            # cancelled in flight held on to its pooled connection).
            async with asyncio.timeout(self._patience()):
                counts = await self.turns.run(
                    *(lambda pipe, key=key: pipe.zcount(key, now, "+inf") for key in keys)
                )
        except Exception:
            self.fallbacks.failed("Who is connected is unknown (Redis); @here notifies nobody")
            return set()
        self.fallbacks.answered()
        return {user_id for user_id, count in zip(user_ids, counts, strict=True) if count}

    async def beat(self) -> None:
        await self.heartbeat()

    async def heartbeat(self) -> None:
        """Make the uncounts Redis refused, and push the expiry of every local socket
        forward."""
        expiry = time.time() + self.ttl
        owed = list(self.owed)
        async with self.redis.pipeline(transaction=False) as pipe:
            for user_id, socket_id in owed:
                pipe.zrem(self._sockets_key(user_id), socket_id)
            for user_id, sockets in list(self.local.items()):
                key = self._sockets_key(user_id)
                pipe.zadd(key, dict.fromkeys(sockets, expiry))
                pipe.pexpire(key, int(self.ttl * 2000))
            replies = await pipe.execute(raise_on_error=False)  # Redis away: raises
        # Made, or refused outright (a bug, logged): either way not tried every beat after.
        self.owed.difference_update(owed)
        for (user_id, socket_id), reply in zip(owed, replies, strict=False):
            if isinstance(reply, Exception):
                logger.error(
                    "Could not uncount socket %s of %r; left to expire",
                    socket_id,
                    user_id,
                    exc_info=reply,
                )
        if owed:
            self.fallbacks.answered()
        for reply in replies[len(owed) :]:
            if isinstance(reply, Exception):
                raise reply


Limits = LocalLimits | RedisLimits


def make_limits(runtime: "Runtime") -> Limits:
    """The registry of a runtime: through Redis, heartbeat running, when
    CHAT_LIMITS_REDIS_URL is set; else in memory (a Redis client belongs to its loop)."""
    if not settings.CHAT_LIMITS_REDIS_URL:
        return LocalLimits()
    registry = RedisLimits(settings.CHAT_LIMITS_REDIS_URL, ttl=settings.CHAT_PRESENCE_TTL)
    runtime.start("socket cap heartbeat", registry.beat_forever)
    return registry
