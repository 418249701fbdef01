"""The chat connection over plain HTTP, for networks that let no WebSocket through.

The same protocol, carried differently (docs/protocol.md, "The HTTP fallback"): the server's
frames go down one long response of Server-Sent Events (`GET /fallback/chat/`), or, where a
proxy buffers that response, as answers to long polls (`GET /fallback/chat/poll/`); the
client's frames come up as POSTs (`/fallback/chat/send/`). POSTs and polls may land on any
worker: they reach the connection's worker through the channel layer.

Nothing of the protocol is written twice: the stream runs the WebSocket's own ChatConsumer,
in this process, and speaks ASGI WebSocket messages with it. `websocket.send` becomes an SSE
event, `websocket.close` ends the stream, and a POST's frames reach it as `websocket.receive`
through the channel layer (the stream's worker listens on a channel of its own, named in the
signed token the stream gives the client). So authorisation, rate limits, caps, presence
and cleanup are the socket's: a stream that ends, or a client that stops POSTing (and
polling) for CHAT_FALLBACK_IDLE_SECONDS, is a socket that disconnected.

A polling connection outlives each response: it runs in its worker on its own, numbers the
frames it sends, and keeps them until a poll acks them, so an answer lost on the way loses
nothing (the next poll, with the same ack, brings the same frames again).
"""

import asyncio
import collections
import contextlib
import json
import logging
import secrets
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings
from django.core import signing

from . import origins, transport
from .layers import CHANNEL_PREFIX
from .outages import Outage, stop_if_cancelled
from .runtime import runtime_for_loop

logger = logging.getLogger(__name__)

SALT = "chat.fallback"
FRAMES = "fallback.frames"  # the layer message that carries a POST's frames
POLL = "fallback.poll"  # …that asks a polling connection for its frames after `ack`
ANSWER = "fallback.answer"  # …that carries the answer back to the poll's worker
ANSWER_WAIT_MARGIN = 5.0  # seconds a poll waits past CHAT_FALLBACK_POLL_SECONDS: then 410
MAX_ANSWER_BYTES = 256 * 1024  # frames per answer; the client polls again for the rest
GOING_AWAY = 1001  # the close code of a connection the server ended (idle, layer away)
TOO_MUCH = 4008  # …and of one whose client POSTs faster than it is served (limit_reached)
FRAMES_LOST = 4009  # …and of one that missed a POST: its frames cannot be in order any more
HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache, no-transform"),
    (b"x-accel-buffering", b"no"),  # nginx: pass each event on at once
    (b"x-content-type-options", b"nosniff"),
]


class FallbackError(Exception):
    """A POST that cannot be forwarded: `status` is its HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def make_token(*, channel: str, user_id: int | None) -> str:
    """The client's name for its connection: signed, so only the stream's reader has it and
    only its user may post with it."""
    return signing.dumps({"c": channel, "u": user_id}, salt=SALT, compress=True)


def connection_channel(token: str, user_id: int | None) -> str:
    """The channel of the connection `token` names, if it is `user_id`'s."""
    try:
        claims = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        raise FallbackError(403, "Unknown connection.") from None
    if claims.get("u") != user_id:
        raise FallbackError(403, "This connection belongs to another session.")
    return claims["c"]


async def forward(
    *, token: str, user_id: int | None, batch: int, frames: list[Any], close: bool = False
) -> int:
    """Hand a POST's frames to the worker that holds the connection; how many. `batch`
    numbers the connection's POSTs from 1, so the connection notices one that never came;
    `close` ends the connection after the frames (its client is leaving)."""
    channel = connection_channel(token, user_id)
    if not isinstance(frames, list) or len(frames) > settings.CHAT_FALLBACK_MAX_FRAMES_PER_POST:
        raise FallbackError(
            400,
            "The body is a JSON array of at most "
            f"{settings.CHAT_FALLBACK_MAX_FRAMES_PER_POST} frames.",
        )
    texts = [json.dumps(frame, ensure_ascii=False) for frame in frames]
    message = {"type": FRAMES, "batch": batch, "frames": texts, "close": close}
    try:
        await get_channel_layer().send(channel, message)
    except Exception as error:  # the layer is away or the connection's queue is full
        logger.warning("Could not forward %d fallback frame(s): %s", len(texts), error)
        raise FallbackError(503, "The connection cannot take frames now; reconnect.") from None
    return len(texts)


def _event(data: str, kind: str | None = None) -> bytes:
    head = f"event: {kind}\n" if kind else ""
    return f"{head}data: {data}\n\n".encode()


class _Door:
    """An ASGI app for one of the fallback's GETs: the checks every one of them makes
    (`_refusal`), then `serve`. `consumer` is the socket's app, which runs the connection."""

    def __init__(self, consumer: Any) -> None:
        self.consumer = consumer

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        refusal = _refusal(scope)
        if refusal is not None:
            await _respond(send, *refusal)
            return
        await self.serve(scope, receive, send)

    async def serve(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise NotImplementedError


class FallbackStream(_Door):
    """`GET /fallback/chat/`: one chat connection, its frames down one response."""

    async def serve(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await StreamConnection(scope, self.consumer, receive, send).run()


class FallbackPoll(_Door):
    """`GET /fallback/chat/poll/`: without a token, open a polling connection run by
    `consumer` in this worker; with one, ask the connection (on any worker) for its frames."""

    async def serve(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = dict(scope.get("headers", []))
        token = headers.get(b"x-chat-session")
        if token is None:
            await self._open(scope, send)
            return
        try:
            answer = await self._poll(scope, receive, token, headers.get(b"x-chat-ack", b""))
        except FallbackError as error:
            await _respond_json(send, error.status, json.dumps({"error": str(error)}))
            return
        if answer is not None:
            await _respond_json(send, 200, answer)

    async def _open(self, scope: dict[str, Any], send: Any) -> None:
        connection = PollConnection(scope, self.consumer)
        task = asyncio.create_task(connection.run(), name="fallback poll connection")
        polling[connection] = task  # runs on after this response, until the connection ends
        task.add_done_callback(lambda _: polling.pop(connection, None))
        opened = await asyncio.shield(connection.ready)
        if opened is None:
            await _respond(send, 503, "The connection could not be opened.")
        elif not opened:
            await _respond(send, 403, "Refused.")
        else:
            await asyncio.sleep(0)  # frames sent as it opened come in this answer
            await _respond_json(send, 200, connection.first_answer())

    async def _poll(
        self, scope: dict[str, Any], receive: Any, token: bytes, ack: bytes
    ) -> str | None:
        """The answer's body; None if the client went away meanwhile."""
        user_id = getattr(scope["user"], "pk", None)
        channel = connection_channel(token.decode("latin-1"), user_id)
        if not (ack.isascii() and ack.isdigit()) or int(ack) >= 2**53:
            raise FallbackError(400, "X-Chat-Ack must be the number of the last frame received.")
        asking = asyncio.create_task(runtime_for_loop().answers.ask(channel, int(ack)))
        leaving = asyncio.create_task(_client_left(receive))
        try:
            await asyncio.wait([asking, leaving], return_when=asyncio.FIRST_COMPLETED)
        finally:
            leaving.cancel()
            if not asking.done():
                asking.cancel()
        if not asking.done() or asking.cancelled():
            return None
        answer = asking.result()
        if answer is None:
            raise FallbackError(410, "The connection has ended; open a new one.")
        if "error" in answer:
            raise FallbackError(answer["status"], answer["error"])
        return answer["body"]


polling: "dict[PollConnection, asyncio.Task]" = {}  # this process's polling connections


async def _first_of(*waits: Any) -> None:
    """Wait until the first of `waits` (coroutines) is done; cancel the rest."""
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


async def _client_left(receive: Any) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _refusal(scope: dict[str, Any]) -> tuple[int, str] | None:
    """Why a stream or poll request is refused: not a GET, not this site, or another site's
    page."""
    if scope["method"] != "GET":
        return 405, "Use GET."
    headers = dict(scope.get("headers", []))
    host = headers.get(b"host", b"").decode("latin-1")
    if not host or origins.own_origin(scope, host) is None:
        return 400, "Unknown host."
    # EventSource sends no Origin to its own site; another site's page sends its own.
    if b"origin" in headers and not origins.origin_allowed(scope):
        return 403, "Cross-origin streams are refused."
    return None


async def _respond(send: Any, status: int, text: str) -> None:
    headers = [(b"content-type", b"text/plain; charset=utf-8")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": text.encode()})


async def _respond_json(send: Any, status: int, body: str) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"cache-control", b"no-store"),
        (b"x-content-type-options", b"nosniff"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body.encode()})


class Connection:
    """One chat connection over HTTP: the consumer's ASGI WebSocket messages on one side;
    on the other the channel layer, which brings the POSTs' frames (and the polls), and a
    way down to the client, which the subclasses give: `opened`, `down`, `announce_close`,
    `refused` and `finish`."""

    def __init__(self, scope: dict[str, Any], consumer: Any) -> None:
        self.scope = scope
        self.consumer = consumer
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.layer = get_channel_layer()
        self.channel = ""
        self.started = False  # the consumer accepted, and the client was told
        self.closed = False  # the client was told the connection ended (or refused)
        self.close_code = GOING_AWAY  # the code of a close the server decides here
        self.last_contact = 0.0  # the client's last POST (or poll)
        self.next_batch = 1  # the number of the next POST to come
        self.done = asyncio.Event()  # the consumer is to stop
        self.leaving = False  # the client said it was leaving (X-Chat-Close)

    async def run(self) -> None:
        """Run the consumer until it, the client or this connection's limits end it; then
        let its cleanup finish, tell the client if it may still hear, and end."""
        loop = asyncio.get_running_loop()
        try:
            self.channel = await self.layer.new_channel(CHANNEL_PREFIX)
        except Exception:
            await self.finish()
            raise
        self.last_contact = loop.time()
        socket_scope = {**self.scope, "type": "websocket", "scheme": "ws", "subprotocols": []}
        socket_scope.pop(transport.SCOPE_KEY, None)  # the consumer's sends come here, not to HTTP
        socket_scope[transport.PAGE_KEY] = self.page_send
        await self.inbox.put({"type": "websocket.connect"})
        app = asyncio.create_task(self.consumer(socket_scope, self.inbox.get, self.socket_send))
        helpers = [asyncio.create_task(helper()) for helper in self.helpers()]
        ended = asyncio.create_task(self.done.wait())
        try:
            await asyncio.wait([app, ended], return_when=asyncio.FIRST_COMPLETED)
            ended.cancel()
            if not app.done():
                await self.inbox.put({"type": "websocket.disconnect", "code": 1001})
                # The consumer's cleanup (rooms, presence, caps) runs to its end.
                await asyncio.shield(asyncio.wait([app], timeout=30))
                if not app.done():
                    logger.error("A fallback connection's consumer did not end; cancelling it")
                    app.cancel()
            if self.started and not self.closed and not self.leaving:
                # Ended here (idle, flood, layer away): say so, as a socket would.
                self.closed = True
                await self.announce_close(self.close_code)
            await self.linger()
        finally:
            for task in [*helpers, ended]:
                task.cancel()
            await asyncio.gather(*helpers, ended, return_exceptions=True)
            await self.finish()

    def helpers(self) -> list[Any]:
        """What runs beside the consumer, until the connection ends."""
        return [self._read_channel, self._watch_idle]

    async def socket_send(self, message: dict[str, Any]) -> None:
        """What the consumer sends to its socket, said to the client."""
        kind = message["type"]
        if self.closed:
            return
        if kind == "websocket.accept":
            token = make_token(
                channel=self.channel, user_id=getattr(self.scope["user"], "pk", None)
            )
            self.started = True
            await self.opened(token)
        elif kind == "websocket.send":
            await self.down(message["text"])
        elif kind == "websocket.close":
            self.closed = True
            if self.started:
                await self.announce_close(message.get("code") or 1000)
            else:  # the consumer refused the connection
                await self.refused()
            self.done.set()

    async def page_send(self, message: dict[str, Any]) -> None:
        """What the consumer sends as a page (chat/realtime/transport.py): paced by the
        subclasses, each by what its client has taken."""
        await self.socket_send(message)

    def session(self, token: str) -> dict[str, Any]:
        return {"token": token, "idle_timeout": settings.CHAT_FALLBACK_IDLE_SECONDS}

    async def opened(self, token: str) -> None:
        raise NotImplementedError

    async def down(self, text: str) -> None:
        raise NotImplementedError

    async def announce_close(self, code: int) -> None:
        raise NotImplementedError

    async def refused(self) -> None:
        raise NotImplementedError

    async def finish(self) -> None:
        """The connection has ended: release what the client may still hold."""

    async def linger(self) -> None:
        """After the consumer ended: wait while the client may still need to hear of it."""

    async def on_poll(self, message: dict[str, Any]) -> None:
        """A poll reached a connection that does not take them: its poll answers 410."""

    async def _read_channel(self) -> None:
        """Frames POSTed to any worker, handed to the consumer as socket messages, in order;
        and the polls, for a polling connection."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except Exception as error:  # the layer is away: end, and the client reconnects
                logger.warning("A fallback connection lost the channel layer: %s", error)
                self.done.set()
                return
            if message.get("type") == POLL:
                self.last_contact = loop.time()
                await self.on_poll(message)
                continue
            if message.get("type") != FRAMES or self.done.is_set():
                continue
            self.last_contact = loop.time()
            if message.get("batch") != self.next_batch:
                # A POST was lost on the way (the layer lost it) or came out of order: the
                # frames can no longer be handled in order, so end it, as TCP would.
                logger.warning("Ending a fallback connection that missed POST %d", self.next_batch)
                self.close_code = FRAMES_LOST
                self.done.set()
                continue
            self.next_batch += 1
            if (
                self.inbox.qsize() + len(message["frames"])
                > settings.CHAT_FALLBACK_MAX_QUEUED_FRAMES
            ):
                logger.warning("Ending a fallback connection whose client POSTs faster than served")
                self.close_code = TOO_MUCH
                self.done.set()
                continue
            for text in message["frames"]:
                await self.inbox.put({"type": "websocket.receive", "text": text})
            if message.get("close"):
                self.leaving = True
                self.done.set()  # after the frames: the consumer reads its inbox in order

    async def _watch_idle(self) -> None:
        """End a connection whose client stopped POSTing and polling (its keepalives too)."""
        loop = asyncio.get_running_loop()
        while True:
            idle = loop.time() - self.last_contact
            if idle > settings.CHAT_FALLBACK_IDLE_SECONDS:
                self.done.set()
                return
            await asyncio.sleep(
                min(
                    settings.CHAT_FALLBACK_KEEPALIVE_SECONDS,
                    settings.CHAT_FALLBACK_IDLE_SECONDS - idle,
                )
                + 0.01
            )


class StreamConnection(Connection):
    """A connection whose frames go down one response of Server-Sent Events."""

    def __init__(self, scope: dict[str, Any], consumer: Any, receive: Any, send: Any) -> None:
        super().__init__(scope, consumer)
        self.http_receive = receive
        self.http_send = send
        # Events skip the session middleware's send wrapper, as a socket's broadcasts do
        # (chat/realtime/transport.py): the stream never changes the session.
        self.write_body = scope.get(transport.SCOPE_KEY, send)
        self.write_page = transport.paced(self.write_body)
        self.finished = False  # the response ended

    def helpers(self) -> list[Any]:
        return [*super().helpers(), self._watch_client, self._keep_alive]

    async def opened(self, token: str) -> None:
        await self.http_send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await self._write(_event(json.dumps(self.session(token)), "session"))

    async def down(self, text: str) -> None:
        await self._write(_event(text))

    async def page_send(self, message: dict[str, Any]) -> None:
        """A page goes down the stream once the stream has taken what it holds, as on a
        socket (daphne_limits.paced)."""
        if message["type"] != "websocket.send" or self.closed:
            await self.socket_send(message)
            return
        await self._write(_event(message["text"]), page=True)

    async def announce_close(self, code: int) -> None:
        with contextlib.suppress(Exception):
            await self._write(_event(json.dumps({"code": code}), "close"))

    async def refused(self) -> None:
        self.finished = True
        await _respond(self.http_send, 403, "Refused.")

    async def _write(self, body: bytes, *, page: bool = False) -> None:
        if self.finished:
            return
        write = self.write_page if page else self.write_body
        try:
            await write({"type": "http.response.body", "body": body, "more_body": True})
        except Exception:  # the client is gone: the connection ends, like a broken socket
            self.finished = True
            self.leaving = True
            self.done.set()
            raise

    async def finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        with contextlib.suppress(Exception):
            if not self.started:
                await _respond(self.http_send, 503, "The connection could not be opened.")
            else:
                await self.http_send(
                    {"type": "http.response.body", "body": b"", "more_body": False}
                )

    async def _watch_client(self) -> None:
        """The client went away (the browser closed the stream, or TCP broke)."""
        await _client_left(self.http_receive)
        self.leaving = True
        self.done.set()

    async def _keep_alive(self) -> None:
        """A comment now and then, so proxies keep the response open and a dead peer shows."""
        while True:
            await asyncio.sleep(settings.CHAT_FALLBACK_KEEPALIVE_SECONDS)
            if self.started:
                await self._write(b": keepalive\n\n")


class PollConnection(Connection):
    """A connection whose frames wait, numbered, until a poll takes them and a later poll
    acks them. It runs in this worker on its own; polls reach it through the layer."""

    def __init__(self, scope: dict[str, Any], consumer: Any) -> None:
        super().__init__(scope, consumer)
        # True once open, False if refused, None if it could not be opened.
        self.ready: asyncio.Future[bool | None] = asyncio.get_running_loop().create_future()
        self.token = ""
        self.outbox: collections.deque[tuple[int, str]] = collections.deque()  # not yet acked
        self.outbox_bytes = 0
        # Bytes of the outbox up to the end of the last page the client asked for, which
        # CHAT_FALLBACK_MAX_UNACKED_BYTES does not count until they are acked.
        self.page_allowance = 0
        self.taken = asyncio.Event()  # a poll acked frames
        self.sent = 0  # the number of the last frame put in the outbox
        self.acked = 0  # the client has every frame up to this one
        self.ended_with: int | None = None  # the close code, once the client is to hear it
        self.told_end = asyncio.Event()  # an answer carried the close
        self.waiting: dict[str, Any] | None = None  # the poll waiting for frames
        self.waiting_since = 0.0
        self.wake = asyncio.Event()

    def helpers(self) -> list[Any]:
        return [*super().helpers(), self._answer_polls]

    async def opened(self, token: str) -> None:
        self.token = token
        self._ready(True)

    def first_answer(self) -> str:
        """The answer to the request that opened the connection: the session, and the
        frames so far (they stay in the outbox until a poll acks them)."""
        session = {**self.session(self.token), "poll_timeout": settings.CHAT_FALLBACK_POLL_SECONDS}
        frames = ",".join(text for _, text in self.outbox)
        if self.ended_with is not None:  # refused as it opened (the socket cap): told here
            self.told_end.set()
        close = json.dumps(self.ended_with)
        return f'{{"session":{json.dumps(session)},"first":1,"frames":[{frames}],"close":{close}}}'

    async def down(self, text: str) -> None:
        size = len(text)
        unacked = self.outbox_bytes + size - self.page_allowance
        if unacked > settings.CHAT_FALLBACK_MAX_UNACKED_BYTES:
            if not self.done.is_set():
                logger.warning("Ending a polling connection whose client does not take its frames")
                self.close_code = TOO_MUCH
                self.done.set()
            return
        self.sent += 1
        self.outbox.append((self.sent, text))
        self.outbox_bytes += size
        self.wake.set()

    async def page_send(self, message: dict[str, Any]) -> None:
        """A page goes in the outbox once the client has acked all but
        CHAT_PAGE_LOW_WATER_BYTES of it (or the connection ended), and the cap on unacked
        bytes allows for the outbox up to the page's end until it is acked."""
        if message["type"] != "websocket.send":
            await self.socket_send(message)
            return
        while self.outbox_bytes > settings.CHAT_PAGE_LOW_WATER_BYTES and not self.done.is_set():
            self.taken.clear()
            await _first_of(self.taken.wait(), self.done.wait())
        allowance, sent = self.page_allowance, self.sent
        self.page_allowance = self.outbox_bytes + len(message["text"])  # up to the page's end
        await self.socket_send(message)
        if self.sent == sent:  # it went nowhere: the connection had ended
            self.page_allowance = allowance

    async def announce_close(self, code: int) -> None:
        self.ended_with = code
        self.wake.set()

    async def refused(self) -> None:
        self._ready(False)

    async def finish(self) -> None:
        self._ready(None)
        if self.waiting is not None:  # a poll still waits: it hears of the end, if it can
            await self._answer(self.waiting)

    async def linger(self) -> None:
        """A client that may still poll hears how the connection ended: wait for an answer
        to carry the close, while the client still polls (a poll within its idle timeout)."""
        if self.leaving or self.ended_with is None:
            return
        loop = asyncio.get_running_loop()
        while not self.told_end.is_set():
            left = self.last_contact + settings.CHAT_FALLBACK_IDLE_SECONDS - loop.time()
            if left <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.told_end.wait(), left)

    def _ready(self, value: bool | None) -> None:
        if not self.ready.done():
            self.ready.set_result(value)

    async def on_poll(self, message: dict[str, Any]) -> None:
        ack = message.get("ack")
        if not isinstance(ack, int) or ack > self.sent:
            await self._refuse(message, "X-Chat-Ack is past the last frame sent.")
            return
        if ack < self.acked:  # a late, stale poll: the client has moved on
            await self._refuse(message, "X-Chat-Ack is behind an earlier poll's.")
            return
        while self.outbox and self.outbox[0][0] <= ack:
            size = len(self.outbox.popleft()[1])
            self.outbox_bytes -= size
            self.page_allowance = max(0, self.page_allowance - size)
            self.taken.set()
        self.acked = ack
        older, self.waiting = self.waiting, message
        if older is not None:  # one poll at a time: the older one goes back empty
            await self._answer(older, empty=True)
        self.waiting_since = asyncio.get_running_loop().time()
        self.wake.set()

    async def _refuse(self, poll: dict[str, Any], error: str) -> None:
        await self._reply(
            poll, {"type": ANSWER, "id": poll.get("id"), "status": 400, "error": error}
        )

    async def _answer_polls(self) -> None:
        """Answer the waiting poll as soon as there are frames for it (those of one instant
        together), or with none after CHAT_FALLBACK_POLL_SECONDS."""
        loop = asyncio.get_running_loop()
        while True:
            stop_if_cancelled()
            self.wake.clear()
            poll = self.waiting
            if poll is None:
                await self.wake.wait()
                continue
            if self.sent > poll["ack"] or self.ended_with is not None:
                await asyncio.sleep(0)  # frames sent in this instant go in the same answer
                if self.waiting is poll:
                    self.waiting = None
                    await self._answer(poll)
                continue
            left = self.waiting_since + settings.CHAT_FALLBACK_POLL_SECONDS - loop.time()
            if left <= 0:
                self.waiting = None
                await self._answer(poll)  # nothing came: an empty answer
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), left)

    async def _answer(self, poll: dict[str, Any], *, empty: bool = False) -> None:
        """Answer `poll` with the frames after its ack (up to MAX_ANSWER_BYTES; none if
        `empty`), and the close if the answer reaches the last frame sent."""
        taken: list[str] = []
        size = 0
        for number, text in self.outbox:
            if empty or (taken and size + len(text) > MAX_ANSWER_BYTES):
                break
            if number > poll["ack"]:
                taken.append(text)
                size += len(text)
        first = poll["ack"] + 1
        everything = first + len(taken) - 1 == self.sent
        close = self.ended_with if everything and self.ended_with is not None else None
        listed = ",".join(taken)
        body = f'{{"first":{first},"frames":[{listed}],"close":{json.dumps(close)}}}'
        if await self._reply(poll, {"type": ANSWER, "id": poll.get("id"), "body": body}) and close:
            self.told_end.set()

    async def _reply(self, poll: dict[str, Any], reply: dict[str, Any]) -> bool:
        try:
            await self.layer.send(poll["reply"], reply)
        except Exception as error:  # the poll's worker hears nothing: it answers 410
            logger.warning("Could not answer a poll: %s", error)
            return False
        return True


class PollAnswers:
    """The answers to the polls this process forwards, on one channel of its own, each
    matched to its poll by id (one channel, not one per poll: an answer that comes too late
    is dropped here rather than left in a channel nobody reads)."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self.channel: str | None = None
        self.waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.outage = Outage("the channel layer (fallback poll answers)")

    async def ask(self, connection: str, ack: int) -> dict[str, Any] | None:
        """The connection's answer to a poll for its frames after `ack`; None if none came
        within CHAT_FALLBACK_POLL_SECONDS and a margin (the connection is gone)."""
        layer = self.runtime.layer
        if self.channel is None:
            self.channel = await layer.new_channel(CHANNEL_PREFIX)
        self.runtime.start("fallback poll answers", self._receive_forever)
        poll_id = secrets.token_hex(8)
        answer = self.waiting[poll_id] = asyncio.get_running_loop().create_future()
        try:
            message = {"type": POLL, "reply": self.channel, "id": poll_id, "ack": ack}
            try:
                await layer.send(connection, message)
            except Exception as error:
                logger.warning("Could not forward a poll: %s", error)
                raise FallbackError(
                    503, "The connection cannot be reached now; reconnect."
                ) from None
            wait = settings.CHAT_FALLBACK_POLL_SECONDS + ANSWER_WAIT_MARGIN
            try:
                return await asyncio.wait_for(answer, wait)
            except TimeoutError:
                return None
        finally:
            self.waiting.pop(poll_id, None)

    async def _receive_forever(self) -> None:
        layer = self.runtime.layer
        while True:
            stop_if_cancelled()
            try:
                message = await layer.receive(self.channel)
            except Exception as error:
                await asyncio.sleep(self.outage.failed(error))
                continue
            self.outage.recovered()
            answer = self.waiting.get(message.get("id"))
            if answer is not None and not answer.done():
                answer.set_result(message)
