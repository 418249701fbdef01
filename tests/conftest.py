"""Fixtures and factories shared by the suite."""

import asyncio
import collections
import itertools
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import SyncToAsync
from channels.db import database_sync_to_async
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import connections
from django.db.models import F
from django.test import Client

from chat.models import Message, Room
from chatsite.asgi import application
from tests.protocol import check_server_frame

HOST = "localhost"  # the Host header of a test handshake; ORIGIN is its page's origin
ORIGIN = "http://localhost"
RECEIVE_TIMEOUT = 3
PASSWORD = "correct-horse-battery-9"
# Every way a room name can slugify into the direct-message namespace (chat.models),
# fullwidth letters included.
DM_LOOKALIKE_NAMES = [
    "Dm 3 5",
    "dm-3-5",
    "DM_3_5",
    "\uff44\uff4d \uff13 \uff15",
    "dm",
    "Dm-anything",
]


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings: None) -> None:
    """Close connections after each unit of work, so threads that ran database_sync_to_async
    leave none open to block the test database's teardown (PostgreSQL refuses to drop it)."""
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0


@pytest.fixture(scope="session", autouse=True)
def close_worker_thread_connections(django_db_setup: None) -> Iterator[None]:
    """Before the test database is dropped, close the connection of the thread that ran
    database_sync_to_async (PostgreSQL refuses to drop a database still in use)."""
    yield
    SyncToAsync.single_thread_executor.submit(connections.close_all).result(timeout=30)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    """PBKDF2 costs each test user ~0.2 s; the tests are about chat, not hashing (the live
    servers, separate processes, keep the real hasher, and so do their few users)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def fresh_realtime_state(settings: Any) -> None:
    """Each test gets a new in-memory channel layer (bound to its event loop) and in-process
    presence, even where REDIS_URL is set (tests that want Redis use it explicitly); the
    fan-out and presence registries are per layer and per loop, so they are new too."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "chat.realtime.layers.InProcessChannelLayer"}}
    settings.CHAT_PRESENCE_REDIS_URL = ""
    settings.CHAT_LIMITS_REDIS_URL = ""
    settings.CHAT_RATE_LIMIT = "off"  # tests of the limits turn it on
    settings.CHAT_TYPING_RATE_LIMIT = "off"
    settings.CHAT_JOIN_RATE_LIMIT = "off"
    settings.CHAT_HISTORY_RATE_LIMIT = "off"
    channel_layers.backends.clear()


@pytest.fixture
def make_user(db: None) -> Callable[..., AbstractBaseUser]:
    counter = itertools.count(1)

    def make(username: str | None = None, **extra: Any) -> AbstractBaseUser:
        name = username or f"user{next(counter)}"
        return get_user_model().objects.create_user(username=name, password=PASSWORD, **extra)

    return make


@pytest.fixture
def alice(make_user: Callable[..., AbstractBaseUser]) -> AbstractBaseUser:
    return make_user("alice")


@pytest.fixture
def bob(make_user: Callable[..., AbstractBaseUser]) -> AbstractBaseUser:
    return make_user("bob")


@pytest.fixture
def staff(make_user: Callable[..., AbstractBaseUser]) -> AbstractBaseUser:
    return make_user("moderator", is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client_for(staff: AbstractBaseUser) -> Client:
    """A Django test client signed in as the staff user (a superuser)."""
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def general(db: None) -> Room:
    """The public room every fresh install has (a data migration makes it; transactional
    tests flush the database afterwards, so make it again when it is gone)."""
    room, _ = Room.objects.get_or_create(
        slug="general", defaults={"name": "General", "topic": "Say hello to everyone."}
    )
    return room


@pytest.fixture
def make_room(db: None) -> Callable[..., Room]:
    def make(slug: str, *, members: tuple[AbstractBaseUser, ...] = (), **fields: Any) -> Room:
        fields.setdefault("name", slug.replace("-", " ").title())
        room = Room.objects.create(slug=slug, **fields)
        room.members.add(*members)
        return room

    return make


def post_messages(room: Room, author: AbstractBaseUser, count: int) -> list[Message]:
    """Store `count` messages directly, numbered after the room's counter (fast setup)."""
    start = Room.objects.get(pk=room.pk).last_seq
    rows = Message.objects.bulk_create(
        Message(room=room, author=author, body=f"message {start + i}", seq=start + i, rev=start + i)
        for i in range(1, count + 1)
    )
    Room.objects.filter(pk=room.pk).update(last_seq=F("last_seq") + count)
    return rows


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
    checked against the protocol's schema (tests/protocol.py)."""

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
async def connect() -> AsyncIterator[Callable[..., Any]]:
    """Open sockets to the real ASGI application the way a browser does; closes leftovers."""
    sockets: list[Socket] = []

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


@pytest.fixture(autouse=True)
def fresh_cache(settings: Any) -> None:
    """Each test gets an empty in-process cache (the login throttle counts in it), even where
    REDIS_URL is set; tests that want Redis use it explicitly."""
    from django.core.cache import caches

    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "tests"}
    }
    caches["default"].clear()
