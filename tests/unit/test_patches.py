"""Patches of third-party internals (chatsite/patches): each check passes on the pinned
versions, fails naming the internal when it is gone, and each patch is in effect."""

import asyncio
import gc
import inspect
import pprint
import re
import socket
import types
import weakref
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import SyncToAsync, sync_to_async
from autobahn import util as autobahn_util
from autobahn.twisted import websocket as autobahn_twisted
from autobahn.twisted.websocket import WebSocketServerFactory
from autobahn.websocket import protocol as autobahn_protocol
from autobahn.websocket.protocol import WebSocketProtocol as AutobahnProtocol
from channels import consumer
from channels.auth import AuthMiddlewareStack
from channels.consumer import AsyncConsumer, get_handler_name
from channels.generic import websocket as generic_websocket
from channels.layers import InMemoryChannelLayer
from channels.sessions import InstanceSessionWrapper
from daphne import server as daphne_server
from daphne.http_protocol import HTTPFactory, WebRequest
from daphne.server import Server
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
from twisted.internet import abstract, tcp
from twisted.internet.protocol import Protocol
from twisted.internet.testing import StringTransport
from twisted.web.http import HTTPChannel

from chat.realtime import transport
from chat.realtime.consumers import ChatConsumer
from chat.realtime.layers import InProcessChannelLayer
from chat.realtime.routing import http_urlpatterns
from chat.realtime.runtime import runtime_for_loop
from chatsite import asgi, patches
from chatsite.patches import (
    InternalsChanged,
    asgiref_loop,
    autobahn_lazy_log,
    daphne_limits,
    daphne_upgrade,
    twisted_writes,
)

PATCHES = {patch.name: patch for patch in patches.PATCHES}
FD, WSP = abstract.FileDescriptor, WebSocketProtocol


def test_every_patch_is_listed_once_with_a_check_that_exists():
    assert len(PATCHES) == len(patches.PATCHES) == 9


@pytest.mark.parametrize("name", sorted(PATCHES))
def test_each_check_passes_on_the_pinned_versions(name):
    patches.run_check(PATCHES[name])


async def _dispatch_that_also_does_more(self, message):
    handler = getattr(self, get_handler_name(message), None)
    if handler:
        await consumer.aclose_old_connections()
        await handler(message)
        self.scope.clear()  # what a new channels might add
    else:
        raise ValueError(message)


async def _call_that_also_does_more(self, scope, receive, send):
    self.scope = scope
    self.base_send = send
    try:
        await consumer.await_many_dispatch([receive], self.dispatch)
    except consumer.StopConsumer:
        pass
    finally:
        self.scope.clear()  # what a new channels might add


def _init_without_temp_buffer(self, reactor=None):
    self.reactor = reactor
    self._tempDataBuffer = []


def _reply_that_writes_differently(self, message):
    self.write(message.get("body", b""))


def _create_with_own_send(self, protocol, scope):
    return self.application(scope=scope, send=lambda message: self.reply(protocol, message))


def _frame_that_masks_anyway(self, opcode, payload=b"", fin=True):
    self.sendData(bytes([0x80 | opcode, 0x80 | len(payload)]) + payload)


def _checker_that_reaps_what_ended(self):
    for protocol, details in list(self.connections.items()):
        application_instance = details.get("application_instance", None)
        if application_instance and application_instance.done():
            del self.connections[protocol]
            continue
        disconnected = details.get("disconnected", None)
        if not application_instance and disconnected:
            del self.connections[protocol]


def _disconnected_replacing_the_entry(self, protocol):
    self.connections[protocol] = {"disconnected": 0.0}


def _connection_made_logging_more(self):
    self.log.debug("{attrs}", attrs=pformat(self.CONFIG_ATTRS))  # noqa: F821 - never run


def _channel_made_registering_nothing(self):
    self.setTimeout(self.timeOut)


def _init_keeping_no_requests(self):
    self.queued = []


def _process_that_upgrades_differently(self):
    self.channel._protocolUpgradeForWebsockets(None)


def _do_write_that_never_asks_for_more(self):
    """A doWrite that writes and no longer resumes a producer when it has written all."""
    self.offset = len(self.dataBuffer)


def _register_producer_keeping_it(self, producer, streaming):
    """A request that keeps its producer to itself instead of handing it to its channel."""
    self.producer = producer


def _send_anyway(self, payload, isBinary=False, *args, **kwargs):
    """A sendMessage that no longer refuses a connection whose close has begun."""
    self.sendData(payload)


_getsource = inspect.getsource


def _source_that_also_highlights(elsewhere: str) -> Callable[[Any], str]:
    """autobahn's source, as if it used hltype's text for more than a log message: in an
    expression, an assignment written like a field, or a field of a call that is not a log's."""

    def getsource(obj: Any) -> str:
        source = _getsource(obj)
        return f"{source}\n{elsewhere}\n" if obj is autobahn_protocol else source

    return getsource


BREAKAGES = [
    # (patch, what to break, attribute, a replacement or None to delete, expected in the error)
    ("twisted_writes", FD, "write", None, "FileDescriptor.write"),
    ("twisted_writes", FD, "writeSequence", None, "FileDescriptor.writeSequence"),
    ("twisted_writes", FD, "_writeDisconnected", None, "_writeDisconnected"),
    ("twisted_writes", FD, "__init__", _init_without_temp_buffer, "_tempDataLen"),
    ("twisted_writes", tcp._TLSConnectionMixin, "TLS", None, "tcp.Connection.TLS"),
    ("daphne_limits", WSP, "serverSend", None, "WebSocketProtocol.serverSend"),
    ("daphne_limits", WSP, "applicationCreateWorked", None, "applicationCreateWorked"),
    ("daphne_limits", WSP, "onMessage", None, "WebSocketProtocol.onMessage"),
    ("daphne_limits", AutobahnProtocol, "STATE_CONNECTING", None, "STATE_CONNECTING"),
    ("daphne_limits", AutobahnProtocol, "STATE_OPEN", None, "STATE_OPEN"),
    ("daphne_limits", AutobahnProtocol, "sendMessage", _send_anyway, "sendMessage"),
    ("daphne_limits", Server, "create_application", _create_with_own_send, "create_application"),
    ("daphne_limits", daphne_server, "asyncio", types, "daphne.server.asyncio"),
    ("daphne_limits", WebRequest, "handle_reply", None, "WebRequest.handle_reply"),
    ("daphne_limits", WebRequest, "handle_reply", _reply_that_writes_differently, "handle_reply"),
    ("daphne_limits", tcp._AbortingMixin, "abortConnection", None, "abortConnection"),
    ("daphne_limits", FD, "doWrite", _do_write_that_never_asks_for_more, "doWrite"),
    ("daphne_limits", WebRequest, "registerProducer", _register_producer_keeping_it, "Request"),
    ("daphne_frames", Server, "create_application", _create_with_own_send, "create_application"),
    ("daphne_frames", AutobahnProtocol, "sendData", None, "sendData"),
    ("twisted_writes", tcp._AbortingMixin, "_aborting", None, "tcp.Connection._aborting"),
    ("daphne_frames", tcp.Connection, "__init__", _init_without_temp_buffer, "Connection.__init__"),
    ("daphne_frames", Server, "application_checker", _checker_that_reaps_what_ended, "checker"),
    ("daphne_frames", Server, "protocol_connected", None, "protocol_connected"),
    (
        "daphne_frames",
        Server,
        "protocol_disconnected",
        _disconnected_replacing_the_entry,
        "protocol_disconnected",
    ),
    ("daphne_frames", AutobahnProtocol, "sendFrame", _frame_that_masks_anyway, "maskServerFrames"),
    ("autobahn_lazy_log", autobahn_protocol, "pformat", repr, "protocol.pformat"),
    ("autobahn_lazy_log", autobahn_protocol, "hltype", repr, "protocol.hltype"),
    ("autobahn_lazy_log", autobahn_twisted, "hlval", None, "twisted.websocket.hlval"),
    *(
        (
            "autobahn_lazy_log",
            autobahn_lazy_log.inspect,
            "getsource",
            _source_that_also_highlights(elsewhere),
            "calling hltype only for a log message's fields",
        )
        for elsewhere in (
            "name = 'x' + hltype(name)",
            "name=hltype(name)",
            "print(name=hltype(name))",
            "self.log.debug('{x}', x=str(hltype(name)))",
        )
    ),
    (
        "autobahn_lazy_log",
        AutobahnProtocol,
        "_connectionMade",
        _connection_made_logging_more,
        "_connectionMade",
    ),
    (
        "daphne_upgrade",
        HTTPChannel,
        "connectionMade",
        _channel_made_registering_nothing,
        "HTTPChannel.connectionMade",
    ),
    ("daphne_upgrade", HTTPChannel, "__init__", object.__init__, "HTTPChannel.__init__"),
    ("daphne_upgrade", HTTPChannel, "__init__", _init_keeping_no_requests, "HTTPChannel.__init__"),
    (
        "daphne_upgrade",
        abstract._ConsumerMixin,
        "unregisterProducer",
        None,
        "FileDescriptor.unregisterProducer",
    ),
    ("daphne_upgrade", WebRequest, "process", _process_that_upgrades_differently, "process"),
    ("asgiref_loop", SyncToAsync, "threadlocal", None, "SyncToAsync.threadlocal"),
    ("channels_consumer_dispatch", consumer, "get_handler_name", None, "get_handler_name"),
    (
        "channels_consumer_dispatch",
        AsyncConsumer,
        "dispatch",
        _dispatch_that_also_does_more,
        "+clear",
    ),
    (
        "channels_consumer_dispatch",
        AsyncConsumer,
        "__call__",
        _call_that_also_does_more,
        "AsyncConsumer.__call__",
    ),
    ("channels_layer_sweep", InMemoryChannelLayer, "_clean_expired", None, "_clean_expired"),
    (
        "channels_session_send",
        InstanceSessionWrapper,
        "save_message_types",
        ["http.response.start", "websocket.send"],
        "save_message_types",
    ),
]


@pytest.mark.parametrize(
    ("name", "owner", "attribute", "replacement", "named"),
    BREAKAGES,
    ids=[f"{name}-{attribute}" for name, _, attribute, _, _ in BREAKAGES],
)
def test_each_check_fails_naming_the_internal_that_is_gone(
    monkeypatch, name, owner, attribute, replacement, named
):
    if replacement is None:
        monkeypatch.delattr(owner, attribute)
    else:
        monkeypatch.setattr(owner, attribute, replacement)

    with pytest.raises(InternalsChanged, match=rf"patch '{name}'.*{re.escape(named)}") as error:
        patches.run_check(PATCHES[name])
    assert "requirements.txt" in str(error.value)


def test_every_patch_is_covered_by_a_breakage():
    assert {breakage[0] for breakage in BREAKAGES} == set(PATCHES)


def test_startup_fails_before_installing_anything_when_an_internal_is_gone(monkeypatch, settings):
    monkeypatch.setattr(abstract.FileDescriptor, "write", twisted_writes._queued_write)
    monkeypatch.delattr(SyncToAsync, "threadlocal")

    with pytest.raises(InternalsChanged, match="asgiref_loop"):
        patches.install_all(settings)
    assert abstract.FileDescriptor.write is twisted_writes._queued_write


# In effect after importing chatsite.asgi -------------------------------------------------

assert asgi.application  # importing it installed the patches, as the server does


class _Reactor:
    """Records what a connection asks of the reactor; it never runs."""

    def __init__(self) -> None:
        self.writers: list[Any] = []

    def addWriter(self, writer: Any) -> None:
        self.writers.append(writer)


@pytest.fixture
def connection():
    """A Twisted TCP connection over a socket pair, with a reactor that only records."""
    ours, theirs = socket.socketpair()
    connection = tcp.Connection(ours, Protocol(), reactor=_Reactor())
    connection.connected = 1
    theirs.settimeout(1)  # a write that did not happen fails the test instead of hanging it
    yield connection, theirs
    ours.close()
    theirs.close()


def test_twisted_writes_go_to_the_socket_at_once(connection):
    connection, peer = connection
    assert abstract.FileDescriptor.write is twisted_writes._write_now

    connection.write(b"hello")

    assert peer.recv(100) == b"hello"
    assert connection.reactor.writers == []  # no writability watch, no queue


def test_twisted_write_sequences_go_to_the_socket_at_once_as_one_write(connection):
    # What HTTP's chunked responses use: the fallback's event stream (tests/live).
    connection, peer = connection
    assert abstract.FileDescriptor.writeSequence is twisted_writes._write_sequence_now

    connection.writeSequence([b"5\r\n", b"hello", b"\r\n"])

    assert peer.recv(100) == b"5\r\nhello\r\n"
    assert connection.reactor.writers == []
    with pytest.raises(TypeError):
        connection.writeSequence(["text"])  # bytes only, as Twisted's own


def test_twisted_writes_behind_queued_data_take_twisteds_path(connection):
    connection, peer = connection
    connection.dataBuffer, connection.offset = b"earlier", 0

    connection.write(b"later")

    assert connection.reactor.writers == [connection]
    assert connection._tempDataBuffer == [b"later"]
    peer.setblocking(False)
    with pytest.raises(BlockingIOError):
        peer.recv(100)  # nothing overtook the queued bytes


def test_a_frame_read_or_written_highlights_its_log_fields_only_if_the_log_is_written(
    monkeypatch,
):
    highlighted = []
    monkeypatch.setattr(autobahn_util, "hl", lambda text, **style: highlighted.append(text) or text)
    logged = []
    connection = autobahn_twisted.WebSocketServerProtocol()
    log = type("Log", (), {"debug": lambda *args, **fields: logged.append(fields)})()
    monkeypatch.setattr(connection, "log", log, raising=False)
    monkeypatch.setattr(connection, "_dataReceived", lambda data: None)
    connection.transport = StringTransport()
    connection.peer = "tcp:127.0.0.1:1"
    connection.send_queue, connection.logOctets = [], False
    connection.state = connection.STATE_CLOSED  # sendData then writes and counts nothing more

    connection.dataReceived(b"abc")
    connection.sendData(b"frame")

    assert connection.transport.value() == b"frame"
    assert highlighted == []  # not coloured eagerly...
    received, sent = logged
    assert highlighted == []
    # ...but the same text when the message is written
    assert f"{received['func']}" == autobahn_util.hltype(connection.dataReceived)
    assert f"{sent['data_len']}" == autobahn_util.hlval(5)
    assert str(received["peer"]) == autobahn_util.hlval("tcp:127.0.0.1:1")
    assert highlighted  # made through autobahn's own hl


def test_a_connection_formats_its_options_only_if_the_debug_log_is_written(monkeypatch):
    assert AutobahnProtocol._connectionMade is autobahn_lazy_log._connection_made_lazily
    formatted = []
    monkeypatch.setattr(autobahn_protocol, "pformat", formatted.append)
    logged = []
    connection = WebSocketServerFactory().buildProtocol(None)
    log = type("Log", (), {"debug": lambda *args, **fields: logged.append(fields)})()
    monkeypatch.setattr(connection, "log", log, raising=False)

    connection._connectionMade()

    assert formatted == []  # not formatted eagerly...
    [options] = [fields["attrs"] for fields in logged if "attrs" in fields]
    text = f"{options}"  # ...but the same text when the message is written
    assert "maxMessagePayloadSize" in text
    assert text == pprint.pformat(options.value)
    assert autobahn_protocol.pformat == formatted.append  # the module's own name put back


UPGRADE = (
    b"GET /ws/chat/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)


async def test_an_upgraded_socket_lets_go_of_its_http_request_and_channel_at_once():
    assert WebSocketProtocol.connectionMade is daphne_upgrade._connection_made_releasing_http

    async def application(scope, receive, send):
        await receive()

    # daphne's server as run() sets it up, without listening.
    server = Server(application=application, endpoints=["tcp:port=0:interface=127.0.0.1"])
    server.connections = {}
    server.http_factory = HTTPFactory(server)
    server.ws_factory = WebSocketFactory(server, server="daphne")
    server.ws_factory.setProtocolOptions(allowNullOrigin=True, openHandshakeTimeout=0)
    transport = StringTransport()
    http = server.http_factory.buildProtocol(("127.0.0.1", 50000))
    http.makeConnection(transport)
    channel = transport.producer  # HTTP/1.1's channel, registered as every HTTP connection's
    assert isinstance(channel, HTTPChannel)
    gc.disable()  # freed by reference counting, not by a collection of their cycle
    try:
        http.dataReceived(UPGRADE)
        [request] = [entry for entry in server.connections if isinstance(entry, WebRequest)]
        assert isinstance(transport.protocol, WebSocketProtocol)  # upgraded
        assert transport.producer is None
        gone = weakref.ref(http), weakref.ref(channel), weakref.ref(request)
        del server.connections[request]  # as daphne's checker does for an ended request
        del http, channel, request
        assert [ref() for ref in gone] == [None, None, None]
    finally:
        gc.enable()
    protocol = transport.protocol
    assert protocol.transport is transport
    assert protocol in server.connections
    await asyncio.sleep(0)  # the application got its websocket.connect
    server.connections[protocol]["application_instance"].cancel()


def test_only_the_transport_daphne_handed_over_is_released():
    other = WebSocketProtocol()
    transport = StringTransport()
    channel = HTTPChannel()
    channel.makeConnection(transport)
    channel.requests.append("a request")
    other.transport = transport  # the transport still belongs to the HTTP channel

    daphne_upgrade.release_http_channel(other)

    assert transport.producer is channel
    assert channel.requests == ["a request"]


def test_daphne_limits_are_installed_with_the_settings(settings):
    # Their behaviour against a real daphne: tests/live/test_live_flood.py.
    assert WebSocketProtocol.serverSend is daphne_limits._send_within_buffer
    assert WebSocketProtocol.applicationCreateWorked is daphne_limits._application_create_worked
    assert WebSocketProtocol.processData is daphne_limits._process_data_unless_paused
    assert WebRequest.handle_reply is daphne_limits._reply_within_buffer
    assert daphne_limits.LIMITS.max_buffer_bytes == settings.CHAT_SOCKET_MAX_BUFFER_BYTES
    assert daphne_limits.LIMITS.max_queued_frames == settings.CHAT_SOCKET_MAX_QUEUED_FRAMES


async def test_a_worker_thread_finds_the_loop_it_serves():
    # What chat/realtime/publisher.py queues its broadcasts on (tests/asgi/test_outages.py
    # publishes).
    assert await sync_to_async(asgiref_loop.event_loop_of_this_thread)() is (
        asyncio.get_running_loop()
    )


def test_outside_any_worker_thread_there_is_no_loop_to_serve():
    assert asgiref_loop.event_loop_of_this_thread() is None


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("transport", ["websocket", "http", "poll"])
async def test_the_consumer_neither_dispatches_nor_ends_with_a_hop_to_close_connections(
    monkeypatch, connect, transport
):
    """channels' consumers hop to the database thread to close stale connections before
    each message (django/channels#2090) and once the socket is gone; the chat consumer's
    database calls close them themselves, and 5,000 sockets closing at once queued 5,000
    such hops (docs/performance.md, Analysis item 28). Every way a socket ends, over
    WebSockets or the HTTP fallback's stream and long-polling."""
    hops = []

    async def counted() -> None:
        hops.append(1)

    monkeypatch.setattr(consumer, "aclose_old_connections", counted)
    monkeypatch.setattr(generic_websocket, "aclose_old_connections", counted)
    assert ChatConsumer.dispatch is not AsyncConsumer.dispatch
    socket = await connect()

    await socket.request({"type": "ping"})
    assert hops == []
    await socket.close()
    assert runtime_for_loop().fanout.members == {}  # its cleanup ran to the end
    assert hops == []


def test_the_layer_override_is_the_default_layer(settings):
    # Its sweep, once a second at most: tests/unit/test_layers.py.
    assert InProcessChannelLayer._clean_expired is not InMemoryChannelLayer._clean_expired
    assert (
        settings.CHANNEL_LAYERS["default"]["BACKEND"]
        == "chat.realtime.layers.InProcessChannelLayer"
    )


async def test_the_fallback_stream_gets_the_servers_send_past_the_session_wrapper():
    [stream] = [
        route.callback for route in http_urlpatterns if str(route.pattern) == "fallback/chat/"
    ]
    assert isinstance(stream, transport.RawSendMiddleware)
    seen = {}

    async def inner(scope, receive, send):
        seen.update(scope=scope, send=send)

    async def server_send(message):
        pass

    stack = transport.RawSendMiddleware(AuthMiddlewareStack(inner))
    await stack({"type": "websocket", "path": "/", "headers": []}, None, server_send)

    assert seen["scope"][transport.SCOPE_KEY] is server_send
    assert seen["send"] is not server_send  # what the session wrapper gave everything else
