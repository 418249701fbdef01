"""The HTTP fallback, driven the way a WebsocketCommunicator drives the socket: the stream
(`GET /fallback/chat/`) runs through the real ASGI application, and frames are POSTed through
Django's async test client, so a test `Socket` can speak either transport."""

# ruff: noqa: ASYNC109 - the methods mirror WebsocketCommunicator's, timeout arguments included

import asyncio
import contextlib
import json
from typing import Any

from django.test import AsyncClient

from chatsite.asgi import application


class FallbackCommunicator:
    """What tests/support/sockets.py's Socket needs of a communicator, over HTTP."""

    def __init__(self, headers: list[tuple[bytes, bytes]], address: str = "127.0.0.1") -> None:
        self.headers = headers
        self.address = address
        self.output_queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.http_input: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.status: int | None = None
        self.token: str | None = None
        self.opened = asyncio.Event()
        self.buffer = b""
        self.task: asyncio.Task | None = None
        self.response_ended = False
        self.batch = 0  # POSTs numbered so far
        header = dict(headers)
        self.client = AsyncClient(
            headers={"host": header[b"host"].decode()},
            REMOTE_ADDR=address,
        )
        if b"cookie" in header:
            name, _, value = header[b"cookie"].decode().partition("=")
            self.client.cookies[name] = value

    async def connect(self, timeout: float = 3) -> tuple[bool, int | None]:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/fallback/chat/",
            "raw_path": b"/fallback/chat/",
            "root_path": "",
            "query_string": b"",
            "headers": self.headers,
            "client": (self.address, 50000),
            "server": ("testserver", 80),
        }
        await self.http_input.put({"type": "http.request", "body": b"", "more_body": False})
        self.task = asyncio.create_task(application(scope, self.http_input.get, self._send))
        ended = asyncio.create_task(self._response_end())
        opened = asyncio.create_task(self.opened.wait())
        await asyncio.wait([opened, ended], timeout=timeout, return_when="FIRST_COMPLETED")
        ended.cancel()
        opened.cancel()
        return self.opened.is_set(), None if self.opened.is_set() else self.status

    async def _response_end(self) -> None:
        while not self.response_ended:  # noqa: ASYNC110 - set by the app's send
            await asyncio.sleep(0.01)

    async def _send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            return
        self.buffer += message.get("body", b"")
        while b"\n\n" in self.buffer:
            event, self.buffer = self.buffer.split(b"\n\n", 1)
            await self._event(event.decode())
        if not message.get("more_body"):
            self.response_ended = True

    async def _event(self, text: str) -> None:
        """Queue what the event carries; a full queue holds the server's send, as a full TCP
        buffer would."""
        kind, data = "message", []
        for line in text.split("\n"):
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data.append(line.removeprefix("data: "))
        if not data:
            return  # a keepalive comment
        payload = "\n".join(data)
        if kind == "session":
            self.token = json.loads(payload)["token"]
            self.opened.set()
        elif kind == "close":
            code = json.loads(payload)["code"]
            await self.output_queue.put({"type": "websocket.close", "code": code})
        else:
            await self.output_queue.put({"type": "websocket.send", "text": payload})

    async def post(self, frames: list[Any], **extra: Any) -> Any:
        """POST frames to the connection, numbered as the page numbers them; the response."""
        self.batch += 1
        headers = {"X-Chat-Session": self.token or "", "X-Chat-Batch": str(self.batch)}
        return await self.client.post(
            "/fallback/chat/send/",
            data=json.dumps(frames),
            content_type="application/json",
            headers={**headers, **extra},
        )

    async def send_to(self, text_data: str) -> None:
        response = await self.post([json.loads(text_data)])
        assert response.status_code == 202, response.content

    async def receive_output(self, timeout: float = 1) -> dict[str, Any]:
        return await asyncio.wait_for(self.output_queue.get(), timeout)

    async def receive_json_from(self, timeout: float = 1) -> Any:
        message = await self.receive_output(timeout)
        assert message["type"] == "websocket.send", message
        return json.loads(message["text"])

    async def receive_nothing(self, timeout: float = 0.1) -> bool:
        await asyncio.sleep(timeout)
        return self.output_queue.empty()

    async def disconnect(self, code: int = 1000, timeout: float = 3) -> None:
        """The browser closes the stream (EventSource.close()); the app cleans up."""
        if self.task is None:
            return
        await self.http_input.put({"type": "http.disconnect"})
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(self.task), timeout)
        if not self.task.done():
            self.task.cancel()
