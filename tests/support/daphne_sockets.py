"""daphne's WebSocket protocol as its server builds it, without the network, and Twisted TCP
connections over loopback: for the patches that write to daphne's transports."""

import contextlib
import functools
import socket
from collections.abc import Iterator
from typing import Any

from daphne.server import Server
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
from twisted.internet import address, tcp
from twisted.internet.protocol import Protocol
from twisted.internet.testing import StringTransport

from chatsite.patches.daphne_frames import text_frame


class Opened:
    """A daphne WebSocket protocol, open, on a transport that keeps what is written: as
    daphne's server builds it (its factory, daphne's options), without the network."""

    def __init__(self, transport: Any = None) -> None:
        # daphne sets `connections` and the factory up in run(); the rest of run() listens.
        self.server = Server(application=None, endpoints=["tcp:port=0:interface=127.0.0.1"])
        factory = WebSocketFactory(self.server, server="daphne")
        factory.setProtocolOptions(
            autoPingTimeout=30,
            allowNullOrigin=True,
            openHandshakeTimeout=5,
            maxMessagePayloadSize=2**20,
            maxFramePayloadSize=2**20,
        )
        self.protocol: WebSocketProtocol = factory.buildProtocol(("127.0.0.1", 50000))
        self.transport = transport or StringTransport()
        self.protocol.makeConnection(self.transport)
        self.protocol.state = self.protocol.STATE_OPEN
        self.protocol.client_addr = ["127.0.0.1", 50000]  # daphne's onConnect sets it
        self.server.connections = {self.protocol: {"connected": 0.0}}
        self.send = functools.partial(self.server.handle_reply, self.protocol)

    def autobahns(self, text: str) -> bytes:
        """What autobahn itself writes for `text` (as daphne's serverSend asks it)."""
        self.transport.clear()
        self.protocol.sendMessage(text.encode("utf8"), False)
        written = self.transport.value()
        self.transport.clear()
        return written


def framed(*texts: str) -> tuple[bytes, int]:
    """What the fan-out hands a writer: the texts' frames joined, and the longest's length."""
    frames = [text_frame(text) for text in texts]
    return b"".join(frames), max(map(len, frames))


class RecordingReactor:
    """What a connection asks of the reactor, recorded; it never runs (a test calls the
    connection's doWrite itself)."""

    def __init__(self) -> None:
        self.writers: set[Any] = set()
        self.readers: set[Any] = set()

    def addWriter(self, writer: Any) -> None:
        self.writers.add(writer)

    def removeWriter(self, writer: Any) -> None:
        self.writers.discard(writer)

    def addReader(self, reader: Any) -> None:
        self.readers.add(reader)

    def removeReader(self, reader: Any) -> None:
        self.readers.discard(reader)


class PairConnection(tcp.Connection):
    """Twisted's TCP connection, with the addresses a server's connection has."""

    def getPeer(self) -> address.IPv4Address:
        return address.IPv4Address("TCP", "127.0.0.1", 50000)

    def getHost(self) -> address.IPv4Address:
        return address.IPv4Address("TCP", "127.0.0.1", 8000)


@contextlib.contextmanager
def tcp_pair(
    *, buffer_bytes: int | None = None, protocol: Protocol | None = None
) -> Iterator[tuple[tcp.Connection, socket.socket]]:
    """A Twisted TCP connection over loopback, and the socket at its other end (which
    reads only when a test says so); `buffer_bytes`: a small kernel buffer, so that Twisted
    soon holds what the kernel will not take; `protocol`: connected to it."""
    with socket.create_server(("127.0.0.1", 0)) as listening:
        theirs = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if buffer_bytes is not None:  # before connecting, so the window is small too
            theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer_bytes)
        theirs.connect(listening.getsockname())
        ours, _ = listening.accept()
    if buffer_bytes is not None:
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, buffer_bytes)
    ours.setblocking(False)
    connection = PairConnection(ours, protocol or Protocol(), reactor=RecordingReactor())
    connection.connected = 1
    if protocol is not None:
        protocol.makeConnection(connection)
    theirs.settimeout(1)
    try:
        yield connection, theirs
    finally:
        ours.close()
        theirs.close()


def read_available(peer: socket.socket) -> bytes:
    """What the kernel holds for `peer` now, read without waiting."""
    peer.setblocking(False)
    chunks = []
    with contextlib.suppress(BlockingIOError):
        while chunk := peer.recv(1 << 20):
            chunks.append(chunk)
    return b"".join(chunks)
