"""From a WebSocket handshake to the chat consumer: the Origin, the path, the session, the user.

This did a stack of five ASGI applications: the Origin check, channels' cookie, session and
auth middlewares, and its URL router. Each awaited the next for as long as the socket was
open, so an idle socket kept five coroutine frames and four copies of its scope (about 5 KB
of its memory: docs/performance.md, Analysis item 18). `SocketEntry` does the same work in
one call: it checks the Origin and the path, adds the session to the server's own scope, and
returns one coroutine, which finds the socket's user and then runs the consumer.

The user is found as channels' AuthMiddleware finds it (`channels.auth.get_user`, which
checks the session's password hash and flushes a session that fails), in the session that
Django's SessionMiddleware would load for a page (SESSION_ENGINE, SESSION_COOKIE_NAME).
Nothing here saves the session: a socket cannot set a cookie, and channels' session wrapper
did not save it for any WebSocket message either. The HTTP fallback keeps channels' stack
(chat/realtime/routing.py).
"""

from collections.abc import Awaitable
from importlib import import_module
from typing import Any

from channels.auth import get_user
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import parse_cookie

from .consumers import ChatConsumer
from .origins import origin_allowed


def session_key(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The session cookie's value in a handshake's headers, as Django reads it for a page."""
    for name, value in headers:
        if name == b"cookie":
            return parse_cookie(value.decode("latin1")).get(settings.SESSION_COOKIE_NAME)
    return None


class SocketEntry:
    """The ASGI application for WebSockets: ChatConsumer at `path`; any other path, or a
    handshake from another origin, is refused (403)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.session_store = import_module(settings.SESSION_ENGINE).SessionStore

    def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Awaitable[None]:
        """The consumer's coroutine, returned rather than awaited (so is the refusal's)."""
        path, prefix = scope["path"], scope.get("root_path", "")
        if path != prefix + self.path or not origin_allowed(scope):
            return WebsocketDenier()(scope, receive, send)
        scope["session"] = self.session_store(session_key(scope["headers"]))
        return self._run(scope, receive, send)

    @staticmethod
    async def _run(scope: dict[str, Any], receive: Any, send: Any) -> None:
        # Without a session there is no one to look up (get_user would say so after a trip
        # to a database thread): an anonymous reader's handshake stays on the event loop.
        session = scope["session"]
        scope["user"] = await get_user(scope) if session.session_key else AnonymousUser()
        await ChatConsumer()(scope, receive, send)
