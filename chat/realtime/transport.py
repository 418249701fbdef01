"""The server's own `send`, for the frames a socket receives most: room broadcasts.

Channels' session middleware wraps `send` to save the session on HTTP responses and on the
WebSocket accept; for every other message it still looks the session up and checks whether
it changed. A broadcast frame has nothing to do with the session, so the fan-out uses the
server's send directly: this outermost middleware puts it in the scope, which inner
middlewares copy along.
"""

from typing import Any

from channels.middleware import BaseMiddleware

SCOPE_KEY = "chat.raw_send"


class RawSendMiddleware(BaseMiddleware):
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        return await self.inner({**scope, SCOPE_KEY: send}, receive, send)
