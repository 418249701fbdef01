"""Bound what one WebSocket can make daphne hold: bytes it does not read, frames it floods.

daphne never pushes back, either way. A send goes through autobahn to Twisted's
`transport.write`, which queues whatever the kernel will not take yet, without limit: a
client that stops reading makes its connection's buffer grow with its rooms' traffic until
daphne's ping timeout drops it (20 s of silence, then 30 s for a pong). And every frame a
client sends is parsed at once and put in the consumer's unbounded asyncio queue, however
far behind the consumer is. This module bounds both, per connection (docs/security.md,
"Slow and flooding clients", has the measured figures):

- Out: before a frame is written, if the connection already holds more than
  `max_buffer_bytes` unsent, the server drops it (a TCP abort) instead. A close frame would
  only queue behind the bytes the client is not reading, so it could never arrive; the
  client sees the connection end (1006), reconnects and resyncs, and nothing is lost because
  every message is stored. So Twisted holds at most `max_buffer_bytes` plus one frame.
- In: once the consumer's queue holds `max_queued_frames` frames or `max_buffer_bytes` of
  payload, the server stops reading the connection (and stops parsing what it already
  read), so the client's own sends block on TCP; it reads again once the consumer has
  handled half. No frame is dropped.

- Out, on HTTP: a streamed response (the HTTP fallback's event stream, which a client may
  stop reading as it may stop reading a socket) is bounded the same way: before a body chunk
  is written to a connection that holds more than `max_buffer_bytes` unsent, the connection
  is dropped, and daphne tells the application (`http.disconnect`). Ordinary responses are
  written whole and never meet the cap unless their client stalls mid-response.
- Pages: a frame the client asked for (a join's messages, a history page: up to
  CHAT_FRAME_BUDGET_BYTES) may alone be larger than the cap, and a tab that reconnects asks
  for one per room at once. A page goes through `paced(send)`: it waits until the
  connection holds no more than `page_low_water` unsent, and what the connection holds
  right after it is not counted against the cap until the connection has written it all.
  So a client that reads is never dropped for a page it asked for, and one that does not
  read makes the server hold at most the cap, one page and `page_low_water`.

The queue a WebSocket's consumer reads is this module's `ApplicationQueue`, not the
`asyncio.Queue` daphne makes for every connection (`Server.create_application`): an
asyncio.Queue makes four deques of 64 slots (its items, its getters, its putters and its
join event's waiters), 3 KB that every idle socket kept (docs/performance.md, Analysis item
18). While daphne makes a WebSocket's application, its module's name `asyncio` stands for a
copy of asyncio whose `Queue` is `ApplicationQueue`; HTTP requests keep asyncio's.

A limit of 0 is off. Relies on daphne's `serverSend`/`applicationCreateWorked` and its queue's
`put_nowait`, `create_application` making the queue with `asyncio.Queue()` and handing the
application its `get`, autobahn's `processData`/`consumeData`, its connection states (a
frame for a connection whose close began goes nowhere) and Twisted's buffer
attributes, which is why requirements.txt pins them; `check()` asserts each is still there.
"""

import asyncio
import collections
import functools
import logging
import sys
import types
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from daphne import server as daphne_server
from daphne.http_protocol import WebRequest
from daphne.ws_protocol import WebSocketProtocol
from twisted.internet import abstract, interfaces, tcp
from zope.interface import implementer

from . import twisted_writes
from .checks import fail, require_attrs, require_params, require_source

logger = logging.getLogger(__name__)

PATCH = "daphne_limits"

_daphne_server_send = getattr(WebSocketProtocol, "serverSend", None)
_daphne_application_create_worked = getattr(WebSocketProtocol, "applicationCreateWorked", None)
_autobahn_process_data = getattr(WebSocketProtocol, "processData", None)
_daphne_handle_reply = getattr(WebRequest, "handle_reply", None)
_daphne_create_application = getattr(daphne_server.Server, "create_application", None)


@dataclass
class Limits:
    max_buffer_bytes: int = 0
    max_queued_frames: int = 0
    page_low_water: int = 64 * 1024


LIMITS = Limits()

# A page that waits looks again this often, whatever Twisted says: autobahn unregisters a
# connection's producer when it drops the connection, so the wake-up may never come.
PAGE_RECHECK_SECONDS = 0.5


def unsent_bytes(transport: Any) -> int:
    """Bytes Twisted holds for `transport` that the kernel has not taken yet (0 if unknown).
    A wrapping transport (TLS inside daphne) is measured by the TCP connection under it."""
    while not isinstance(transport, abstract.FileDescriptor):
        transport = getattr(transport, "transport", None)
        if transport is None:
            return 0
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen


def _stop_reading(transport: Any) -> None:
    if getattr(transport, "connected", False):
        transport.pauseProducing()


def _payload_size(message: dict[str, Any]) -> int:
    """The memory a queued frame's payload takes (a str takes 1 to 4 bytes a character)."""
    return sys.getsizeof(message.get("text") or message.get("bytes") or b"")


class ApplicationQueue:
    """A WebSocket's application queue: what daphne puts (`put_nowait`) and its consumer
    reads (`get`), in order, as asyncio.Queue does, for one reader at a time (a consumer
    reads its messages one after another). It holds a deque only while something waits in
    it, and tells the connection's `InboundBudget`, if any, what comes and goes."""

    __slots__ = ("_items", "_waiter", "budget")

    def __init__(self) -> None:
        self._items: collections.deque[dict[str, Any]] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.budget: InboundBudget | None = None

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, message: dict[str, Any]) -> None:
        if self._items is None:
            self._items = collections.deque()
        self._items.append(message)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        if self.budget is not None:
            self.budget.put(message)

    def get_nowait(self) -> dict[str, Any]:
        if not self._items:
            raise asyncio.QueueEmpty
        message = self._items.popleft()
        if not self._items:
            self._items = None
        if self.budget is not None:
            self.budget.got(message)
        return message

    async def get(self) -> dict[str, Any]:
        while not self._items:
            if self._waiter is not None:
                raise RuntimeError("a WebSocket's application queue has one reader at a time")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self.get_nowait()


# daphne's module sees this for `asyncio` while it makes a WebSocket's application.
_ASYNCIO_WITH_APPLICATION_QUEUE = types.ModuleType(asyncio.__name__, asyncio.__doc__)
vars(_ASYNCIO_WITH_APPLICATION_QUEUE).update(vars(asyncio), Queue=ApplicationQueue)


def _create_application(self: daphne_server.Server, protocol: Any, scope: dict[str, Any]) -> Any:
    """daphne's create_application; a WebSocket's gets an ApplicationQueue."""
    if scope.get("type") != "websocket":
        return _daphne_create_application(self, protocol, scope)
    daphne_server.asyncio = _ASYNCIO_WITH_APPLICATION_QUEUE
    try:
        return _daphne_create_application(self, protocol, scope)
    finally:
        daphne_server.asyncio = asyncio


class InboundBudget:
    """Counts what waits in one connection's application queue, and pauses reading the
    connection while it is over the limits."""

    __slots__ = ("_resume_scheduled", "paused", "pauses", "protocol", "queue", "queued_bytes")

    def __init__(self, protocol: WebSocketProtocol, queue: ApplicationQueue) -> None:
        if not isinstance(queue, ApplicationQueue):  # it would count nothing
            raise TypeError(f"daphne made a {type(queue).__name__}, not an ApplicationQueue")
        self.protocol = protocol
        self.queue = queue
        self.queued_bytes = 0
        self.paused = False
        self.pauses = 0
        self._resume_scheduled = False
        queue.budget = self

    def put(self, message: dict[str, Any]) -> None:
        """`message` was queued."""
        self.queued_bytes += _payload_size(message)
        if not self.paused and self._over(1):
            self.paused = True
            self.pauses += 1
            _stop_reading(self.protocol.transport)

    def got(self, message: dict[str, Any]) -> None:
        """`message` left the queue for the consumer."""
        self.queued_bytes -= _payload_size(message)
        if self.paused and not self._resume_scheduled and not self._over(2):
            # Not from inside the consumer's get: resuming parses frames into this queue.
            self._resume_scheduled = True
            asyncio.get_running_loop().call_soon(self.resume)

    def resume(self) -> None:
        """Parse what was read before the pause, then read the connection again, unless
        that refilled the queue."""
        self._resume_scheduled = False
        self.paused = False
        self.protocol.consumeData()
        if not self.paused:
            self.protocol.transport.resumeProducing()

    def _over(self, fraction: int) -> bool:
        """At or over the limits (each divided by `fraction`)."""
        frames, max_bytes = LIMITS.max_queued_frames, LIMITS.max_buffer_bytes
        return bool(
            (frames and self.queue.qsize() * fraction >= frames)
            or (max_bytes and self.queued_bytes * fraction >= max_bytes)
        )


def _send_within_buffer(self: WebSocketProtocol, content: Any, binary: bool = False) -> None:
    """daphne's serverSend, unless the connection already holds more than the cap unsent:
    then it is dropped, and this frame and any sent before daphne hears of the drop (on the
    next turn of the loop) go nowhere, instead of raising autobahn's Disconnected.

    The same for a connection whose close has begun (the client's close frame arrived, or
    the server's went out): daphne forwards a send until the TCP connection is gone, and
    autobahn raises Disconnected for any frame after the close, which reached the
    application as an error from a broadcast or a reply to a socket that was closing
    anyway (django/channels#1820). Its disconnect is on its way and does the cleanup."""
    if self.state not in _SENDABLE:
        logger.debug("A frame for a closing WebSocket goes nowhere (state %s)", self.state)
        return
    if not dropped_for_unread(self):
        _daphne_server_send(self, content, binary)


# serverSend accepts a connection still opening before it sends (the first frame is the
# accept); autobahn sends in the open state only.
_SENDABLE_STATES = ("STATE_CONNECTING", "STATE_OPEN")
_SENDABLE = tuple(getattr(WebSocketProtocol, state, None) for state in _SENDABLE_STATES)


def dropped_for_unread(protocol: WebSocketProtocol) -> bool:
    """Whether a frame for `protocol` must go nowhere: it was dropped for not reading, or
    is dropped now, as it already holds more than the cap unsent (daphne_frames' writes
    check this too)."""
    if getattr(protocol, "dropped_unread", False):
        return True
    cap = LIMITS.max_buffer_bytes
    if (
        cap
        and protocol.state == protocol.STATE_OPEN
        and (unsent := unsent_bytes(protocol.transport)) > cap
        and unsent - (pages := page_allowance(protocol.transport)) > cap
    ):
        logger.warning(
            "Dropping WebSocket %s: %d bytes unsent (%d of them up to a page it asked for), "
            "over the %d-byte cap (it does not read)",
            protocol.client_addr,
            unsent,
            pages,
            cap,
        )
        protocol.dropped_unread = True
        protocol.wasClean = False
        protocol.wasNotCleanReason = f"{unsent} bytes unsent, over the {cap}-byte cap"
        protocol.dropConnection(abort=True)
        return True
    return False


def _reply_within_buffer(self: WebRequest, message: dict[str, Any]) -> None:
    """daphne's handle_reply, unless it writes a body chunk to a connection that already
    holds more than the cap unsent: then the connection is dropped, and daphne sends the
    application `http.disconnect` (its connectionLost), as for a client that went away."""
    cap = LIMITS.max_buffer_bytes
    channel = self.channel
    if (
        cap
        and message.get("type") == "http.response.body"
        and channel is not None
        and not self.finished
        and (unsent := unsent_bytes(channel.transport)) > cap
        and unsent - (pages := page_allowance(self)) > cap
    ):
        logger.warning(
            "Dropping HTTP response to %s: %d bytes unsent (%d of them up to a page it asked "
            "for), over the %d-byte cap (unread)",
            self.client_addr,
            unsent,
            pages,
            cap,
        )
        channel.transport.abortConnection()
        return
    if (
        message.get("type") == "http.response.body"
        and not message.get("more_body")
        and type(self.producer) is PagePending
    ):
        # The response ends: Twisted logs a producer still registered then as an error.
        self.producer.release()
    _daphne_handle_reply(self, message)


def daphne_connection(send: Any) -> WebSocketProtocol | WebRequest | None:
    """The connection behind an application's `send`, if `send` is daphne's own (its
    `Server.handle_reply` bound to the connection), else None."""
    if (
        isinstance(send, functools.partial)
        and getattr(send.func, "__func__", None) is daphne_server.Server.handle_reply
        and isinstance(send.func.__self__, daphne_server.Server)
        and len(send.args) == 1
        and not send.keywords
        and isinstance(send.args[0], (WebSocketProtocol, WebRequest))
    ):
        return send.args[0]
    return None


@implementer(interfaces.IPullProducer, interfaces.IPushProducer)
class PagePending:
    """Registered as a connection's producer while a page it asked for may be unsent: it
    remembers how much that was (`allowance`), and wakes a page that waits (`waiter`).

    Twisted calls `resumeProducing` when it has written all the connection held (and, for
    a pull producer, when it is registered), and `stopProducing` when the connection is
    lost. On a WebSocket it is the TCP transport's pull producer (daphne_upgrade freed that
    slot); on HTTP it is the request's push producer, which Twisted's HTTPChannel resumes
    once the transport it paused has written everything."""

    __slots__ = ("allowance", "owner", "transport", "waiter")

    def __init__(self, owner: Any, transport: tcp.Connection) -> None:
        self.owner = owner  # what it is registered with: the transport, or the request
        self.transport = transport
        self.allowance = 0
        self.waiter: asyncio.Future[None] | None = None

    def resumeProducing(self) -> None:
        transport = self.transport
        unsent = unsent_bytes(transport)
        if not unsent or not transport.connected or transport.disconnecting:
            self.release()
        elif unsent <= LIMITS.page_low_water:
            self.wake()

    def pauseProducing(self) -> None:
        """Nothing to pause: a page is written whole."""

    def stopProducing(self) -> None:
        self.release()

    def release(self) -> None:
        """Everything is written (or the connection is gone): count it all again."""
        self.allowance = 0
        owner = self.owner
        # (A request whose connection was lost has no channel left to unregister from.)
        channel = getattr(owner, "channel", None)
        if owner.producer is self and (owner is self.transport or channel is not None):
            owner.unregisterProducer()
        self.wake()

    def wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


def page_allowance(owner: Any) -> int:
    """Bytes `owner` (a transport or a request) holds up to the end of the last page its
    client asked for, which the cap does not count until they are written."""
    pending = getattr(owner, "producer", None)
    return pending.allowance if type(pending) is PagePending else 0


def paced(send: Any) -> Callable[[dict[str, Any]], Awaitable[None]] | None:
    """A `send` for pages, on a daphne connection over plain TCP (None otherwise: another
    server, TLS inside daphne): it sends a message once the connection holds no more than
    `page_low_water` unsent, and lets the cap allow for what it holds right after."""
    connection = daphne_connection(send)
    if isinstance(connection, WebSocketProtocol):
        transport = connection.transport
        owner = transport
    elif isinstance(connection, WebRequest) and connection.channel is not None:
        transport = connection.channel.transport
        owner = connection
    else:
        return None
    if not isinstance(transport, tcp.Connection) or getattr(transport, "TLS", False):
        return None
    return functools.partial(_send_page, send, owner, transport)


async def _send_page(
    send: Any, owner: Any, transport: tcp.Connection, message: dict[str, Any]
) -> None:
    pending = await _wait_for_room(owner, transport)
    await send(message)
    unsent = unsent_bytes(transport)
    if not unsent or not transport.connected:
        return
    if pending is None:
        pending = _register(owner, transport)
    if pending is not None:
        pending.allowance = unsent


async def _wait_for_room(owner: Any, transport: tcp.Connection) -> PagePending | None:
    """Wait until `transport` holds no more than `page_low_water` unsent or is gone; the
    connection's PagePending, if it is still registered."""
    pending = getattr(owner, "producer", None)
    pending = pending if type(pending) is PagePending else None
    loop = asyncio.get_running_loop()
    while (
        transport.connected
        and not transport.disconnecting
        and unsent_bytes(transport) > LIMITS.page_low_water
    ):
        if pending is None or owner.producer is not pending:
            pending = _register(owner, transport)
            if pending is None:  # another producer has the connection: no pacing
                return None
            continue  # a pull producer may have been resumed as it was registered
        pending.waiter = waiter = loop.create_future()
        try:
            await asyncio.wait_for(asyncio.shield(waiter), PAGE_RECHECK_SECONDS)
        except TimeoutError:
            pass
        finally:
            pending.waiter = None
    return pending if pending is not None and owner.producer is pending else None


def _register(owner: Any, transport: tcp.Connection) -> PagePending | None:
    if owner.producer is not None:
        return None
    pending = PagePending(owner, transport)
    # A transport takes it as a pull producer (resumed whenever it has written all it
    # held); a request passes a push producer on to its HTTPChannel, which the transport
    # pauses when its buffer fills and resumes when it has written it all.
    owner.registerProducer(pending, owner is not transport)
    return pending if owner.producer is pending else None


def _application_create_worked(
    self: WebSocketProtocol, application_queue: ApplicationQueue
) -> None:
    """daphne's, counting the queue from its first message (websocket.connect) on."""
    if LIMITS.max_queued_frames or LIMITS.max_buffer_bytes:
        self.inbound_budget = InboundBudget(self, application_queue)
    _daphne_application_create_worked(self, application_queue)


def _process_data_unless_paused(self: WebSocketProtocol) -> bool:
    """autobahn's processData (one frame's worth), or nothing while the consumer is behind:
    what was read stays in autobahn's buffer, which holds at most one read (64 KiB) beyond
    a frame in progress."""
    budget = getattr(self, "inbound_budget", None)
    if budget is not None and budget.paused:
        _stop_reading(self.transport)  # in case anything else resumed reading
        return False
    return _autobahn_process_data(self)


def _unpatched(name: str) -> Any:
    """WebSocketProtocol's `name` as daphne/autobahn define it (once installed, the one the
    patch wraps)."""
    current = getattr(WebSocketProtocol, name, None)
    replacement, original = _PATCHED[name]
    return original if current is replacement else current


def check() -> None:
    """Fail loudly unless daphne, autobahn, asyncio and Twisted still have every internal
    these limits rely on."""
    _check_websocket()
    _check_http()
    _check_pages()
    twisted_writes.check_buffer_fields(PATCH)


def _check_pages() -> None:
    """What pacing pages relies on: Twisted resumes a connection's pull producer once it
    has written all it held, and a request hands its producer to its channel."""
    require_source(
        PATCH,
        "Twisted",
        getattr(abstract.FileDescriptor, "doWrite", None),
        ["not self.streamingProducer", "self.producer.resumeProducing()"],
        label="twisted.internet.abstract.FileDescriptor.doWrite",
    )
    require_source(
        PATCH,
        "Twisted",
        getattr(WebRequest, "registerProducer", None),
        ["self.channel.registerProducer(producer, streaming)"],
        label="twisted.web.http.Request.registerProducer",
    )
    require_attrs(
        PATCH,
        "Twisted",
        abstract.FileDescriptor,
        ["producer", "registerProducer", "unregisterProducer"],
        label="twisted.internet.abstract.FileDescriptor",
    )


def _check_websocket() -> None:
    """What the WebSocket half relies on: daphne's protocol and the queue it makes,
    autobahn's reading."""
    label = "daphne.ws_protocol.WebSocketProtocol"
    require_params(
        PATCH,
        "daphne",
        _unpatched("serverSend"),
        ["self", "content", "binary"],
        label=f"{label}.serverSend",
    )
    # _send_within_buffer reads autobahn's states, and its sendMessage refuses any but open.
    require_attrs(PATCH, "autobahn", WebSocketProtocol, list(_SENDABLE_STATES), label=label)
    require_source(
        PATCH,
        "autobahn",
        getattr(WebSocketProtocol, "sendMessage", None),
        ["if self.state != WebSocketProtocol.STATE_OPEN:"],
        label=f"{label}.sendMessage",
    )
    create_worked = _unpatched("applicationCreateWorked")
    require_params(
        PATCH,
        "daphne",
        create_worked,
        ["self", "application_queue"],
        label=f"{label}.applicationCreateWorked",
    )
    # InboundBudget counts what daphne puts (put_nowait) and the consumer takes (get).
    require_source(
        PATCH,
        "daphne",
        create_worked,
        ["application_queue.put_nowait("],
        label=f"{label}.applicationCreateWorked",
    )
    require_source(
        PATCH,
        "daphne",
        getattr(WebSocketProtocol, "onMessage", None),
        ["self.application_queue.put_nowait("],
        label=f"{label}.onMessage",
    )
    create = getattr(daphne_server.Server, "create_application", None)
    create = _daphne_create_application if create is _create_application else create
    require_source(
        PATCH,
        "daphne",
        create,
        ["input_queue = asyncio.Queue()", "receive=input_queue.get", "return input_queue"],
        label="daphne.server.Server.create_application",
    )
    if getattr(daphne_server, "asyncio", None) not in (asyncio, _ASYNCIO_WITH_APPLICATION_QUEUE):
        raise fail(PATCH, "daphne", "daphne.server.asyncio", "is no longer the asyncio module")
    require_params(
        PATCH, "autobahn", _unpatched("processData"), ["self"], label=f"{label}.processData"
    )
    require_source(
        PATCH,
        "autobahn",
        getattr(WebSocketProtocol, "consumeData", None),
        ["self.processData()"],
        label=f"{label}.consumeData",
    )
    require_params(
        PATCH,
        "autobahn",
        getattr(WebSocketProtocol, "dropConnection", None),
        ["self", "abort"],
        label=f"{label}.dropConnection",
    )
    require_attrs(PATCH, "autobahn", WebSocketProtocol, ["STATE_OPEN"], label=label)
    require_source(
        PATCH,
        "daphne",
        getattr(WebSocketProtocol, "onConnect", None),
        ["self.client_addr ="],
        label=f"{label}.onConnect",
    )
    require_attrs(
        PATCH,
        "Twisted",
        abstract.FileDescriptor,
        ["pauseProducing", "resumeProducing"],
        label="twisted.internet.abstract.FileDescriptor",
    )


def _check_http() -> None:
    """What the HTTP half relies on: where daphne writes a response's body chunks, and
    Twisted's abort."""
    reply = getattr(WebRequest, "handle_reply", None)
    reply = _daphne_handle_reply if reply is _reply_within_buffer else reply
    require_params(
        PATCH,
        "daphne",
        reply,
        ["self", "message"],
        label="daphne.http_protocol.WebRequest.handle_reply",
    )
    # The cap is checked where daphne writes a body chunk, before it finishes the request.
    require_source(
        PATCH,
        "daphne",
        reply,
        ["self.finished", 'http.Request.write(self, message.get("body"'],
        label="daphne.http_protocol.WebRequest.handle_reply",
    )
    require_attrs(
        PATCH,
        "Twisted",
        tcp.Connection,
        ["abortConnection"],
        label="twisted.internet.tcp.Connection",
    )


def install(*, max_buffer_bytes: int, max_queued_frames: int, page_low_water: int) -> None:
    """Check, set the limits (0: off), patch daphne's WebSocketProtocol and have its server
    make each WebSocket an ApplicationQueue (idempotent)."""
    check()
    LIMITS.max_buffer_bytes = max_buffer_bytes
    LIMITS.max_queued_frames = max_queued_frames
    LIMITS.page_low_water = page_low_water
    WebSocketProtocol.serverSend = _send_within_buffer
    WebSocketProtocol.applicationCreateWorked = _application_create_worked
    WebSocketProtocol.processData = _process_data_unless_paused
    WebRequest.handle_reply = _reply_within_buffer
    functools.update_wrapper(_create_application, _daphne_create_application)
    daphne_server.Server.create_application = _create_application


_PATCHED = {
    "serverSend": (_send_within_buffer, _daphne_server_send),
    "applicationCreateWorked": (_application_create_worked, _daphne_application_create_worked),
    "processData": (_process_data_unless_paused, _autobahn_process_data),
}
