"""Clients of a live site over real TCP: a `websockets` socket opened the way a browser
opens it, a transport that hands the JS client's frames to one, and a raw socket that reads
only when the test says (a stalled tab, a flooding script)."""

import asyncio
import base64
import contextlib
import http.client
import json
import os
import socket
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from tests.support.live_server import LiveSite

TIMEOUT = 10  # seconds for any one step over the network


class SocketTransport:
    """Hands the JS client's frames to a real socket; a cut socket just loses them, as a
    browser's would (the client resends after reconnecting)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send(self, frame: dict[str, Any]) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(json.dumps(frame))


async def open_socket(site: LiveSite, sessionid: str | None = None) -> ClientConnection:
    """A socket to the site (anything with base_url and ws_url), with a session if given."""
    headers = {"Cookie": f"sessionid={sessionid}"} if sessionid else {}
    return await connect(
        site.ws_url,
        origin=Origin(site.base_url),
        additional_headers=headers,
        open_timeout=TIMEOUT,
        close_timeout=1,
    )


def rss_bytes(pid: int) -> int:
    """The process's resident memory, from /proc/PID/status (VmRSS, in kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


def text_frame(text: str) -> bytes:
    """A client's text frame. The masking key is zeros: valid framing, and the payload goes
    out as it is, so the client can push megabytes without work of its own."""
    payload = text.encode()
    n = len(payload)
    if n < 126:
        length = bytes([0x80 | n])
    elif n < 2**16:
        length = bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        length = bytes([0x80 | 127]) + n.to_bytes(8, "big")
    return b"\x81" + length + b"\x00\x00\x00\x00" + payload


class RawSocket:
    """A WebSocket client on a bare blocking TCP socket, so the test alone decides when, and
    whether, it reads: what a stalled tab or a hostile script does."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()

    @classmethod
    def open(
        cls, site: LiveSite, sessionid: str | None = None, *, rcvbuf: int | None = None
    ) -> "RawSocket":
        """Connect and complete the handshake the way a browser at the site would."""
        url = urllib.parse.urlsplit(site.ws_url)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:  # before connecting, so the advertised window is small too
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(TIMEOUT)
        sock.connect((url.hostname, url.port))
        key = base64.b64encode(os.urandom(16)).decode()
        cookie = f"Cookie: sessionid={sessionid}\r\n" if sessionid else ""
        sock.sendall(
            (
                f"GET {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\nOrigin: {site.base_url}\r\n{cookie}\r\n"
            ).encode()
        )
        raw = cls(sock)
        while b"\r\n\r\n" not in raw.buffer:
            raw._fill()
        head, _, rest = bytes(raw.buffer).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        raw.buffer = bytearray(rest)
        return raw

    @classmethod
    def open_stream(
        cls, site: LiveSite, sessionid: str | None = None, *, rcvbuf: int | None = None
    ) -> tuple["RawSocket", str]:
        """The HTTP fallback's stream on a bare socket, read up to its session event: the
        socket, which the test may then stop reading, and the connection's token."""
        url = urllib.parse.urlsplit(site.base_url)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(TIMEOUT)
        sock.connect((url.hostname, url.port))
        cookie = f"Cookie: sessionid={sessionid}\r\n" if sessionid else ""
        sock.sendall(f"GET /fallback/chat/ HTTP/1.1\r\nHost: {url.netloc}\r\n{cookie}\r\n".encode())
        raw = cls(sock)
        while (
            b'"token": "' not in raw.buffer
            or b"\n\n" not in raw.buffer.split(b"event: session")[-1]
        ):
            raw._fill()
        head = bytes(raw.buffer).split(b"\r\n\r\n", 1)[0]
        assert head.startswith(b"HTTP/1.1 200"), head
        token = bytes(raw.buffer).split(b'"token": "', 1)[1].split(b'"', 1)[0].decode()
        return raw, token

    def send(self, frame: dict[str, Any]) -> None:
        self.sock.sendall(text_frame(json.dumps(frame)))

    def recv(self) -> dict[str, Any]:
        """The next text frame from the server."""
        first, payload = self.next_frame()
        assert first == 0x81, f"not a text frame: {first:#x} {payload[:100]!r}"
        return json.loads(payload)

    def next_frame(self) -> tuple[int, bytes]:
        """The next frame's first byte (FIN and opcode) and payload; a server never masks
        its frames, and chatsite's never fragment."""
        header = self._take(2)
        n = header[1] & 0x7F
        if n == 126:
            n = int.from_bytes(self._take(2), "big")
        elif n == 127:
            n = int.from_bytes(self._take(8), "big")
        return header[0], self._take(n)

    def join(self, room: str) -> dict[str, Any]:
        self.send({"type": "join", "room": room})
        while (frame := self.recv())["type"] != "joined":
            pass
        return frame

    def drain(self) -> tuple[list[dict[str, Any]], bool]:
        """Read until the connection ends or goes quiet: the frames, and whether it ended."""
        frames = []
        try:
            while True:
                frames.append(self.recv())
        except (ConnectionError, EOFError):
            return frames, True
        except TimeoutError:
            return frames, False

    def close(self) -> None:
        self.sock.close()

    def _take(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self._fill()
        taken = bytes(self.buffer[:n])
        del self.buffer[:n]
        return taken

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("the server closed the connection")
        self.buffer += data


class FallbackStream:
    """A connection over the HTTP fallback to a live server, on blocking sockets (run it in
    a thread): the stream from one base URL, its POSTs to any other (another worker)."""

    def __init__(
        self, base_url: str, sessionid: str | None = None, *, rcvbuf: int | None = None
    ) -> None:
        url = urllib.parse.urlsplit(base_url)
        self.cookie = f"sessionid={sessionid}" if sessionid else ""
        self.stream = http.client.HTTPConnection(url.hostname, url.port, timeout=TIMEOUT)
        if rcvbuf is not None:  # set before connecting, as RawSocket.open does
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.settimeout(TIMEOUT)
            sock.connect((url.hostname, url.port))
            self.stream.sock = sock
        self.stream.request("GET", "/fallback/chat/", headers={"Cookie": self.cookie})
        self.response = self.stream.getresponse()
        assert self.response.status == 200, self.response.status
        kind, data = self.next_event()
        assert kind == "session", (kind, data)
        self.token = data["token"]
        self.seen: list[dict[str, Any]] = []
        self.batch = 0  # POSTs numbered so far

    def next_event(self) -> tuple[str, Any]:
        """(event name, its JSON data), skipping keepalive comments."""
        kind, data = "message", None
        while True:
            line = self.response.readline().decode().rstrip("\n")
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data = json.loads(line.removeprefix("data: "))
            elif line == "" and data is not None:
                return kind, data
            elif line == "" and self.response.isclosed():
                raise EOFError("the stream ended")

    def post(self, base_url: str, frames: list[dict[str, Any]]) -> int:
        """POST frames to this connection through `base_url`; the response's status."""
        self.batch += 1
        return post_frames(base_url, self.token, self.cookie, frames, batch=self.batch)

    def until(self, kind: str, **match: Any) -> dict[str, Any]:
        """The first frame of type `kind` with the given fields, from those read past before
        or from the stream (frames it reads past are kept for later calls)."""

        def fits(frame: dict[str, Any]) -> bool:
            return frame.get("type") == kind and all(frame.get(k) == v for k, v in match.items())

        for frame in self.seen:
            if fits(frame):
                self.seen.remove(frame)
                return frame
        while not fits(frame := self.next_event()[1]):
            self.seen.append(frame)
        return frame

    def close(self) -> None:
        self.stream.close()


def post_frames(
    base_url: str,
    token: str,
    cookie: str,
    frames: list[dict[str, Any]],
    *,
    batch: int,
    close: bool = False,
) -> int:
    """POST frames to the fallback connection `token`, as the page does: numbered `batch`
    (from 1), with the session `cookie` (empty: anonymous) and a CSRF token of its own; the
    response's status."""
    csrf = _csrf_cookie(base_url)
    url = urllib.parse.urlsplit(base_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=TIMEOUT)
    cookies = "; ".join(c for c in (cookie, f"csrftoken={csrf}") if c)
    conn.request(
        "POST",
        "/fallback/chat/send/",
        body=json.dumps(frames),
        headers={
            "Content-Type": "application/json",
            "Cookie": cookies,
            "X-CSRFToken": csrf,
            "X-Chat-Session": token,
            "X-Chat-Batch": str(batch),
            **({"X-Chat-Close": "1"} if close else {}),
        },
    )
    status = conn.getresponse().status
    conn.close()
    return status


def _csrf_cookie(base_url: str) -> str:
    """A CSRF cookie value from the site's login page, as a browser's page has one."""
    with urllib.request.urlopen(f"{base_url}/accounts/login/", timeout=TIMEOUT) as response:
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            if name.strip() == "csrftoken":
                return rest.split(";", 1)[0]
    raise AssertionError("the login page set no csrftoken cookie")


class AsyncFallback:
    """A FallbackStream for asyncio tests, shaped like a socket: `recv()` the next frame
    (EOFError once the stream ended), `send(frame)` POSTs it (to `post_url`, another worker
    if given; a POST that fails is a frame lost, as on a cut socket), `close()`."""

    def __init__(self, stream: FallbackStream, post_url: str) -> None:
        self.stream = stream
        self.post_url = post_url
        self.frames: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        self.reading = loop.run_in_executor(None, self._read, loop)

    @classmethod
    async def open(
        cls, base_url: str, sessionid: str | None = None, *, post_url: str | None = None
    ) -> "AsyncFallback":
        stream = await asyncio.to_thread(FallbackStream, base_url, sessionid)
        return cls(stream, post_url or base_url)

    def _read(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            while (event := self.stream.next_event())[0] != "close":
                loop.call_soon_threadsafe(self.frames.put_nowait, event[1])
        except Exception:  # the stream broke
            pass
        loop.call_soon_threadsafe(self.frames.put_nowait, None)

    async def recv(self) -> dict[str, Any]:
        frame = await self.frames.get()
        if frame is None:
            raise EOFError("the stream ended")
        return frame

    async def send(self, frame: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):
            await asyncio.to_thread(self.stream.post, self.post_url, [frame])

    async def close(self) -> None:
        await asyncio.to_thread(self.stream.close)
        with contextlib.suppress(Exception):
            await self.reading


class AsyncPoll:
    """A long-polling fallback connection for asyncio tests, shaped like AsyncFallback:
    opened on `base_url`, its polls to `poll_url` and its POSTs to `post_url` (other workers,
    if given). `recv()` the next frame (EOFError once the connection ended: a `close` in an
    answer, or a poll refused, e.g. 410 when the connection's worker is gone)."""

    def __init__(self, base_url: str, sessionid: str | None, poll_url: str, post_url: str) -> None:
        self.cookie = f"sessionid={sessionid}" if sessionid else ""
        self.poll_url = poll_url
        self.post_url = post_url
        status, answer = _get_poll(base_url, {"Cookie": self.cookie})
        assert status == 200, (status, answer)
        self.token = answer["session"]["token"]
        self.received = 0
        self.batch = 0
        self.polls: list[str] = []  # the base URL of each poll, in order
        self.frames: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._take(answer)
        self.polling = asyncio.get_running_loop().create_task(self._poll_forever())

    @classmethod
    async def open(
        cls,
        base_url: str,
        sessionid: str | None = None,
        *,
        poll_url: str | None = None,
        post_url: str | None = None,
    ) -> "AsyncPoll":
        return cls(base_url, sessionid, poll_url or base_url, post_url or base_url)

    def _take(self, answer: dict[str, Any]) -> bool:
        """Queue the answer's frames not seen yet; False once it says the connection ended."""
        for number, frame in enumerate(answer["frames"], start=answer["first"]):
            if number > self.received:
                self.received = number
                self.frames.put_nowait(frame)
        return answer["close"] is None

    async def _poll_forever(self) -> None:
        try:
            while True:
                headers = {
                    "Cookie": self.cookie,
                    "X-Chat-Session": self.token,
                    "X-Chat-Ack": str(self.received),
                }
                self.polls.append(self.poll_url)
                status, answer = await asyncio.to_thread(_get_poll, self.poll_url, headers)
                if status != 200 or not self._take(answer):
                    break
        finally:
            self.frames.put_nowait(None)

    async def recv(self) -> dict[str, Any]:
        frame = await self.frames.get()
        if frame is None:
            raise EOFError("the connection ended")
        return frame

    async def send(self, frame: dict[str, Any]) -> None:
        self.batch += 1
        with contextlib.suppress(OSError):
            await asyncio.to_thread(
                post_frames, self.post_url, self.token, self.cookie, [frame], batch=self.batch
            )

    async def close(self) -> None:
        """Leave as the page does: stop polling, and say so in a POST."""
        self.polling.cancel()
        self.batch += 1
        with contextlib.suppress(OSError):
            await asyncio.to_thread(
                post_frames,
                self.post_url,
                self.token,
                self.cookie,
                [],
                batch=self.batch,
                close=True,
            )


def _get_poll(base_url: str, headers: dict[str, str]) -> tuple[int, Any]:
    url = urllib.parse.urlsplit(base_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    try:
        conn.request("GET", "/fallback/chat/poll/", headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    except (OSError, ValueError) as error:
        return 0, str(error)
    finally:
        conn.close()
