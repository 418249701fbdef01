"""The WebSocket Origin check: a handshake is accepted only from the site's own origin.

Channels' AllowedHostsOriginValidator compares the Origin's host with ALLOWED_HOSTS and
ignores its scheme and port, so `http://localhost:9999` (another program on the machine) or
`https://127.0.0.1` passed for a site at `http://127.0.0.1:8000`. Here an origin is the
site's only if scheme, host and port all match the handshake's own (its Host header, which
must be an allowed host, and its scheme: https behind a TLS proxy, `DJANGO_HTTPS`), or one
of CSRF_TRUSTED_ORIGINS, the list Django's CSRF check trusts for forms.
"""

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
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
    domain, _port = split_domain_port(host)
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:  # as Django's request.get_host()
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    if not domain or not validate_host(domain, allowed):
        return None
    secure = scope.get("scheme") == "wss" or settings.HTTPS
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
    headers = dict(scope.get("headers", []))
    origin = parse_origin(headers.get(b"origin", b"").decode("latin-1"))
    host = headers.get(b"host", b"").decode("latin-1")
    if origin is None or not host:
        return False
    return origin == own_origin(scope, host) or _trusted(origin)
