"""The HTTP fallback, driven the way a WebsocketCommunicator drives the socket: the stream
(`GET /fallback/chat/`) runs through the real ASGI application, and frames are POSTed through
Django's async test client, so a test `Socket` can speak either transport."""

# ruff: noqa: ASYNC109 - the methods mirror WebsocketCommunicator's, timeout arguments included

import asyncio
import contextlib
import json
from typing import Any

from django.core import signing
from django.test import AsyncClient

from chat.realtime import fallback
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

    def get_scope(self, path: str, extra: list[tuple[bytes, bytes]] = ()) -> dict[str, Any]:
        """The ASGI scope of a GET of `path` from this client (its headers, and `extra`)."""
        return {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [*self.headers, *extra],
            "client": (self.address, 50000),
            "server": ("testserver", 80),
        }

    async def connect(self, timeout: float = 3) -> tuple[bool, int | None]:
        scope = self.get_scope("/fallback/chat/")
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


class PollCommunicator(FallbackCommunicator):
    """The fallback's long-polling mode (`GET /fallback/chat/poll/`), for proxies that buffer
    the stream: a loop of polls, each acking the frames it already has, feeds the same
    output queue; POSTs as for the stream."""

    def __init__(self, headers: list[tuple[bytes, bytes]], address: str = "127.0.0.1") -> None:
        super().__init__(headers, address)
        self.received = 0  # the number of the last frame taken from an answer
        self.answers: list[dict[str, Any]] = []  # every poll's answer, in order
        self.polls = 0
        self.session: dict[str, Any] = {}

    async def request(
        self, extra: list[tuple[bytes, bytes]], *, timeout: float = 60
    ) -> tuple[int, Any]:
        """One GET of the poll endpoint through the ASGI application: status and JSON."""
        scope = self.get_scope("/fallback/chat/poll/", extra)
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        await inbox.put({"type": "http.request", "body": b"", "more_body": False})
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        app = asyncio.create_task(application(scope, inbox.get, send))
        try:
            await asyncio.wait_for(asyncio.shield(app), timeout)
        except (TimeoutError, asyncio.CancelledError):
            await inbox.put({"type": "http.disconnect"})  # the client gives up on it
            with contextlib.suppress(Exception):
                await asyncio.wait_for(app, 2)
            raise
        status = next(m["status"] for m in sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body.decode()

    async def poll(self, ack: int | None = None, *, timeout: float = 60) -> tuple[int, Any]:
        """One poll for the frames after `ack` (by default, the last one taken)."""
        self.polls += 1
        ack = self.received if ack is None else ack
        return await self.request(
            [(b"x-chat-session", (self.token or "").encode()), (b"x-chat-ack", str(ack).encode())],
            timeout=timeout,
        )

    async def connect(self, timeout: float = 3) -> tuple[bool, int | None]:
        status, answer = await self.request([], timeout=timeout)
        if status != 200:
            self.status = status
            return False, status
        self.status = 200
        self.session = answer["session"]
        self.token = self.session["token"]
        self.opened.set()
        await self._take(answer)
        self.task = asyncio.create_task(self._poll_forever())
        return True, None

    async def _take(self, answer: dict[str, Any]) -> None:
        self.answers.append(answer)
        for number, frame in enumerate(answer["frames"], start=answer["first"]):
            if number > self.received:
                self.received = number
                await self.output_queue.put({"type": "websocket.send", "text": json.dumps(frame)})
        if answer["close"] is not None:
            self.response_ended = True
            await self.output_queue.put({"type": "websocket.close", "code": answer["close"]})

    async def _poll_forever(self) -> None:
        while not self.response_ended:
            status, answer = await self.poll()
            if status != 200:
                self.status = status
                self.response_ended = True
                await self.output_queue.put({"type": "websocket.close", "code": 1006})
                return
            await self._take(answer)

    async def disconnect(self, code: int = 1000, timeout: float = 3) -> None:
        """The page leaves: it stops polling and says so in a POST (X-Chat-Close)."""
        if self.task is None:
            return
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task
        self.task = None
        if not self.response_ended:
            response = await self.post([], **{"X-Chat-Close": "1"})
            if response.status_code == 202:
                await self.ended(timeout)

    async def ended(self, timeout: float = 3) -> None:
        """Wait for the server's side of the connection to end, its cleanup done."""
        channel = signing.loads(self.token or "", salt=fallback.SALT)["c"]
        tasks = [task for conn, task in fallback.polling.items() if conn.channel == channel]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
