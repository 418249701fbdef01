"""Server memory under slow and flooding clients: daphne with the socket limits on and off,
and uvicorn (websockets), where chatsite's daphne patches do not apply.

Each scenario runs against a fresh server process (debug off, in-memory channel layer,
SQLite, `CHAT_RATE_LIMIT=off`): daphne once with the limits at their defaults and once with
both off (`CHAT_SOCKET_MAX_BUFFER_BYTES=0 CHAT_SOCKET_MAX_QUEUED_FRAMES=0`), and uvicorn
with the bounds of its own that bench/servers.py sets. The server's VmRSS
(/proc/PID/status) is read before the load and every 50 ms during it. In every scenario a
reader sits in general and reads everything (answering pings, as a browser does): what it
got, and how late, says whether the room kept being served.

- stalled: K anonymous sockets join general and never read (4 KiB receive buffer), while
  alice posts M messages of 12 kB, one after another, each acked before the next. Then the
  sockets are held open, still unread, until the server has dropped them all or --hold
  seconds pass. A socket counts as dropped once its TCP connection is no longer
  established (the server closed or aborted it); the time is from the first post.
- flood: F anonymous sockets push 60 kB frames (joins of a room that does not exist: a
  database lookup each) as fast as TCP takes them, reading nothing, for S seconds, while
  alice posts a message every 0.5 s and times its ack.

    .venv/bin/python bench/flood.py [--servers daphne,uvicorn] [--stalled 20]
                                    [--messages 1000] [--hold 75] [--flooders 4] [--seconds 8]

Prints a Markdown table (docs/security.md, "Slow and flooding clients", quotes one run).
All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import servers  # noqa: E402  (bench/, beside this script)

from tests.support.live_server import (  # noqa: E402
    CREATE_USERS,
    PASSWORD,
    LiveServer,
    LiveSite,
    _manage,
    login,
)
from tests.support.live_sockets import RawSocket, rss_bytes, text_frame  # noqa: E402

# (server, configuration, environment added to the server's)
CONFIGS = [
    ("daphne", "daphne, limits on (defaults: 1 MiB, 64 frames)", {}),
    (
        "daphne",
        "daphne, limits off",
        {"CHAT_SOCKET_MAX_BUFFER_BYTES": "0", "CHAT_SOCKET_MAX_QUEUED_FRAMES": "0"},
    ),
    ("uvicorn", "uvicorn + websockets (64 KiB frames, 64 queued), no patch", {}),
]
BODY = "\u20ac" * 3990  # 12 kB of UTF-8
FLOOD_FRAME = text_frame('{"type":"join","room":"no-such-room"}' + " " * (60_000 - 40))
MiB = 2**20


def log(message: str) -> None:
    print(f"[flood] {message}", file=sys.stderr, flush=True)


@contextmanager
def serving(
    folder: Path, static: Path, server: str, extra_env: dict[str, str]
) -> Iterator[LiveServer]:
    """A fresh database with alice, served by one `server` process until the block ends."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{folder / 'flood.sqlite3'}",
        "DJANGO_DEBUG": "0",
        "DJANGO_HTTPS": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_STATIC_ROOT": str(static),
        "DJANGO_SETTINGS_MODULE": "chatsite.settings",
        "CHAT_RATE_LIMIT": "off",
        "PYTHONUNBUFFERED": "1",
        **extra_env,
    }
    env.pop("REDIS_URL", None)
    _manage(env, "migrate", "--noinput")
    _manage(
        # alice alone, and no one staff (CREATE_USERS reads LIVE_STAFF since the admin tests).
        {**env, "LIVE_USERNAMES": "alice", "LIVE_PASSWORD": PASSWORD, "LIVE_STAFF": ""},
        "shell",
        "--no-imports",
        "-c",
        CREATE_USERS,
    )
    command = tuple(servers.COMMANDS[server]("{port}"))
    live = LiveServer(env=env, log_path=folder / "server.log", command=command)
    live.start()
    try:
        yield live
    finally:
        live.stop()


class Reader(RawSocket):
    """A client that reads like a browser: it answers the server's pings (uvicorn's
    websockets pings every 20 s whatever the traffic, and drops a socket that does not
    answer) and skips other control frames."""

    def recv(self) -> dict[str, Any]:
        while True:
            first, payload = self.next_frame()
            opcode = first & 0x0F
            if opcode == 0x9:  # ping: a pong with the same payload, masked with zeros
                self.sock.sendall(bytes([0x8A, 0x80 | len(payload)]) + b"\x00" * 4 + payload)
            elif opcode == 0x8:
                raise EOFError(f"the server closed the WebSocket: {payload[2:]!r}")
            elif opcode == 0x1:
                return json.loads(payload)


class RoomWatch:
    """A Reader in general, read in a thread: when each posted message reached it."""

    def __init__(self, site: LiveSite) -> None:
        self.reader = Reader.open(site)
        self.reader.join("general")
        self.arrived: dict[str, float] = {}
        self.failure: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.reader.sock.settimeout(0.5)
        while not self._stop.is_set():
            try:
                frame = self.reader.recv()
            except TimeoutError:
                continue
            except (ConnectionError, EOFError, OSError) as error:
                self.failure = str(error)
                return
            if frame["type"] == "message":
                self.arrived[frame["message"]["client_id"]] = time.monotonic()

    def report(self, posted: dict[str, float], *, grace: float = 5.0) -> dict[str, Any]:
        """How many of the `posted` messages (client_id -> when) arrived, waiting up to
        `grace` seconds for the last, and the longest any took."""
        deadline = time.monotonic() + grace
        while len(set(posted) & set(self.arrived)) < len(posted) and time.monotonic() < deadline:
            time.sleep(0.05)
        self._stop.set()
        self._thread.join()
        delays = [self.arrived[c] - t for c, t in posted.items() if c in self.arrived]
        return {
            "reader_got": f"{len(delays)} of {len(posted)}",
            "reader_max_delay": max(delays, default=None),
            "reader_failure": self.failure,
        }

    def close(self) -> None:
        self.reader.close()


def established(raw: RawSocket) -> bool:
    """The TCP connection is still up: the server has neither closed nor aborted it."""
    state = raw.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
    return state == 1  # TCP_ESTABLISHED


class Sampler:
    """Reads a process's RSS every 50 ms in a thread, keeping the peak, and notes when each
    of `watched` stops being established."""

    def __init__(self, pid: int, watched: Sequence[RawSocket] = ()) -> None:
        self.pid = pid
        self.peak = rss_bytes(pid)
        self.started = time.monotonic()
        self.watched = list(watched)
        self.dropped_after: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_bytes(self.pid))
            for i, raw in enumerate(self.watched):
                if i not in self.dropped_after and not established(raw):
                    self.dropped_after[i] = time.monotonic() - self.started

    def all_dropped(self) -> bool:
        return len(self.dropped_after) == len(self.watched)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def post(raw: RawSocket, n: int, posted: dict[str, float]) -> float:
    """Post message `n` as `raw`'s user (noting when in `posted`); the seconds until its
    ack."""
    started = time.monotonic()
    client_id = f"b{n}"
    posted[client_id] = started
    raw.send({"type": "send", "room": "general", "body": f"{n} {BODY}", "client_id": client_id})
    while True:
        frame = raw.recv()
        if frame["type"] == "ack" and frame["client_id"] == client_id:
            return time.monotonic() - started
        if frame["type"] == "error":
            raise RuntimeError(f"send {n} refused: {frame}")


def settle_rss(pid: int, seconds: float = 2.0) -> int:
    time.sleep(seconds)
    return rss_bytes(pid)


def _dropped(sampler: Sampler, count: int, posting: float) -> str:
    """How many of `count` sockets the server dropped, and when (from the first post), or
    in how long, if not all were."""
    times = sorted(sampler.dropped_after.values())
    if len(times) < count:
        return f"{len(times)} of {count} in {time.monotonic() - sampler.started:.0f} s"
    when = "during the posts" if times[-1] <= posting else f"by {times[-1]:.0f} s"
    return f"{count} of {count}, {when}"


def stalled(server: LiveServer, site: LiveSite, args: argparse.Namespace) -> dict[str, Any]:
    sender = Reader.open(site, login(site.base_url, "alice", PASSWORD))
    sender.join("general")
    watch = RoomWatch(site)
    sockets = [RawSocket.open(site, rcvbuf=4096) for _ in range(args.stalled)]
    for raw in sockets:
        raw.join("general")
    before = settle_rss(server.pid, 1.0)
    sampler = Sampler(server.pid, sockets)
    posted: dict[str, float] = {}
    acks = [post(sender, n, posted) for n in range(args.messages)]
    took = time.monotonic() - sampler.started
    held = rss_bytes(server.pid)
    room = watch.report(posted)
    deadline = time.monotonic() + args.hold
    while not sampler.all_dropped() and time.monotonic() < deadline:
        time.sleep(0.2)
    peak = sampler.stop()
    dropped = _dropped(sampler, args.stalled, took)
    for raw in [*sockets, sender, watch.reader]:
        raw.close()
    return {
        "load": f"{args.stalled} never-reading sockets, {args.messages} x 12 kB posted",
        "before": before,
        "peak": peak,
        "held": held,
        "after_close": settle_rss(server.pid, 3.0),
        "dropped": dropped,
        "ack_max": max(acks),
        "seconds": took,
        "traffic": args.messages * len(BODY.encode()) * args.stalled,
        **room,
    }


def flood(server: LiveServer, site: LiveSite, args: argparse.Namespace) -> dict[str, Any]:
    sender = Reader.open(site, login(site.base_url, "alice", PASSWORD))
    sender.join("general")
    watch = RoomWatch(site)
    flooders = [RawSocket.open(site) for _ in range(args.flooders)]
    before = settle_rss(server.pid, 1.0)
    pushed = [0] * args.flooders
    deadline = time.monotonic() + args.seconds

    def push(i: int) -> None:
        sock = flooders[i].sock
        batch = FLOOD_FRAME * 10
        try:
            while (left := deadline - time.monotonic()) > 0:
                sock.settimeout(left)
                pushed[i] += sock.send(batch)
        except (TimeoutError, ConnectionError):
            pass

    sampler = Sampler(server.pid, flooders)
    threads = [threading.Thread(target=push, args=(i,)) for i in range(args.flooders)]
    for thread in threads:
        thread.start()
    acks: list[float] = []
    posted: dict[str, float] = {}
    while time.monotonic() < deadline:
        acks.append(post(sender, 100_000 + len(acks), posted))
        time.sleep(0.5)
    for thread in threads:
        thread.join()
    room = watch.report(posted)
    peak = sampler.stop()
    dropped = _dropped(sampler, args.flooders, args.seconds)
    held = rss_bytes(server.pid)
    for raw in [*flooders, sender, watch.reader]:
        raw.close()
    return {
        "load": f"{args.flooders} flooders x {args.seconds:g} s of 60 kB frames",
        "before": before,
        "peak": peak,
        "held": held,
        "after_close": settle_rss(server.pid, 3.0),
        "dropped": dropped,
        "ack_max": max(acks),
        "seconds": args.seconds,
        "traffic": sum(pushed),
        **room,
    }


SCENARIOS: dict[str, Callable[[LiveServer, LiveSite, argparse.Namespace], dict[str, Any]]] = {
    "stalled": stalled,
    "flood": flood,
}


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| load | configuration | traffic MB | RSS before MB | peak growth MB "
        "| growth after close MB | dropped | slowest ack s | room reader got "
        "| its slowest message s |",
        "|---|---|---:|---:|---:|---:|---|---:|---|---:|",
    ]
    for row in rows:
        delay = row["reader_max_delay"]
        lines.append(
            f"| {row['load']} | {row['config']} | {row['traffic'] / 1e6:,.0f} "
            f"| {row['before'] / MiB:.0f} | {(row['peak'] - row['before']) / MiB:.0f} "
            f"| {(row['after_close'] - row['before']) / MiB:.0f} | {row['dropped']} "
            f"| {row['ack_max']:.2f} | {row['reader_got']} "
            f"| {'n/a' if delay is None else f'{delay:.2f}'} |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default="daphne,uvicorn", help="comma-separated")
    parser.add_argument("--stalled", type=int, default=20, help="never-reading sockets")
    parser.add_argument("--messages", type=int, default=1000, help="messages posted to them")
    parser.add_argument(
        "--hold", type=float, default=75, help="seconds to wait for their drop after the posts"
    )
    parser.add_argument("--flooders", type=int, default=4, help="flooding sockets")
    parser.add_argument("--seconds", type=float, default=8, help="how long they flood")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    args = parser.parse_args(argv)
    chosen = args.servers.split(",")

    rows = []
    with tempfile.TemporaryDirectory(prefix="chatsite-flood-") as tmp:
        static = Path(tmp) / "static"
        env = {**os.environ, "DJANGO_STATIC_ROOT": str(static), "DJANGO_DEBUG": "0"}
        env["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(50)
        _manage(env, "collectstatic", "--noinput")
        for scenario in args.scenarios.split(","):
            for server, config, extra_env in CONFIGS:
                if server not in chosen:
                    continue
                folder = Path(tempfile.mkdtemp(dir=tmp))
                log(f"{scenario}, {config}")
                with serving(folder, static, server, extra_env) as live:
                    row = SCENARIOS[scenario](live, LiveSite.of(live), args)
                rows.append({**row, "config": config})
                log(json.dumps(row, default=str))
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
