"""The application queue daphne makes for each WebSocket (chatsite/patches/daphne_limits.py):
asyncio.Queue's order and waking for its one reader, in less memory. The limits it counts for
are tested against a real daphne in tests/live/test_live_flood.py."""

import asyncio

import pytest
from daphne import server as daphne_server
from daphne.server import Server

import chatsite.asgi  # noqa: F401 - installs the patches, as the server does
from chatsite.patches import daphne_limits
from chatsite.patches.daphne_limits import ApplicationQueue


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
