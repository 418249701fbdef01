"""Throttles of the HTTP forms, counted in Django's cache: failed logins per username and
per address; sign-ups per address and room creation per user and per address.

The cache is Redis when REDIS_URL is set, so every worker counts together. Each counter lives
for LOGIN_THROTTLE_WINDOW seconds from its first failure; at its limit, logins for that
username (or from that address) wait until the window ends. Usernames are hashed into the
key, so any text a client posts makes a valid key.
"""

import functools
import hashlib
import math
import time
import unicodedata
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache

from ..realtime.limits import parse_rate
from ..realtime.outages import Outage

Result = TypeVar("Result")

_cache_outage = Outage("the throttles' cache (Redis); logins and sign-ups are not throttled")
_cache_retry_at = 0.0  # while the cache is away, ask it again only from then on


def degrades_to(default: Any) -> Callable[[Callable[..., Result]], Callable[..., Result]]:
    """A throttle whose cache fails (Redis away) lets the request through, logged once per
    outage, and skips the cache for a moment rather than make every login wait on it:
    a throttle guards against abuse and must not lock everyone out with it."""

    def wrap(function: Callable[..., Result]) -> Callable[..., Result]:
        @functools.wraps(function)
        def guarded(**kwargs: Any) -> Result:
            global _cache_retry_at
            if time.monotonic() < _cache_retry_at:
                return default
            try:
                result = function(**kwargs)
            except Exception as error:
                _cache_retry_at = time.monotonic() + _cache_outage.failed(error)
                return default
            _cache_outage.recovered()
            return result

        return guarded

    return wrap


def login_username(posted: str) -> str:
    """The account a posted username names, as the counters see it: what the login form
    makes of it (spaces stripped, NFKC: "bob  " and full-width "bob" are bob), case-folded
    on top, so each account's spellings count together (folding may join a few accounts'
    counts; it never splits one)."""
    cleaned = AuthenticationForm.base_fields["username"].to_python(posted) or ""
    return unicodedata.normalize("NFKC", cleaned.casefold())


def _keys(kind: str, value: str) -> tuple[str, str]:
    """The cache keys of one counter: its count, and when its window opened."""
    value = login_username(value) if kind == "username" else value.casefold()
    digest = hashlib.sha256(value.encode(errors="surrogatepass")).hexdigest()
    return f"login-failures:{kind}:{digest}", f"login-failures-since:{kind}:{digest}"


def _counters(*, username: str, address: str) -> list[tuple[str, str, int]]:
    """(kind, value, limit) for each counter a login attempt touches."""
    counters = [("address", address, settings.LOGIN_THROTTLE_ADDRESS_FAILURES)]
    if username:
        counters.append(("username", username, settings.LOGIN_THROTTLE_USERNAME_FAILURES))
    return counters


@degrades_to(None)
def login_retry_after(*, username: str, address: str) -> int | None:
    """Seconds until a login for `username` from `address` may be tried, or None if now."""
    now = time.time()
    waits = []
    for kind, value, limit in _counters(username=username, address=address):
        count_key, since_key = _keys(kind, value)
        values = cache.get_many([count_key, since_key])
        if values.get(count_key, 0) >= limit:
            opened = values.get(since_key, now)
            waits.append(max(1, math.ceil(opened + settings.LOGIN_THROTTLE_WINDOW - now)))
    return max(waits, default=None)


@degrades_to(None)
def login_failed(*, username: str, address: str) -> None:
    """Count a failed login against its username and its address."""
    window = settings.LOGIN_THROTTLE_WINDOW
    for kind, value, _limit in _counters(username=username, address=address):
        count_key, since_key = _keys(kind, value)
        # The count first: it expires no later than the time its window opened.
        cache.add(count_key, 0, window)
        cache.add(since_key, time.time(), window)
        try:
            cache.incr(count_key)
        except ValueError:  # expired between add and incr: this failure opens a new window
            cache.set(count_key, 1, window)


@degrades_to(None)
def login_succeeded(*, username: str) -> None:
    """Forget the username's failures (not the address's: one's own account must not reset
    the count of an address that is guessing others' passwords)."""
    cache.delete_many(_keys("username", username))


@degrades_to(None)
def action_retry_after(*, kind: str, keys: list[str], limit: str) -> int | None:
    """Seconds until another `kind` action (a sign-up, a new room) is allowed for every one of
    `keys` (the user, the address) under `limit` ("5/3600": 5 per hour; "off"), or None."""
    rate = parse_rate(limit)
    if rate is None:
        return None
    count, seconds = rate
    now = time.time()
    waits = []
    for key in keys:
        count_key, since_key = _keys(kind, key)
        values = cache.get_many([count_key, since_key])
        if values.get(count_key, 0) >= count:
            waits.append(max(1, math.ceil(values.get(since_key, now) + seconds - now)))
    return max(waits, default=None)


@degrades_to(None)
def action_done(*, kind: str, keys: list[str], limit: str) -> None:
    """Count one `kind` action against each of `keys`, in windows of `limit`'s seconds."""
    rate = parse_rate(limit)
    if rate is None:
        return
    window = math.ceil(rate[1])
    for key in keys:
        count_key, since_key = _keys(kind, key)
        cache.add(count_key, 0, window)
        cache.add(since_key, time.time(), window)
        try:
            cache.incr(count_key)
        except ValueError:
            cache.set(count_key, 1, window)
