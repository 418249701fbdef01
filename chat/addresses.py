"""The client's address, for the limits that count per address (failed logins, anonymous
sockets, signups, room creation).

The peer's address is the client's unless the peer is one of CHAT_TRUSTED_PROXIES (empty by
default): only then is `X-Forwarded-For` read, from the right, skipping the trusted proxies,
so a client cannot choose its own address by sending the header itself. daphne runs without
`--proxy-headers` (deploy/supervisord.conf), which would believe the header from anyone.
"""

import functools
import ipaddress
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(proxy.strip(), strict=False) for proxy in proxies)


def _trusted(address: str) -> bool:
    proxies = tuple(settings.CHAT_TRUSTED_PROXIES)
    return bool(proxies) and _trusted_by(address.strip(), proxies)


# Every socket and request asks about its peer: without proxies (the default) nothing is
# parsed; behind them the peer is one of a few proxies, so the answers are kept (the most
# recent 256: a forwarded address is the client's choice).
@functools.lru_cache(maxsize=256)
def _trusted_by(address: str, proxies: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in _networks(proxies))


def client_address(*, peer: str, forwarded_for: Iterable[str] = ()) -> str:
    """The client's address: `peer`, or, when the peer is a trusted proxy, the rightmost
    address in its `X-Forwarded-For` headers that is not a trusted proxy itself."""
    if not _trusted(peer):
        return peer
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
    hops = [hop for hop in hops if hop]
    for hop in reversed(hops):
        if not _trusted(hop):
            return hop
    return hops[0] if hops else peer


def request_address(request: HttpRequest) -> str:
    """The address of an HTTP request's client."""
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    return client_address(
        peer=request.META.get("REMOTE_ADDR", ""), forwarded_for=[forwarded] if forwarded else []
    )


def scope_address(scope: dict[str, Any]) -> str:
    """The address of an ASGI connection's client (a WebSocket's)."""
    peer = (scope.get("client") or ("",))[0] or ""
    forwarded = [
        value.decode("latin-1")
        for name, value in scope.get("headers", [])
        if name.lower() == b"x-forwarded-for"
    ]
    return client_address(peer=peer, forwarded_for=forwarded)
