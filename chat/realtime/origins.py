"""The WebSocket Origin check: a handshake is accepted only from the site's own origin.

Channels' AllowedHostsOriginValidator compares the Origin's host with ALLOWED_HOSTS and
ignores its scheme and port, so `http://localhost:9999` (another program on the machine) or
`https://127.0.0.1` passed for a site at `http://127.0.0.1:8000`. Here an origin is the
site's only if scheme, host and port all match the handshake's own (its Host header, which
must be an allowed host, and its scheme: https behind a TLS proxy, `DJANGO_HTTPS`), or one
of CSRF_TRUSTED_ORIGINS, the list Django's CSRF check trusts for forms.
"""

import functools
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http.request import split_domain_port, validate_host

DEFAULT_PORTS = {"http": 80, "https": 443}
Origin = tuple[str, str, int]  # scheme, host (lower case, no brackets), port


def parse_origin(value: str) -> Origin | None:
    """`https://Example.com` → ("https", "example.com", 443); None if not an http(s) origin."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.scheme, parts.hostname, port or DEFAULT_PORTS[parts.scheme]


def own_origin(scope: dict[str, Any], host: str) -> Origin | None:
    """The origin a page of this site has, for a handshake that arrived with `host`."""
    return _own_origin(host, _secure(scope))


def _secure(scope: dict[str, Any]) -> bool:
    return scope.get("scheme") == "wss" or settings.HTTPS


def _own_origin(host: str, secure: bool) -> Origin | None:
    domain, _port = split_domain_port(host)
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:  # as Django's request.get_host()
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    if not domain or not validate_host(domain, allowed):
        return None
    return parse_origin(f"{'https' if secure else 'http'}://{host}")


def _trusted(origin: Origin) -> bool:
    for value in settings.CSRF_TRUSTED_ORIGINS:
        wildcard = "://*." in value
        trusted = parse_origin(value.replace("://*.", "://", 1))
        if trusted is None or (origin[0], origin[2]) != (trusted[0], trusted[2]):
            continue
        if origin[1] == trusted[1] or (wildcard and origin[1].endswith("." + trusted[1])):
            return True
    return False


def origin_allowed(scope: dict[str, Any]) -> bool:
    origin = host = b""
    for name, value in scope.get("headers", []):  # the last of each, as dict() keeps
        if name == b"origin":
            origin = value
        elif name == b"host":
            host = value
    return _allowed(origin, host, _secure(scope))


# A site's handshakes bring the same few Origin and Host pairs, and parsing and checking
# them was 3% of the event loop's time in a storm of handshakes (docs/performance.md,
# Analysis item 26). The answers are kept; the headers are the client's, so only the 64
# most recently used are (a site has a few names; header lines are capped in size). The
# settings they depend on are forgotten with them when a test changes one (Django sends
# setting_changed; nothing changes them in service).
@functools.lru_cache(maxsize=64)
def _allowed(origin_header: bytes, host_header: bytes, secure: bool) -> bool:
    origin = parse_origin(origin_header.decode("latin-1"))
    host = host_header.decode("latin-1")
    if origin is None or not host:
        return False
    return origin == _own_origin(host, secure) or _trusted(origin)


ORIGIN_SETTINGS = frozenset({"ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "DEBUG", "HTTPS"})


@receiver(setting_changed)
def _forget_answers(*, setting: str, **kwargs: Any) -> None:
    if setting in ORIGIN_SETTINGS:
        _allowed.cache_clear()
