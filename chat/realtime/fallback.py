"""The chat connection over plain HTTP, for networks that let no WebSocket through.

The same protocol, carried differently (docs/protocol.md, "The HTTP fallback"): the server's
frames go down one long response of Server-Sent Events (`GET /fallback/chat/`), and the
client's frames come up as POSTs (`/fallback/chat/send/`) that may land on any worker.

Nothing of the protocol is written twice: the stream runs the WebSocket's own ChatConsumer,
in this process, and speaks ASGI WebSocket messages with it. `websocket.send` becomes an SSE
event, `websocket.close` ends the stream, and a POST's frames reach it as `websocket.receive`
through the channel layer (the stream's worker listens on a channel of its own, named in the
signed token the stream gives the client). So authorisation, rate limits, caps, presence
and cleanup are the socket's: a stream that ends, or a client that stops POSTing for
CHAT_FALLBACK_IDLE_SECONDS, is a socket that disconnected.
"""

import asyncio
import contextlib
import json
import logging
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings
from django.core import signing

from . import origins, transport
from .layers import CHANNEL_PREFIX

logger = logging.getLogger(__name__)

SALT = "chat.fallback"
FRAMES = "fallback.frames"  # the layer message that carries a POST's frames
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


async def forward(*, token: str, user_id: int | None, batch: int, frames: list[Any]) -> int:
    """Hand a POST's frames to the worker that holds the connection; how many. `batch`
    numbers the connection's POSTs from 1, so the connection notices one that never came."""
    try:
        claims = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        raise FallbackError(403, "Unknown connection.") from None
    if claims.get("u") != user_id:
        raise FallbackError(403, "This connection belongs to another session.")
    if not isinstance(frames, list) or len(frames) > settings.CHAT_FALLBACK_MAX_FRAMES_PER_POST:
        raise FallbackError(
            400,
            "The body is a JSON array of at most "
            f"{settings.CHAT_FALLBACK_MAX_FRAMES_PER_POST} frames.",
        )
    texts = [json.dumps(frame, ensure_ascii=False) for frame in frames]
    message = {"type": FRAMES, "batch": batch, "frames": texts}
    try:
        await get_channel_layer().send(claims["c"], message)
    except Exception as error:  # the layer is away or the connection's queue is full
        logger.warning("Could not forward %d fallback frame(s): %s", len(texts), error)
        raise FallbackError(503, "The connection cannot take frames now; reconnect.") from None
    return len(texts)


def _event(data: str, kind: str | None = None) -> bytes:
    head = f"event: {kind}\n" if kind else ""
    return f"{head}data: {data}\n\n".encode()


class FallbackStream:
    """`GET /fallback/chat/`: one chat connection, run by `consumer` (the socket's app)."""

    def __init__(self, consumer: Any) -> None:
        self.consumer = consumer

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        refusal = _refusal(scope)
        if refusal is not None:
            await _respond(send, *refusal)
            return
        await Connection(scope, receive, send, self.consumer).run()


def _refusal(scope: dict[str, Any]) -> tuple[int, str] | None:
    """Why a stream request is refused: not a GET, not this site, or another site's page."""
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


class Connection:
    """One stream: the consumer's ASGI WebSocket messages on one side, the HTTP response and
    the channel layer on the other."""

    def __init__(self, scope: dict[str, Any], receive: Any, send: Any, consumer: Any) -> None:
        self.scope = scope
        self.http_receive = receive
        self.http_send = send
        # Events skip the session middleware's send wrapper, as a socket's broadcasts do
        # (chat/realtime/transport.py): the stream never changes the session.
        self.write_body = scope.get(transport.SCOPE_KEY, send)
        self.consumer = consumer
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.layer = get_channel_layer()
        self.channel = ""
        self.started = False  # the 200 and the session event went out
        self.finished = False  # the response ended
        self.closed = False  # the close event went out
        self.close_code = GOING_AWAY  # the code of a close the server decides here
        self.last_post = 0.0
        self.next_batch = 1  # the number of the next POST to come
        self.done = asyncio.Event()

    async def run(self) -> None:
        """Run the consumer until it, the client or this connection's limits end it; then
        let its cleanup finish and end the response."""
        loop = asyncio.get_running_loop()
        self.channel = await self.layer.new_channel(CHANNEL_PREFIX)
        self.last_post = loop.time()
        socket_scope = {**self.scope, "type": "websocket", "scheme": "ws", "subprotocols": []}
        socket_scope.pop(transport.SCOPE_KEY, None)  # the consumer's sends come here, not to HTTP
        await self.inbox.put({"type": "websocket.connect"})
        app = asyncio.create_task(self.consumer(socket_scope, self.inbox.get, self.socket_send))
        helpers = [
            asyncio.create_task(self._read_posts()),
            asyncio.create_task(self._watch_client()),
            asyncio.create_task(self._keep_alive()),
        ]
        ended = asyncio.create_task(self.done.wait())
        try:
            await asyncio.wait([app, ended], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for helper in [*helpers, ended]:
                helper.cancel()
            if not app.done():
                await self.inbox.put({"type": "websocket.disconnect", "code": 1001})
                # The consumer's cleanup (rooms, presence, caps) runs to its end.
                await asyncio.shield(asyncio.wait([app], timeout=30))
                if not app.done():
                    logger.error("A fallback connection's consumer did not end; cancelling it")
                    app.cancel()
            await asyncio.gather(*helpers, ended, return_exceptions=True)
            await self._finish()

    async def socket_send(self, message: dict[str, Any]) -> None:
        """What the consumer sends to its socket, said over the stream."""
        kind = message["type"]
        if self.finished:
            return
        if kind == "websocket.accept":
            await self.http_send({"type": "http.response.start", "status": 200, "headers": HEADERS})
            token = make_token(
                channel=self.channel, user_id=getattr(self.scope["user"], "pk", None)
            )
            session = {"token": token, "idle_timeout": settings.CHAT_FALLBACK_IDLE_SECONDS}
            self.started = True
            await self._write(_event(json.dumps(session), "session"))
        elif kind == "websocket.send":
            await self._write(_event(message["text"]))
        elif kind == "websocket.close":
            if not self.started:  # the consumer refused the connection
                await _respond(self.http_send, 403, "Refused.")
                self.finished = True
            else:
                code = message.get("code") or 1000
                self.closed = True
                await self._write(_event(json.dumps({"code": code}), "close"))
            self.done.set()

    async def _write(self, body: bytes) -> None:
        try:
            await self.write_body({"type": "http.response.body", "body": body, "more_body": True})
        except Exception:  # the client is gone: the connection ends, like a broken socket
            self.finished = True
            self.done.set()
            raise

    async def _finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        if not self.started:
            await _respond(self.http_send, 503, "The connection could not be opened.")
            return
        with contextlib.suppress(Exception):
            if not self.closed:  # ended here (idle, flood, layer away): say so, as a socket would
                await self._write(_event(json.dumps({"code": self.close_code}), "close"))
            await self.http_send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _read_posts(self) -> None:
        """Frames POSTed to any worker, handed to the consumer as socket messages, in order."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except Exception as error:  # the layer is away: end, and the client reconnects
                logger.warning("A fallback connection lost the channel layer: %s", error)
                self.done.set()
                return
            if message.get("type") != FRAMES:
                continue
            self.last_post = loop.time()
            if message.get("batch") != self.next_batch:
                # A POST was lost on the way (the layer lost it) or came out of order: the
                # frames can no longer be handled in order, so end it, as TCP would.
                logger.warning("Ending a fallback connection that missed POST %d", self.next_batch)
                self.close_code = FRAMES_LOST
                self.done.set()
                return
            self.next_batch += 1
            if (
                self.inbox.qsize() + len(message["frames"])
                > settings.CHAT_FALLBACK_MAX_QUEUED_FRAMES
            ):
                logger.warning("Ending a fallback connection whose client POSTs faster than served")
                self.close_code = TOO_MUCH
                self.done.set()
                return
            for text in message["frames"]:
                await self.inbox.put({"type": "websocket.receive", "text": text})

    async def _watch_client(self) -> None:
        """The client went away (the browser closed the stream, or TCP broke)."""
        while (await self.http_receive())["type"] != "http.disconnect":
            pass
        self.done.set()

    async def _keep_alive(self) -> None:
        """A comment now and then, so proxies keep the response open and a dead peer shows;
        and the end of a connection whose client stopped POSTing (its keepalives too)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(settings.CHAT_FALLBACK_KEEPALIVE_SECONDS)
            if loop.time() - self.last_post > settings.CHAT_FALLBACK_IDLE_SECONDS:
                self.done.set()
                return
            if self.started:
                await self._write(b": keepalive\n\n")
