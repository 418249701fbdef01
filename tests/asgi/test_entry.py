"""The WebSocket entry (chat/realtime/entry.py): who a handshake belongs to, in every state its
session cookie can be in; which paths it serves; and what an open socket keeps of it."""

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.compatibility import guarantee_single_callable
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session

from chat.realtime import entry
from chatsite.asgi import application
from tests.support.sockets import HOST, ORIGIN, RECEIVE_TIMEOUT, Socket, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


def communicator(path: str = "/ws/chat/", *headers: tuple[bytes, bytes]) -> WebsocketCommunicator:
    """A handshake as a page of the site makes it, with any more `headers`."""
    opened = WebsocketCommunicator(
        application,
        path,
        headers=[(b"host", HOST.encode()), (b"origin", ORIGIN.encode()), *headers],
    )
    opened.scope["client"] = ("127.0.0.1", 50000)
    return opened


async def open_socket(cookie: str | None) -> Socket:
    """A socket whose handshake carries `cookie` as its whole Cookie header (or none)."""
    opened = communicator("/ws/chat/", *([(b"cookie", cookie.encode())] if cookie else []))
    connected, _ = await opened.connect(timeout=RECEIVE_TIMEOUT)
    assert connected
    return Socket(opened)


async def posts_as(socket: Any) -> str:
    """Whom the socket posts as: the user's name, or "anonymous" if it may only read."""
    await socket.join("general")
    reply = await socket.request(
        {"type": "send", "room": "general", "body": "who am I?", "client_id": "who"}
    )
    if reply["type"] == "error":
        assert reply["code"] == "auth_required"
        return "anonymous"
    message = await socket.recv_until("message")
    return message["message"]["author"]


def _password_changed(user: Any) -> None:
    user.set_password("a-new-password-123")
    user.save()


def _deactivated(user: Any) -> None:
    user.is_active = False
    user.save()


def _deleted(user: Any) -> None:
    get_user_model().objects.filter(pk=user.pk).delete()


# (cookie header made from alice's own session id, what happens to her first, who it is)
SESSIONS: dict[str, tuple[Callable[[str], str | None], Callable[[Any], None] | None, str]] = {
    "no cookie": (lambda key: None, None, "anonymous"),
    "her session": (lambda key: f"sessionid={key}", None, "alice"),
    "among other cookies": (lambda key: f"csrftoken=a; sessionid={key}; x=y", None, "alice"),
    "under another name": (lambda key: f"session={key}", None, "anonymous"),
    "a key no session has": (lambda key: "sessionid=" + "x" * 32, None, "anonymous"),
    "a key too short to be one": (lambda key: "sessionid=abc", None, "anonymous"),
    "an empty key": (lambda key: "sessionid=", None, "anonymous"),
    "a cookie header that is noise": (lambda key: ";;=;\x7f", None, "anonymous"),
    "her password changed since": (lambda key: f"sessionid={key}", _password_changed, "anonymous"),
    "her account deactivated": (lambda key: f"sessionid={key}", _deactivated, "anonymous"),
    "her account deleted": (lambda key: f"sessionid={key}", _deleted, "anonymous"),
}


@pytest.mark.parametrize(("cookie_for", "change", "expected"), SESSIONS.values(), ids=SESSIONS)
async def test_a_handshake_belongs_to_whom_its_session_cookie_says_and_no_one_else(
    alice, general, cookie_for, change, expected
):
    key = await database_sync_to_async(session_cookie)(alice)
    if change is not None:
        await database_sync_to_async(change)(alice)

    socket = await open_socket(cookie_for(key))

    assert await posts_as(socket) == expected
    await socket.close()


async def test_a_session_whose_password_changed_is_ended_as_a_page_would_end_it(
    connect, alice, general
):
    key = await database_sync_to_async(session_cookie)(alice)
    await database_sync_to_async(_password_changed)(alice)

    socket = await connect(cookie=key)

    assert await posts_as(socket) == "anonymous"
    assert not await Session.objects.filter(session_key=key).aexists()  # flushed
    await socket.close()


async def test_only_a_handshake_with_a_session_looks_a_user_up(connect, alice, monkeypatch):
    looked_up = []
    get_user = entry.get_user

    async def recording(scope):
        looked_up.append(scope["session"].session_key)
        return await get_user(scope)

    monkeypatch.setattr(entry, "get_user", recording)
    key = await database_sync_to_async(session_cookie)(alice)

    await (await connect()).close()
    await (await connect(cookie="x" * 32)).close()
    await (await connect(cookie=key)).close()

    assert looked_up == ["x" * 32, key]


PATHS = [
    ("/ws/chat/", "", True),
    ("/ws/chat/?since=1", "", True),
    ("/chat/ws/chat/", "/chat", True),  # served under a prefix (daphne --root-path)
    ("/ws/chat", "", False),
    ("/ws/chat/x/", "", False),
    ("/ws/chat//", "", False),
    ("/ws/other/", "", False),
    ("/", "", False),
    ("/fallback/chat/", "", False),
    ("/ws/chat/", "/chat", False),  # outside the prefix
]


@pytest.mark.parametrize(("path", "root_path", "served"), PATHS)
async def test_the_chat_is_served_at_its_path_and_any_other_handshake_is_refused(
    caplog, path, root_path, served
):
    handshake = communicator(path)
    handshake.scope["root_path"] = root_path

    connected, _ = await handshake.connect(timeout=RECEIVE_TIMEOUT)

    assert connected is served
    await handshake.disconnect()
    assert not [record for record in caplog.records if record.levelname in ("ERROR", "CRITICAL")]


async def test_an_open_socket_keeps_one_coroutine_of_its_own_above_the_consumer(general):
    inbox: asyncio.Queue = asyncio.Queue()
    sent: asyncio.Queue = asyncio.Queue()
    scope = {
        "type": "websocket",
        "path": "/ws/chat/",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", HOST.encode()), (b"origin", ORIGIN.encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "subprotocols": [],
    }
    running = application(scope, inbox.get, sent.put)
    task = asyncio.ensure_future(running)
    await inbox.put({"type": "websocket.connect"})
    assert (await asyncio.wait_for(sent.get(), RECEIVE_TIMEOUT))["type"] == "websocket.accept"
    await asyncio.sleep(0.1)  # the consumer settles into waiting for the next message

    chain, awaiting = [], running
    while hasattr(awaiting, "cr_code"):
        chain.append(awaiting.cr_code.co_qualname)
        awaiting = awaiting.cr_await

    # What stays alive for as long as the socket is open: no middleware's frame.
    assert chain == ["SocketEntry._run", "ChatConsumer.__call__", "Queue.get"]
    await inbox.put({"type": "websocket.disconnect", "code": 1000})
    await asyncio.wait_for(task, RECEIVE_TIMEOUT)


def test_servers_take_the_application_for_an_asgi_3_one():
    # daphne and channels' runserver wrap whatever they take for an ASGI 2 application, and
    # uvicorn asks the same question.
    assert guarantee_single_callable(application) is application
