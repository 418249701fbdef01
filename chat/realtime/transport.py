"""How frames reach a socket besides the consumer's own `send`.

- Broadcasts, the frames a socket receives most, go by the server's own `send`. Channels'
  session middleware wraps `send` to save the session on HTTP responses and on the
  WebSocket accept; for every other message it still looks the session up and checks
  whether it changed. A broadcast frame has nothing to do with the session, so the fan-out
  uses the server's send directly: the outermost middleware below puts it in the scope,
  which inner middlewares copy along.
- Pages, the frames of messages a client asked for (`joined`, `history`, `thread`), go by
  `page_send`: each may alone be larger than what a connection may hold unread before the
  server drops it (CHAT_SOCKET_MAX_BUFFER_BYTES), and a tab that reconnects asks for one
  per room at once. A page is sent once the connection has taken all but
  CHAT_PAGE_LOW_WATER_BYTES of what it holds, and is not counted against the cap until it
  is taken: daphne's connections through chatsite/patches/daphne_limits.py, the HTTP
  fallback's through its own connection (PAGE_KEY in the socket's scope).
"""

from collections.abc import Awaitable, Callable
from typing import Any

from channels.middleware import BaseMiddleware

from chatsite.patches import daphne_limits

SCOPE_KEY = "chat.raw_send"
PAGE_KEY = "chat.page_send"

Send = Callable[[dict[str, Any]], Awaitable[None]]


def page_send(scope: dict[str, Any], send: Send) -> Send:
    """The `send` for a connection's pages: its HTTP fallback connection's, daphne's paced
    one, or else `send` itself (another server: its own flow control applies)."""
    return scope.get(PAGE_KEY) or paced(send)


def paced(send: Send) -> Send:
    """`send` for pages: daphne's paced one if `send` is daphne's, else `send` itself."""
    return daphne_limits.paced(send) or send


class RawSendMiddleware(BaseMiddleware):
    def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Awaitable[Any]:
        """Adds the key to the server's own scope rather than to a copy, and returns the
        inner app's awaitable rather than awaiting it: an idle socket holds its scope and
        each middleware's frame for as long as it is open, and this one needs neither. The
        scope is the connection's own (the server, or URLRouter, makes one per connection)
        and no one above reads this key."""
        scope[SCOPE_KEY] = send
        return self.inner(scope, receive, send)
