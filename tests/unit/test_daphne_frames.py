"""Broadcast frames built once and written to daphne's transports
(chatsite/patches/daphne_frames.py): the bytes are autobahn's own, and every connection that
is not in the plain state is left to ASGI's send."""

import asyncio
import collections
import functools
import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from daphne.ws_protocol import WebSocketProtocol
from twisted.internet import error, main, tcp
from twisted.internet.testing import StringTransport
from twisted.python import failure

from chat.realtime.consumers import ChatConsumer
from chatsite.patches import daphne_limits
from chatsite.patches.daphne_frames import frame_writer, text_frame
from tests.support.daphne_sockets import Opened, framed, read_available, tcp_pair

# Each length class of RFC 6455's header (7-bit, 16-bit, 64-bit) at its edges, counted in
# bytes, not characters: multi-byte characters straddle the edges.
TEXTS = {
    "empty": "",
    "one": "a",
    "125 bytes": "a" * 125,
    "126 bytes": "a" * 126,
    "126 bytes of 2-byte characters": "é" * 63,
    "125 bytes ending in a 3-byte character": "a" * 122 + "€",
    "65,535 bytes": "a" * 65535,
    "65,536 bytes": "a" * 65536,
    "65,536 bytes of 4-byte characters": "😀" * 16384,
    "a JSON frame, every script": '{"type":"message","body":"שלום мир 你好 \\u0000 \u200f😀"}',
}


@pytest.mark.parametrize("text", TEXTS.values(), ids=TEXTS.keys())
def test_a_frame_is_the_bytes_autobahn_writes_for_the_same_text(text):
    assert text_frame(text) == Opened().autobahns(text)


def test_the_writer_writes_the_frame_to_daphnes_transport():
    opened = Opened()
    write = frame_writer(opened.send)
    assert write is not None

    assert write(*framed('{"type":"message"}')) is True
    assert opened.transport.value() == opened.autobahns('{"type":"message"}')


def test_frames_joined_are_written_at_once_as_autobahn_would_write_them_one_by_one():
    opened = Opened()
    write = frame_writer(opened.send)
    texts = ["a" * 10, "é" * 100, "b" * 70000]  # a header of each length class
    expected = b"".join(Opened().autobahns(text) for text in texts)
    assert write is not None

    assert write(*framed(*texts)) is True
    assert opened.transport.value() == expected


class Unrelated:
    async def handle_reply(self, protocol: Any, message: Any) -> None: ...


def test_only_daphnes_send_for_a_websocket_has_a_writer():
    opened = Opened()

    async def uvicorn_send(message: Any) -> None: ...

    assert frame_writer(uvicorn_send) is None
    assert frame_writer(functools.partial(Unrelated().handle_reply, opened.protocol)) is None
    assert frame_writer(functools.partial(opened.server.handle_reply, object())) is None
    assert frame_writer(opened.send) is not None


def _gone(o: Opened) -> None:
    """daphne's application_checker reaping it: marked disconnected first, then removed."""
    o.server.protocol_disconnected(o.protocol)
    del o.server.connections[o.protocol]


# Every state in which autobahn would not write the plain frame, or daphne would not send.
UNUSUAL = {
    "daphne saw it disconnect": lambda o: o.server.connections[o.protocol].update(disconnected=1.0),
    "daphne no longer has it": _gone,
    "closing": lambda o: setattr(o.protocol, "state", o.protocol.STATE_CLOSING),
    "closed": lambda o: setattr(o.protocol, "state", o.protocol.STATE_CLOSED),
    "compression negotiated": lambda o: setattr(o.protocol, "_perMessageCompress", object()),
    "autobahn has sends queued": lambda o: o.protocol.send_queue.append((b"x", True)),
}
# …and the options autobahn copies from its factory as the connection is made, before daphne
# creates the application: such a connection gets no writer at all.
OPTIONS = {
    "timings tracked": lambda o: setattr(o.protocol, "trackedTimings", object()),
    "octets logged": lambda o: setattr(o.protocol, "logOctets", True),
    "server frames masked": lambda o: setattr(o.protocol, "maskServerFrames", True),
}
# …and the sizes past which autobahn fragments a message, or refuses it.
SIZES = {
    "frames fragmented": "autoFragmentSize",
    "over the payload limit": "maxMessagePayloadSize",
}


@pytest.mark.parametrize("make_unusual", UNUSUAL.values(), ids=UNUSUAL.keys())
def test_a_connection_not_in_the_plain_state_is_left_to_asgis_send(make_unusual):
    opened = Opened()
    write = frame_writer(opened.send)
    make_unusual(opened)

    assert write(*framed("a broadcast")) is False
    assert opened.transport.value() == b""


def test_a_connection_daphne_does_not_have_gets_no_writer():
    opened = Opened()
    del opened.server.connections[opened.protocol]

    assert frame_writer(opened.send) is None


@pytest.mark.parametrize("set_option", OPTIONS.values(), ids=OPTIONS.keys())
def test_a_connection_whose_options_change_its_frames_gets_no_writer(set_option):
    opened = Opened()
    set_option(opened)

    assert frame_writer(opened.send) is None


@pytest.mark.parametrize("option", SIZES.values(), ids=SIZES.keys())
def test_a_frame_over_autobahns_sizes_is_left_to_asgis_send(option):
    opened = Opened()
    setattr(opened.protocol, option, 20)
    write = frame_writer(opened.send)

    assert write(*framed("a" * 18)) is True  # 20 bytes with its header
    assert write(*framed("a" * 19)) is False
    assert opened.transport.value() == text_frame("a" * 18)
    # Joined, each frame is held to the limit, not their sum.
    assert write(*framed("a" * 18, "b" * 18)) is True
    assert write(*framed("a" * 18, "b" * 19)) is False
    assert opened.transport.value() == text_frame("a" * 18) * 2 + text_frame("b" * 18)


@pytest.fixture
def tcp_connection() -> Iterator[tcp.Connection]:
    """A Twisted TCP connection over loopback: daphne_limits measures what it holds."""
    with tcp_pair() as (connection, _):
        yield connection


def test_a_connection_over_the_unsent_cap_is_dropped_not_written(monkeypatch, tcp_connection):
    monkeypatch.setattr(daphne_limits.LIMITS, "max_buffer_bytes", 1000)
    opened = Opened(transport=StringTransport())
    opened.protocol.transport = tcp_connection
    tcp_connection.dataBuffer, tcp_connection.offset = b"x" * 1001, 0  # unread by the client
    drops: list[bool] = []
    opened.protocol.dropConnection = lambda abort: drops.append(abort)
    write = frame_writer(opened.send)

    assert write(*framed("a broadcast")) is True  # handled: it goes nowhere
    assert drops == [True]
    assert opened.protocol.dropped_unread is True
    assert tcp_connection.dataBuffer == b"x" * 1001  # nothing more queued behind
    assert write(*framed("the next")) is True
    assert drops == [True]


@pytest.fixture
def over_tcp() -> Iterator[tuple[Opened, tcp.Connection, socket.socket]]:
    """daphne's WebSocket on Twisted's TCP connection over loopback, small kernel buffers."""
    with tcp_pair(buffer_bytes=4096) as (connection, peer):
        opened = Opened()
        opened.protocol.transport = connection
        yield opened, connection, peer


def test_with_nothing_unsent_a_frame_goes_to_the_socket_at_once(over_tcp):
    opened, connection, peer = over_tcp
    write = frame_writer(opened.send)

    assert write(*framed("now")) is True

    assert read_available(peer) == text_frame("now")
    assert connection.reactor.writers == set()  # nothing queued, no writability watch


def test_a_frame_never_overtakes_what_twisted_holds_unsent(over_tcp):
    opened, connection, peer = over_tcp
    connection.dataBuffer, connection.offset = b"earlier", 0
    write = frame_writer(opened.send)

    assert write(*framed("later")) is True

    assert read_available(peer) == b""
    while connection.dataBuffer[connection.offset :] or connection._tempDataLen:
        connection.doWrite()
    assert read_available(peer) == b"earlier" + text_frame("later")


def test_what_the_kernel_does_not_take_queues_in_order(over_tcp):
    opened, connection, peer = over_tcp
    write = frame_writer(opened.send)
    big, small = "b" * 200_000, "s"

    assert write(*framed(big)) is True  # the kernel takes a part; Twisted keeps the rest
    assert write(*framed(small)) is True  # behind it, not into the socket

    assert connection.reactor.writers == {connection}
    got = [read_available(peer)]
    while connection.dataBuffer[connection.offset :] or connection._tempDataLen:
        connection.doWrite()
        got.append(read_available(peer))
    assert b"".join(got) == text_frame(big) + text_frame(small)


def test_a_dropped_connection_is_written_nothing(over_tcp):
    opened, connection, peer = over_tcp
    write = frame_writer(opened.send)
    connection._aborting = True  # daphne_limits dropped it: the abort is under way
    opened.protocol.dropped_unread = True

    assert write(*framed("after the drop")) is True

    assert read_available(peer) == b""
    assert connection._tempDataLen == 0


def test_a_connection_lost_before_its_consumer_connected_gets_a_writer_that_writes_nothing(
    over_tcp,
):
    """A tab that closed before its consumer's connect ran: Twisted had already deleted the
    connection's socket, and the consumer crashed asking for it (a users run's log:
    "'Server' object has no attribute 'socket'")."""
    opened, connection, peer = over_tcp
    connection.connectionLost(failure.Failure(error.ConnectionDone()))  # deletes its socket

    write = frame_writer(opened.send)
    opened.protocol.state = WebSocketProtocol.STATE_CLOSED  # autobahn's, once told
    assert write is not None
    assert write(*framed("too late")) is False  # left to ASGI's send, which drops it

    assert read_available(peer) == b""


def test_a_broken_connection_is_left_to_twisted_to_find(over_tcp):
    opened, connection, peer = over_tcp
    write = frame_writer(opened.send)
    peer.close()  # the client is gone: the send fails (EPIPE, or ECONNRESET)
    write(*framed("first"))  # may still reach the kernel before it knows

    assert write(*framed("to nobody")) is True  # no exception escapes to the fan-out
    assert write(*framed("and again")) is True

    assert connection.reactor.writers == {connection}  # Twisted's path has it queued...
    lost = connection.doWrite()  # ...and says the connection is lost when it writes
    assert lost is main.CONNECTION_LOST or isinstance(lost, Exception)


def test_the_consumer_writes_broadcasts_as_frames_and_falls_back_to_asgi(monkeypatch):
    opened = Opened()
    consumer = ChatConsumer()
    consumer.backlog = None
    consumer.write_frame = frame_writer(opened.send)
    sent: list[dict[str, Any]] = []

    async def raw_send(message: dict[str, Any]) -> None:
        sent.append(message)

    consumer.raw_send = raw_send

    consumer.deliver(['{"n":1}'], *framed('{"n":1}'))
    consumer.deliver(['{"n":2}', '{"n":3}'], *framed('{"n":2}', '{"n":3}'))
    assert opened.transport.value() == b"".join(map(text_frame, ['{"n":1}', '{"n":2}', '{"n":3}']))
    assert sent == []

    opened.protocol._perMessageCompress = object()
    consumer.deliver(['{"n":4}', '{"n":5}'], *framed('{"n":4}', '{"n":5}'))
    assert sent == [  # one by one, in order
        {"type": "websocket.send", "text": '{"n":4}'},
        {"type": "websocket.send", "text": '{"n":5}'},
    ]


async def test_a_socket_that_closes_while_its_backlog_drains_ends_the_drain_quietly(caplog):
    """uvicorn's and the fallback's sends can wait; the client may go meanwhile, and the
    send then raises an OSError (ASGI). The drain stops without an error or a task
    exception nobody retrieves; the socket's disconnect does the cleanup."""
    consumer = ChatConsumer()
    consumer.socket_id, consumer.backlog, consumer.write_frame = "s", None, None
    gone = asyncio.Event()
    sent: list[str] = []

    async def raw_send(message: dict[str, Any]) -> None:
        sent.append(message["text"])
        await gone.wait()
        raise ConnectionResetError("the client went")

    consumer.raw_send = raw_send
    consumer.deliver(["1"], *framed("1"))  # waits: the rest becomes the drain
    consumer.deliver(["2", "3"], *framed("2", "3"))  # queued behind it
    assert consumer.backlog == collections.deque(["2", "3"])

    gone.set()
    await asyncio.wait_for(consumer.draining, 1)  # ends without raising

    assert sent == ["1"]
    assert consumer.backlog is None
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


def test_a_socket_whose_disconnect_arrived_gets_no_more_broadcasts():
    opened = Opened()
    consumer = ChatConsumer()
    consumer.backlog, consumer.write_frame = None, frame_writer(opened.send)
    sent: list[dict[str, Any]] = []

    async def raw_send(message: dict[str, Any]) -> None:
        sent.append(message)

    consumer.raw_send = raw_send
    consumer.ended = True  # websocket.disconnect handled; its cleanup is still running

    consumer.deliver(['{"n":1}'], *framed('{"n":1}'))
    opened.protocol._perMessageCompress = object()  # the ASGI path too
    consumer.deliver(['{"n":2}'], *framed('{"n":2}'))

    assert opened.transport.value() == b""
    assert sent == []


# The states between a close beginning (the client's close frame arrived, or the server's
# went out) and daphne hearing the TCP connection is gone: daphne still forwards sends.
CLOSING = {"closing": WebSocketProtocol.STATE_CLOSING, "closed": WebSocketProtocol.STATE_CLOSED}


@pytest.mark.parametrize("state", CLOSING.values(), ids=CLOSING.keys())
async def test_every_send_to_a_connection_whose_close_began_goes_nowhere_quietly(state, caplog):
    """Before: autobahn raised Disconnected for the frame (django/channels#1820), which a
    users run saw as 'Delivery to a socket failed' when a tab closed during a broadcast.
    Every way a frame reaches daphne: a reply, a broadcast's ASGI path, a broadcast's
    frame writer."""
    caplog.set_level(logging.WARNING)
    opened = Opened()
    consumer = ChatConsumer()
    consumer.backlog, consumer.write_frame = None, frame_writer(opened.send)
    consumer.raw_send = opened.send
    opened.protocol.state = state

    await opened.send({"type": "websocket.send", "text": '{"type":"pong"}'})
    consumer.deliver(['{"n":1}'], *framed('{"n":1}'))
    opened.protocol._perMessageCompress = object()  # not plain: the ASGI path
    consumer.deliver(['{"n":2}'], *framed('{"n":2}'))

    assert opened.transport.value() == b""
    assert consumer.backlog is None
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


def test_a_frame_sent_while_the_connection_opens_accepts_it_first_as_daphnes_did():
    opened = Opened()
    opened.protocol.state = WebSocketProtocol.STATE_CONNECTING
    opened.protocol.serverAccept = lambda: setattr(  # daphne's accept, without a handshake
        opened.protocol, "state", WebSocketProtocol.STATE_OPEN
    )

    opened.protocol.serverSend("first", False)

    assert opened.transport.value() == text_frame("first")
