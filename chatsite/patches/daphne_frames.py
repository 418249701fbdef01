"""Room broadcasts written to daphne's sockets as ready-made WebSocket frames.

A broadcast sends the same text to every socket of its room. Through ASGI each copy takes
daphne's `handle_reply` → `serverSend` (which encodes the text to UTF-8) → autobahn's
`sendMessage` (its checks, statistics and compression set-up) → `sendFrame` (the header
built bit by bit) → `sendData` (a debug log call whose arguments are formatted every time)
→ the transport: the same bytes built again for each socket. So the fan-out builds the
frame once per broadcast (`text_frame`) and hands those bytes to each socket's transport
(`frame_writer`). Before each write the connection is checked to be in the plain state in
which autobahn would have sent exactly those bytes: daphne still has it, it is open, no
compression was negotiated, autobahn queues nothing, does not fragment, mask, time or log
what it sends, and the frame is within its payload limit; and daphne_limits' cap on unsent
bytes applies as to any send. Otherwise the writer says so and the caller sends the text
through ASGI as before, so nothing unusual changes path. While Twisted holds nothing unsent
for a plain TCP connection (no cap can be reached, nothing can be overtaken), the frames go
to its socket's `send` directly, as twisted_writes' fast path would put them, without that
path's checks made again and Twisted's `writeSomeData` around the send; what the kernel does
not take, and any error, goes through Twisted's `write` (about a tenth less server CPU per delivery
at N = 1,000: docs/performance.md, item 20).

Relies on daphne's `Server.create_application` passing `partial(self.handle_reply,
protocol)` as the application's `send`, on what `handle_reply` checks before it sends, on
the autobahn fields that decide what `sendMessage` writes, and on Twisted's TCP connection
keeping its socket, buffer and state fields; `check()` asserts they are there.
tests/unit/test_daphne_frames.py compares the frames with autobahn's own for every length
class and for text that is not ASCII, and puts the writer through every unusual state.
"""

import inspect
import struct
from collections.abc import Callable
from typing import Any

from autobahn.websocket.protocol import WebSocketProtocol as AutobahnProtocol
from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol
from twisted.internet import tcp

from . import daphne_limits, twisted_writes
from .checks import fail, require_attrs, require_source
from .twisted_writes import writable_now

PATCH = "daphne_frames"

FrameWriter = Callable[[bytes, int], bool]


def text_frame(text: str) -> bytes:
    """`text` as one final, unmasked text frame (RFC 6455 5.2): what autobahn's
    `sendMessage` writes for it on a server connection without compression."""
    payload = text.encode("utf-8")
    size = len(payload)
    if size <= 125:
        header = bytes((0x81, size))
    elif size <= 0xFFFF:
        header = struct.pack("!BBH", 0x81, 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 127, size)
    return header + payload


def frame_writer(send: Any) -> FrameWriter | None:
    """A function that writes `text_frame`s to the socket behind `send` (one frame, or
    several joined and the length of the longest), if `send` is daphne's for a WebSocket
    whose options let autobahn send plain frames (None otherwise: another server, a test's
    communicator, the HTTP fallback, a connection daphne does not have, frames masked, timed
    or logged). It returns False, writing nothing, when the frames must go through `send`
    instead (the connection is not in the plain state now; see the module's doc)."""
    protocol = daphne_limits.daphne_connection(send)
    if not isinstance(protocol, WebSocketProtocol):
        return None
    connections: dict[Any, dict[str, Any]] = send.func.__self__.connections
    # The options autobahn copied from its factory when the connection was made (before
    # daphne created the application): fixed for the connection's life.
    if protocol.trackedTimings or protocol.logOctets or protocol.maskServerFrames:
        return None
    sizes = [size for size in (protocol.autoFragmentSize, protocol.maxMessagePayloadSize) if size]
    largest = min(sizes) if sizes else None  # (a frame is longer than its payload)
    opened = AutobahnProtocol.STATE_OPEN
    dropped_for_unread = daphne_limits.dropped_for_unread

    # daphne's entry for the connection, looked up once: daphne marks it "disconnected" in
    # place before it ever removes it (`check` asserts so), so the entry tells each write
    # what looking the protocol up in `connections` would, without daphne's Python-level
    # __hash__ and __eq__ on a dict of every connection (7% of a broadcast's CPU).
    details = connections.get(protocol)
    if details is None:
        return None
    # A plain TCP connection's socket, written to directly while Twisted holds nothing
    # unsent for it (see `write`); None for anything else (TLS inside daphne), and for a
    # connection already lost (Twisted deletes its socket): a tab that closed before its
    # consumer connected crashed the consumer here, "'Server' object has no attribute
    # 'socket'" (seen running it as users).
    transport = protocol.transport
    sock = (
        getattr(transport, "socket", None)
        if isinstance(transport, tcp.Connection) and not getattr(transport, "TLS", False)
        else None
    )

    def write(frames: bytes, longest: int) -> bool:
        if (
            details.get("disconnected")
            or protocol.state != opened
            or protocol._perMessageCompress is not None
            or protocol.send_queue
            or (largest is not None and longest > largest)
        ):
            return False
        if sock is not None and writable_now(transport):
            # Nothing unsent: under any cap (daphne_limits), and nothing to overtake, so the
            # kernel may take the frames now (twisted_writes' fast path, without its checks
            # done again and Twisted's writeSomeData around the send).
            try:
                sent = sock.send(frames)
            except OSError:  # full, or the connection broke: Twisted's own path finds out
                sent = 0
            if sent != len(frames):
                transport.write(frames[sent:])
            return True
        if not dropped_for_unread(protocol):
            transport.write(frames)
        return True

    return write


def check() -> None:
    """Fail loudly unless daphne and autobahn still send as `frame_writer` assumes, and
    Twisted's TCP connection still keeps what its direct writes read."""
    require_source(
        PATCH,
        "Twisted",
        getattr(tcp.Connection, "__init__", None),
        ["self.socket", "setblocking(False)"],
        label="twisted.internet.tcp.Connection.__init__",
    )
    twisted_writes.check()  # the fields `writable_now` reads
    require_source(
        PATCH,
        "daphne",
        getattr(Server, "create_application", None),
        ["send=partial(self.handle_reply, protocol)"],
        label="daphne.server.Server.create_application",
    )
    require_source(
        PATCH,
        "daphne",
        getattr(Server, "handle_reply", None),
        ["protocol not in self.connections", '"disconnected"', "protocol.handle_reply(message)"],
        label="daphne.server.Server.handle_reply",
    )
    require_source(
        PATCH,
        "daphne",
        getattr(Server, "protocol_connected", None),
        ['self.connections[protocol] = {"connected"'],
        label="daphne.server.Server.protocol_connected",
    )
    require_source(
        PATCH,
        "daphne",
        getattr(Server, "protocol_disconnected", None),
        ['self.connections[protocol]["disconnected"] = time.time()'],
        label="daphne.server.Server.protocol_disconnected",
    )
    checker = getattr(Server, "application_checker", None)
    label = "daphne.server.Server.application_checker"
    require_source(
        PATCH, "daphne", checker, ["if not application_instance and disconnected:"], label=label
    )
    source = inspect.getsource(checker)
    removal = "del self.connections[protocol]\n"
    if source.count(removal) != 1 or source.index(removal) < source.index("and disconnected:"):
        raise fail(PATCH, "daphne", label, "removes a connection not marked disconnected")
    require_source(
        PATCH,
        "daphne",
        daphne_limits._daphne_server_send,
        ['self.sendMessage(content.encode("utf8"), binary)'],
        label="daphne.ws_protocol.WebSocketProtocol.serverSend",
    )
    autobahn = "autobahn.websocket.protocol.WebSocketProtocol"
    require_attrs(PATCH, "autobahn", AutobahnProtocol, ["STATE_OPEN"], label=autobahn)
    require_source(
        PATCH,
        "autobahn",
        getattr(AutobahnProtocol, "sendMessage", None),
        [
            "self._perMessageCompress is not None",
            "self.trackedTimings",
            "self.maxMessagePayloadSize",
            "self.autoFragmentSize",
            "self.sendFrame(",
        ],
        label=f"{autobahn}.sendMessage",
    )
    require_source(
        PATCH,
        "autobahn",
        getattr(AutobahnProtocol, "sendFrame", None),
        ["self.maskServerFrames", "self.sendData("],
        label=f"{autobahn}.sendFrame",
    )
    require_source(
        PATCH,
        "autobahn",
        getattr(AutobahnProtocol, "sendData", None),
        ["len(self.send_queue) > 0", "self.transport.write(data)", "self.logOctets"],
        label=f"{autobahn}.sendData",
    )
    # The fields are set per connection (`_connectionMade`), the options from the factory's.
    require_source(
        PATCH,
        "autobahn",
        getattr(AutobahnProtocol, "_connectionMade", None),
        [
            "for configAttr in self.CONFIG_ATTRS",
            *(f"self.{name} =" for name in ("send_queue", "_perMessageCompress", "trackedTimings")),
        ],
        label=f"{autobahn}._connectionMade",
    )
    options = set(getattr(WebSocketProtocol, "CONFIG_ATTRS", ()))
    for name in ("logOctets", "autoFragmentSize", "maxMessagePayloadSize", "maskServerFrames"):
        if name not in options:
            raise fail(PATCH, "autobahn", f"{autobahn}.CONFIG_ATTRS[{name!r}]", "is not an option")
