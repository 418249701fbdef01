"""Per-user rate limits and caps, counted in this process.

A token bucket lets a user send in bursts (up to the bucket's size) while holding the
average to the configured rate. Counts are per worker process: a user whose sockets are
spread over several workers gets the allowance once per worker (docs/security.md).
"""

import functools
import time
from collections import Counter
from dataclasses import dataclass, field

# Open sockets per signed-in user in this process.
open_sockets: Counter[int] = Counter()


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


class RateLimiter:
    """One bucket per key (a user), made on first use."""

    def __init__(self) -> None:
        self.buckets: dict[object, TokenBucket] = {}

    def wait(self, key: object, limit: str) -> float:
        """0.0 if `key` may act now under `limit` ("10/10" or "off"), else the seconds until
        it may."""
        rate = parse_rate(limit)
        if rate is None:
            return 0.0
        bucket = self.buckets.get(key)
        if bucket is None or (bucket.size, bucket.per_seconds) != rate:
            bucket = self.buckets[key] = TokenBucket(*rate)
        return bucket.take()


sends = RateLimiter()
typing = RateLimiter()
edits = RateLimiter()  # edits and deletes
reads = RateLimiter()


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
