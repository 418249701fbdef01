"""daphne keeps a WebSocket's HTTP request, and the HTTP connection it came on, for as long as
the socket is open.

A WebSocket starts as an HTTP request on Twisted's `HTTPChannel`, which registers itself as
its TCP transport's producer when the connection is made. daphne's upgrade
(`WebRequest.process`) hands that transport to its WebSocket protocol, but leaves the channel
registered. So the transport holds the channel, which holds the request (its headers, its
body buffer, daphne's copy of the handshake), about 3 KB a socket that nothing reads again
(docs/performance.md, Analysis item 18). The channel no longer acts as a producer either:
it pauses or resumes nothing while a request is being handled, and the upgrade's request is
handled until the connection ends.

When daphne's WebSocket protocol takes the connection over, this patch unregisters the
channel and empties its list of requests, the one link back from the channel to the
request. Both are then freed as soon as daphne's upgrade returns, by reference counting,
rather than waiting for a full collection of the cycle they form.

Relies on Twisted's `HTTPChannel` registering itself as its transport's producer and keeping
its requests in `requests`, on daphne's upgrade handing over the transport before it calls
`makeConnection`, and resuming the connection through `channel._networkProducer` (the
transport itself) rather than through the producer; `check()` asserts each. A TLS connection
inside daphne (a wrapping transport) is left as it is.
"""

import functools
from typing import Any

from daphne.http_protocol import WebRequest
from daphne.ws_protocol import WebSocketProtocol
from twisted.internet import abstract
from twisted.web.http import HTTPChannel

from .checks import require_attrs, require_params, require_source

PATCH = "daphne_upgrade"

_connection_made = getattr(WebSocketProtocol, "connectionMade", None)


def release_http_channel(protocol: Any) -> None:
    """Let go of the HTTP channel `protocol`'s transport came from, if it still holds it."""
    transport = protocol.transport
    channel = getattr(transport, "producer", None)
    if isinstance(channel, HTTPChannel) and getattr(transport, "protocol", None) is protocol:
        transport.unregisterProducer()
        channel.requests.clear()


def _connection_made_releasing_http(self: WebSocketProtocol) -> None:
    release_http_channel(self)
    _connection_made(self)


def check() -> None:
    """Fail loudly unless Twisted and daphne still do what the release relies on."""
    require_source(
        PATCH,
        "Twisted",
        HTTPChannel.connectionMade,
        ["self._networkProducer.registerProducer(self, True)"],
        label="twisted.web.http.HTTPChannel.connectionMade",
    )
    require_source(
        PATCH,
        "Twisted",
        HTTPChannel.__init__,
        ["self.requests = []"],
        label="twisted.web.http.HTTPChannel.__init__",
    )
    require_attrs(
        PATCH,
        "Twisted",
        abstract.FileDescriptor,
        ["producer", "unregisterProducer"],
        label="twisted.internet.abstract.FileDescriptor",
    )
    require_source(
        PATCH,
        "daphne",
        getattr(WebRequest, "process", None),
        [
            "transport.protocol = protocol",
            "protocol.makeConnection(transport)",
            "self.channel._networkProducer.resumeProducing()",
        ],
        label="daphne.http_protocol.WebRequest.process",
    )
    original = getattr(WebSocketProtocol, "connectionMade", None)
    require_params(
        PATCH,
        "autobahn",
        getattr(original, "__wrapped__", original),
        ["self"],
        label="daphne.ws_protocol.WebSocketProtocol.connectionMade",
    )


def install() -> None:
    """Release the HTTP channel when daphne's WebSocket protocol takes over (idempotent)."""
    functools.update_wrapper(_connection_made_releasing_http, _connection_made)
    WebSocketProtocol.connectionMade = _connection_made_releasing_http
