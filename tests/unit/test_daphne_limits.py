"""The application queue daphne makes for each WebSocket (chatsite/patches/daphne_limits.py):
asyncio.Queue's order and waking for its one reader, in less memory. The limits it counts for
are tested against a real daphne in tests/live/test_live_flood.py; the pacing of pages, here
on Twisted's own TCP connection over loopback."""

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from daphne import server as daphne_server
from daphne.http_protocol import HTTPFactory, WebRequest
from daphne.server import Server
from twisted.internet import error, main, tcp
from twisted.logger import globalLogPublisher
from twisted.python import failure

import chatsite.asgi  # noqa: F401 - installs the patches, as the server does
from chatsite.patches import daphne_limits
from chatsite.patches.daphne_frames import frame_writer, text_frame
from chatsite.patches.daphne_limits import ApplicationQueue, unsent_bytes
from tests.support import daphne_sockets
from tests.support.daphne_sockets import framed, read_available, tcp_pair


async def test_messages_come_out_in_the_order_they_went_in():
    queue = ApplicationQueue()
    for n in range(3):
        queue.put_nowait({"n": n})

    assert queue.qsize() == 3
    assert [(await queue.get())["n"] for _ in range(3)] == [0, 1, 2]
    assert queue.empty()


async def test_a_waiting_reader_is_woken_by_the_next_message():
    queue = ApplicationQueue()
    reader = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    assert not reader.done()

    queue.put_nowait({"type": "websocket.connect"})

    assert await asyncio.wait_for(reader, 1) == {"type": "websocket.connect"}


async def test_nothing_waiting_is_an_error_when_not_waiting():
    with pytest.raises(asyncio.QueueEmpty):
        ApplicationQueue().get_nowait()


async def test_an_empty_queue_holds_no_deque():
    queue = ApplicationQueue()
    queue.put_nowait({"n": 1})
    await queue.get()

    assert queue._items is None


async def test_a_cancelled_read_loses_nothing():
    queue = ApplicationQueue()
    reader = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    reader.cancel()
    queue.put_nowait({"n": 1})  # in the same turn: the cancelled reader was woken too
    with pytest.raises(asyncio.CancelledError):
        await reader

    assert await asyncio.wait_for(queue.get(), 1) == {"n": 1}


async def test_a_second_reader_at_once_is_refused():
    queue = ApplicationQueue()
    first = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="one reader"):
        await queue.get()
    first.cancel()


async def test_the_budget_hears_what_comes_and_goes():
    class Budget:
        def __init__(self):
            self.events = []

        def put(self, message):
            self.events.append(("put", message["n"]))

        def got(self, message):
            self.events.append(("got", message["n"]))

    queue = ApplicationQueue()
    queue.budget = budget = Budget()
    queue.put_nowait({"n": 1})
    queue.put_nowait({"n": 2})
    await queue.get()

    assert budget.events == [("put", 1), ("put", 2), ("got", 1)]


@pytest.mark.parametrize(
    ("kind", "queue_type"), [("websocket", ApplicationQueue), ("http", asyncio.Queue)]
)
async def test_daphne_makes_a_websocket_an_application_queue_and_http_asyncios(kind, queue_type):
    assert Server.create_application is daphne_limits._create_application
    given = {}

    async def application(scope, receive, send):
        given["receive"] = receive

    server = Server(application=application, endpoints=["tcp:port=0:interface=127.0.0.1"])
    protocol = object()
    server.connections = {protocol: {}}

    queue = server.create_application(protocol, {"type": kind})
    await server.connections[protocol]["application_instance"]

    assert type(queue) is queue_type
    assert given["receive"] == queue.get
    assert daphne_server.asyncio is asyncio  # daphne's module has asyncio's own again


async def test_daphne_has_asyncio_back_when_making_an_application_fails():
    def refusing(scope, receive, send):
        raise ValueError("no application for this")

    server = Server(application=refusing, endpoints=["tcp:port=0:interface=127.0.0.1"])
    protocol = object()
    server.connections = {protocol: {}}

    with pytest.raises(ValueError, match="no application"):
        server.create_application(protocol, {"type": "websocket"})
    assert daphne_server.asyncio is asyncio


def test_a_budget_refuses_a_queue_it_could_not_count():
    with pytest.raises(TypeError, match="not an ApplicationQueue"):
        daphne_limits.InboundBudget(None, asyncio.Queue())  # type: ignore[arg-type]


# Pages: paced, and allowed for by the cap ------------------------------------------------

PAGE = {"type": "websocket.send", "text": "p" * 50_000}  # far more than the kernel takes here


class Opened(daphne_sockets.Opened):
    def __init__(self) -> None:
        super().__init__()
        self.drops: list[bool] = []  # the connection dropped (abort=True), not written to


@pytest.fixture
def paced_socket(monkeypatch) -> Iterator[tuple[Opened, tcp.Connection, socket.socket]]:
    """daphne's WebSocket on a TCP connection whose kernel buffers hold a few KB, with a cap
    of 1,000 bytes unsent and a low-water mark of 1,000; a waiting page is woken by Twisted
    alone, and a drop is recorded instead of done."""
    monkeypatch.setattr(daphne_limits.LIMITS, "max_buffer_bytes", 1000)
    monkeypatch.setattr(daphne_limits.LIMITS, "page_low_water", 1000)
    monkeypatch.setattr(daphne_limits, "PAGE_RECHECK_SECONDS", 60)  # Twisted's wake-up, only
    with tcp_pair(buffer_bytes=4096) as (connection, peer):
        opened = Opened()
        opened.protocol.transport = connection
        opened.protocol.dropConnection = lambda abort: opened.drops.append(abort)
        yield opened, connection, peer


def write_everything(connection: tcp.Connection, peer: socket.socket) -> bytes:
    """The peer reads while Twisted writes what it holds (its doWrite), until it holds
    nothing: what the peer read."""
    received = [read_available(peer)]
    while unsent_bytes(connection):
        connection.doWrite()
        received.append(read_available(peer))
    return b"".join(received)


async def test_a_page_waits_until_the_socket_holds_no_more_than_the_low_water_mark(paced_socket):
    opened, connection, peer = paced_socket
    connection.dataBuffer, connection.offset = b"x" * 1001, 0  # earlier frames, unsent
    send_page = daphne_limits.paced(opened.send)
    assert send_page is not None

    page = asyncio.create_task(send_page({"type": "websocket.send", "text": "the page"}))
    await asyncio.sleep(0.05)
    assert not page.done()
    assert type(connection.producer) is daphne_limits.PagePending

    received = write_everything(connection, peer)  # Twisted resumes its producer: all written
    await asyncio.wait_for(page, 1)

    assert received == b"x" * 1001
    assert read_available(peer) == text_frame("the page")
    assert connection.producer is None  # nothing of a page is unsent: the cap counts it all


async def test_what_a_socket_holds_up_to_a_page_is_not_counted_against_the_cap(paced_socket):
    opened, connection, _ = paced_socket
    write = frame_writer(opened.send)
    assert write is not None

    await daphne_limits.paced(opened.send)(PAGE)
    held = unsent_bytes(connection)
    assert held > 10_000  # the kernel took a few KB of the page
    assert connection.producer.allowance == held
    assert write(*framed("b" * 900)) is True  # within the cap past the page: queued behind it
    assert opened.drops == []
    assert unsent_bytes(connection) > held

    assert write(*framed("c" * 200)) is True  # this one takes it past the cap...
    assert opened.drops == []
    assert write(*framed("d")) is True  # ...so the next one is dropped with the connection
    assert opened.drops == [True]


async def test_the_cap_counts_everything_again_once_the_page_is_written(paced_socket):
    opened, connection, peer = paced_socket
    await daphne_limits.paced(opened.send)(PAGE)

    received = write_everything(connection, peer)

    assert received.endswith(PAGE["text"].encode())
    assert connection.producer is None
    assert daphne_limits.page_allowance(connection) == 0


@pytest.mark.parametrize("how", ["lost", "dropped by autobahn first"])
async def test_a_page_waiting_on_a_connection_that_ends_returns(paced_socket, monkeypatch, how):
    """Twisted stops the producer when the connection is lost; autobahn unregisters it
    before it drops a connection, so the page looks again every PAGE_RECHECK_SECONDS."""
    if how != "lost":
        monkeypatch.setattr(daphne_limits, "PAGE_RECHECK_SECONDS", 0.05)
    opened, connection, peer = paced_socket
    connection.dataBuffer, connection.offset = b"x" * 5000, 0
    page = asyncio.create_task(daphne_limits.paced(opened.send)(PAGE))
    await asyncio.sleep(0.01)
    assert not page.done()

    if how == "lost":
        connection.connectionLost(failure.Failure(error.ConnectionLost()))
    else:
        connection.unregisterProducer()
        connection.connected = 0
    await asyncio.wait_for(page, 1)

    assert b"p" * 100 not in read_available(peer)  # the page went nowhere


async def test_a_page_pending_does_not_hold_a_closing_connection_open(paced_socket):
    """Twisted asks a pull producer for more instead of closing while one is registered: the
    producer lets go once everything is written, and the close goes ahead."""
    opened, connection, peer = paced_socket
    await daphne_limits.paced(opened.send)(PAGE)
    assert type(connection.producer) is daphne_limits.PagePending

    connection.loseConnection()
    results = []
    for _ in range(1000):
        read_available(peer)
        results.append(connection.doWrite())
        if results[-1] is main.CONNECTION_DONE:
            break

    assert results[-1] is main.CONNECTION_DONE


async def test_a_page_is_not_paced_where_another_producer_has_the_connection(paced_socket):
    opened, connection, _ = paced_socket
    connection.dataBuffer, connection.offset = b"x" * 5000, 0
    other = object()
    connection.producer = other  # what daphne_upgrade frees: the HTTP channel

    await asyncio.wait_for(daphne_limits.paced(opened.send)(PAGE), 1)  # as before: at once

    assert connection.producer is other


async def test_only_daphnes_plain_tcp_connections_are_paced(paced_socket):
    opened, connection, _ = paced_socket

    async def uvicorn_send(message: Any) -> None: ...

    assert daphne_limits.paced(uvicorn_send) is None
    assert daphne_limits.paced(opened.send) is not None
    connection.TLS = True  # TLS inside daphne: the transport is not the one written to
    assert daphne_limits.paced(opened.send) is None


async def test_a_streamed_response_paces_its_pages_and_ends_without_a_producer_left(monkeypatch):
    """The HTTP fallback's stream: a page is allowed for past the cap as on a socket, and
    when the response ends before the page is all written, its producer is let go first
    (Twisted logs a producer still registered at the end as an error)."""
    monkeypatch.setattr(daphne_limits.LIMITS, "max_buffer_bytes", 1000)
    monkeypatch.setattr(daphne_limits.LIMITS, "page_low_water", 1000)
    sends = []

    async def application(scope, receive, send):
        sends.append(send)
        await asyncio.Future()  # until daphne cancels it

    server = Server(application=application, endpoints=["tcp:port=0:interface=127.0.0.1"])
    server.connections = {}
    server.http_factory = HTTPFactory(server)
    errors: list[Any] = []
    observer = lambda event: errors.append(event) if event.get("log_failure") else None  # noqa: E731
    globalLogPublisher.addObserver(observer)
    http = server.http_factory.buildProtocol(("127.0.0.1", 50000))
    with tcp_pair(buffer_bytes=4096, protocol=http) as (connection, peer):
        try:
            http.dataReceived(b"GET /fallback/chat/ HTTP/1.1\r\nHost: testserver\r\n\r\n")
            await asyncio.sleep(0)
            [send] = sends
            [request] = [c for c in server.connections if isinstance(c, WebRequest)]
            await send({"type": "http.response.start", "status": 200, "headers": []})
            page = {"type": "http.response.body", "body": b"p" * 50_000, "more_body": True}

            await daphne_limits.paced(send)(page)
            held = unsent_bytes(connection)
            assert request.producer.allowance == held > 10_000
            await send({"type": "http.response.body", "body": b"e" * 900, "more_body": True})
            assert not request.finished  # not dropped: what it holds is past the page
            assert connection.connected
            await send({"type": "http.response.body", "body": b"", "more_body": False})

            assert request.finished
            assert request.producer is None
            assert errors == []
            assert b"p" * 50_000 in write_everything(connection, peer)
        finally:
            globalLogPublisher.removeObserver(observer)
            for details in server.connections.values():
                details["application_instance"].cancel()
