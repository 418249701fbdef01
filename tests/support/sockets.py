"""Sockets to the real ASGI application, opened the way a browser opens them (a session
cookie, an Origin header), speaking JSON frames checked against the protocol's schema."""

import asyncio
import collections
import itertools
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AbstractBaseUser
from django.db import connections
from django.test import Client

from chatsite.asgi import application
from tests.support.fallback import FallbackCommunicator, PollCommunicator
from tests.support.protocol import check_server_frame

HOST = "localhost"  # the Host header of a test handshake; ORIGIN is its page's origin
ORIGIN = "http://localhost"
RECEIVE_TIMEOUT = 3


def encoding_like_daphne(app: Any) -> Any:
    """The application behind a send that encodes each text frame as UTF-8 first, as daphne
    does, so an unencodable frame raises in the app, where it would in production."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def encoding_send(message: dict[str, Any]) -> None:
            if message.get("text") is not None:
                message["text"].encode()
            await send(message)

        await app(scope, receive, encoding_send)

    return wrapped


def session_cookie(user: AbstractBaseUser) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


class Socket:
    """A test-side browser tab: a WebsocketCommunicator speaking JSON frames.

    Broadcasts and replies may arrive in either order, so frames read while waiting for a
    reply are kept, in order, for the next `recv` or `expect`. Every frame received is
    checked against the protocol's schema (tests/support/protocol.py)."""

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.communicator = communicator
        self.open = True
        self._refs = itertools.count(1)
        self.unread: collections.deque[dict[str, Any]] = collections.deque()

    async def send(self, frame: dict[str, Any] | str) -> None:
        text = frame if isinstance(frame, str) else json.dumps(frame)
        await self.communicator.send_to(text_data=text)

    async def recv(self) -> dict[str, Any]:
        if self.unread:
            return self.unread.popleft()
        return await self._receive()

    async def _receive(self) -> dict[str, Any]:
        frame = await self.communicator.receive_json_from(timeout=RECEIVE_TIMEOUT)
        check_server_frame(frame)
        return frame

    async def poll(self, seconds: float) -> dict[str, Any] | None:
        """The next frame, or None after `seconds`; unlike recv, running out of time leaves
        the application running (the communicator cancels it when receive_from times out)."""
        if self.unread:
            return self.unread.popleft()
        try:
            message = await asyncio.wait_for(self.communicator.output_queue.get(), seconds)
        except TimeoutError:
            return None
        assert message["type"] == "websocket.send", message
        frame = json.loads(message["text"])
        check_server_frame(frame)
        return frame

    async def request(self, frame: dict[str, Any]) -> dict[str, Any]:
        """Send a frame with a fresh ref and return the reply that echoes it."""
        ref = f"t{next(self._refs)}"
        await self.send({**frame, "ref": ref})
        while True:
            reply = await self._receive()
            if reply.get("ref") == ref:
                return reply
            self.unread.append(reply)

    async def expect(self, kind: str) -> dict[str, Any]:
        """The next frame, which must be of type `kind`."""
        frame = await self.recv()
        assert frame["type"] == kind, frame
        return frame

    async def recv_until(self, kind: str) -> dict[str, Any]:
        """The first frame of type `kind`, skipping others (presence, typing…)."""
        while (frame := await self.recv())["type"] != kind:
            pass
        return frame

    async def join(self, room: str, **extra: Any) -> dict[str, Any]:
        reply = await self.request({"type": "join", "room": room, **extra})
        assert reply["type"] == "joined", reply
        return reply

    async def nothing(self) -> bool:
        """True if no frame is waiting, read or unread."""
        if self.unread:
            return False
        return await self.communicator.receive_nothing(timeout=0.2)

    async def close(self) -> None:
        if self.open:
            self.open = False
            await self.communicator.disconnect()


@pytest.fixture
def transport() -> str:
    """How `connect` reaches the server: "websocket", "http" (the fallback's stream, for
    networks that block WebSockets) or "poll" (its long-polling, where a proxy buffers the
    stream); a test parametrized over `transport` runs on each."""
    return "websocket"


@pytest.fixture
async def connect(transport: str, settings: Any) -> AsyncIterator[Callable[..., Any]]:
    """Open sockets to the real ASGI application the way a browser does; closes leftovers."""
    sockets: list[Socket] = []
    if transport != "websocket":
        # fallback.js POSTs a keepalive while the page is open; these clients do not, so a
        # test's reader that only listens would be ended as abandoned once a loaded machine
        # stretches the test past the idle limit (60 s). test_fallback.py sets the limits
        # it tests.
        settings.CHAT_FALLBACK_IDLE_SECONDS = 3600

    async def open_socket(
        user: AbstractBaseUser | None = None,
        *,
        origin: str | None = ORIGIN,
        cookie: str | None = None,
        host: str = HOST,
        address: str = "127.0.0.1",
    ) -> Socket:
        """A socket signed in as `user` (a session of its own, or the `cookie` given)."""
        headers = [(b"host", host.encode())]
        if origin is not None:
            headers.append((b"origin", origin.encode()))
        if user is not None and cookie is None:
            cookie = await database_sync_to_async(session_cookie)(user)
        if cookie is not None:
            headers.append((b"cookie", f"sessionid={cookie}".encode()))
        if transport == "http":
            communicator: Any = FallbackCommunicator(headers, address)
        elif transport == "poll":
            communicator = PollCommunicator(headers, address)
        else:
            communicator = WebsocketCommunicator(application, "/ws/chat/", headers=headers)
            communicator.scope["client"] = (address, 50000)
        connected, _ = await communicator.connect(timeout=RECEIVE_TIMEOUT)
        if not connected:
            raise ConnectionRefusedError("handshake refused")
        socket = Socket(communicator)
        sockets.append(socket)
        return socket

    yield open_socket
    for socket in sockets:
        await socket.close()
    # The thread that ran database_sync_to_async keeps its connection otherwise, and
    # PostgreSQL will not drop a test database that has one open.
    await database_sync_to_async(connections.close_all)()


async def joined_with_presence(socket: Socket, room: str, **extra: Any) -> dict[str, Any]:
    """Join as a signed-in user's first socket: `joined`, then the room's presence broadcast."""
    reply = await socket.join(room, **extra)
    presence = await socket.expect("presence")
    assert presence["online"] is True
    return reply


async def frames_of(socket: Socket, kind: str, count: int) -> list[dict[str, Any]]:
    """The `count` frames of type `kind` the socket is to get, then any more of that kind
    that reached it before the answer to a ping sent once those had come. An event is
    published by the process's publisher after its transaction commits, so it may come
    after the answer to a ping sent earlier (frames_until_pong): waiting for the expected
    ones first is what gives "and no more" its meaning."""
    seen = [await socket.recv_until(kind) for _ in range(count)]
    return seen + [f for f in await frames_until_pong(socket) if f["type"] == kind]


async def frames_until_pong(socket: Socket) -> list[dict[str, Any]]:
    """Every frame that reached the socket before the answer to a ping (what a socket heard
    so far of what was sent to it on the event loop before the ping)."""
    await socket.send({"type": "ping", "ref": "mark"})
    seen = []
    while (frame := await socket.recv())["type"] != "pong":
        seen.append(frame)
    return seen
