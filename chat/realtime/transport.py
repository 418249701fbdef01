"""The server's own `send`, for the frames a socket receives most: room broadcasts.

Channels' session middleware wraps `send` to save the session on HTTP responses and on the
WebSocket accept; for every other message it still looks the session up and checks whether
it changed. A broadcast frame has nothing to do with the session, so the fan-out uses the
server's send directly: this outermost middleware puts it in the scope, which inner
middlewares copy along.
"""

from collections.abc import Awaitable
from typing import Any

from channels.middleware import BaseMiddleware

SCOPE_KEY = "chat.raw_send"


class RawSendMiddleware(BaseMiddleware):
    def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Awaitable[Any]:
        """Adds the key to the server's own scope rather than to a copy, and returns the
        inner app's awaitable rather than awaiting it: an idle socket holds its scope and
        each middleware's frame for as long as it is open, and this one needs neither. The
        scope is the connection's own (the server, or URLRouter, makes one per connection)
        and no one above reads this key."""
        scope[SCOPE_KEY] = send
        return self.inner(scope, receive, send)
