"""Server memory under slow and flooding clients, with the socket limits on and off.

Each scenario runs against a fresh `daphne` process (debug off, in-memory channel layer,
SQLite, `CHAT_RATE_LIMIT=off`), once with the limits at their defaults and once with both
off (`CHAT_SOCKET_MAX_BUFFER_BYTES=0 CHAT_SOCKET_MAX_QUEUED_FRAMES=0`). The server's VmRSS
(/proc/PID/status) is read before the load and every 50 ms during it.

- stalled: K anonymous sockets join general and never read (4 KiB receive buffer), while
  alice posts M messages of 12 kB, one after another, each acked before the next.
- flood: F anonymous sockets push 60 kB frames (joins of a room that does not exist: a
  database lookup each) as fast as TCP takes them, reading nothing, for S seconds, while
  alice posts a message every 0.5 s and times its ack.

    .venv/bin/python bench/flood.py [--stalled 20] [--messages 1000] [--flooders 4]
                                    [--seconds 8]

Prints a Markdown table (docs/security.md, "Slow and flooding clients", quotes one run).
All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.live_server import (  # noqa: E402
    CREATE_USERS,
    PASSWORD,
    LiveServer,
    LiveSite,
    _manage,
    login,
)
from tests.support.live_sockets import RawSocket, rss_bytes, text_frame  # noqa: E402

DAPHNE = (
    sys.executable,
    "-m",
    "daphne",
    "-e",
    "tcp:{port}:interface=127.0.0.1",
    "chatsite.asgi:application",
)
CONFIGS = {
    "limits on (defaults: 1 MiB, 64 frames)": {},
    "limits off": {"CHAT_SOCKET_MAX_BUFFER_BYTES": "0", "CHAT_SOCKET_MAX_QUEUED_FRAMES": "0"},
}
BODY = "\u20ac" * 3990  # 12 kB of UTF-8
FLOOD_FRAME = text_frame('{"type":"join","room":"no-such-room"}' + " " * (60_000 - 40))
MiB = 2**20


def log(message: str) -> None:
    print(f"[flood] {message}", file=sys.stderr, flush=True)


@contextmanager
def serving(folder: Path, static: Path, extra_env: dict[str, str]) -> Iterator[LiveServer]:
    """A fresh database with alice, served by one daphne process until the block ends."""
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
        {**env, "LIVE_USERNAMES": "alice", "LIVE_PASSWORD": PASSWORD},
        "shell",
        "--no-imports",
        "-c",
        CREATE_USERS,
    )
    server = LiveServer(env=env, log_path=folder / "server.log", command=DAPHNE)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Sampler:
    """Reads a process's RSS every 50 ms in a thread; keeps the peak."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = rss_bytes(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_bytes(self.pid))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def post(raw: RawSocket, n: int) -> float:
    """Post message `n` as `raw`'s user; return the seconds until its ack."""
    started = time.monotonic()
    client_id = f"b{n}"
    raw.send({"type": "send", "room": "general", "body": f"{n} {BODY}", "client_id": client_id})
    while True:
        frame = raw.recv()
        if frame["type"] == "ack" and frame["client_id"] == client_id:
            return time.monotonic() - started
        if frame["type"] == "error":
            raise RuntimeError(f"send {n} refused: {frame}")


def drops(server: LiveServer) -> int:
    return server.log_path.read_text(errors="replace").count("Dropping WebSocket")


def settle_rss(pid: int, seconds: float = 2.0) -> int:
    time.sleep(seconds)
    return rss_bytes(pid)


def stalled(server: LiveServer, site: LiveSite, args: argparse.Namespace) -> dict[str, Any]:
    sender = RawSocket.open(site, login(site.base_url, "alice", PASSWORD))
    sender.join("general")
    sockets = [RawSocket.open(site, rcvbuf=4096) for _ in range(args.stalled)]
    for raw in sockets:
        raw.join("general")
    before = settle_rss(server.pid, 1.0)
    sampler = Sampler(server.pid)
    started = time.monotonic()
    acks = [post(sender, n) for n in range(args.messages)]
    took = time.monotonic() - started
    peak = sampler.stop()
    held = rss_bytes(server.pid)
    for raw in [*sockets, sender]:
        raw.close()
    return {
        "load": f"{args.stalled} never-reading sockets, {args.messages} x 12 kB posted",
        "before": before,
        "peak": peak,
        "held": held,
        "after_close": settle_rss(server.pid, 3.0),
        "dropped": f"{drops(server)} of {args.stalled}",
        "ack_max": max(acks),
        "seconds": took,
        "traffic": args.messages * len(BODY.encode()) * args.stalled,
    }


def flood(server: LiveServer, site: LiveSite, args: argparse.Namespace) -> dict[str, Any]:
    sender = RawSocket.open(site, login(site.base_url, "alice", PASSWORD))
    sender.join("general")
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

    sampler = Sampler(server.pid)
    threads = [threading.Thread(target=push, args=(i,)) for i in range(args.flooders)]
    for thread in threads:
        thread.start()
    acks = []
    while time.monotonic() < deadline:
        acks.append(post(sender, 100_000 + len(acks)))
        time.sleep(0.5)
    for thread in threads:
        thread.join()
    peak = sampler.stop()
    held = rss_bytes(server.pid)
    for raw in [*flooders, sender]:
        raw.close()
    return {
        "load": f"{args.flooders} flooders x {args.seconds:g} s of 60 kB frames",
        "before": before,
        "peak": peak,
        "held": held,
        "after_close": settle_rss(server.pid, 3.0),
        "dropped": f"{drops(server)} of {args.flooders}",
        "ack_max": max(acks),
        "seconds": args.seconds,
        "traffic": sum(pushed),
    }


SCENARIOS: dict[str, Callable[[LiveServer, LiveSite, argparse.Namespace], dict[str, Any]]] = {
    "stalled": stalled,
    "flood": flood,
}


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| load | configuration | traffic MB | RSS before MB | peak growth MB "
        "| growth after close MB | dropped | slowest ack s |",
        "|---|---|---:|---:|---:|---:|---|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['load']} | {row['config']} | {row['traffic'] / 1e6:,.0f} "
            f"| {row['before'] / MiB:.0f} | {(row['peak'] - row['before']) / MiB:.0f} "
            f"| {(row['after_close'] - row['before']) / MiB:.0f} | {row['dropped']} "
            f"| {row['ack_max']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stalled", type=int, default=20, help="never-reading sockets")
    parser.add_argument("--messages", type=int, default=1000, help="messages posted to them")
    parser.add_argument("--flooders", type=int, default=4, help="flooding sockets")
    parser.add_argument("--seconds", type=float, default=8, help="how long they flood")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    args = parser.parse_args(argv)

    rows = []
    with tempfile.TemporaryDirectory(prefix="chatsite-flood-") as tmp:
        static = Path(tmp) / "static"
        env = {**os.environ, "DJANGO_STATIC_ROOT": str(static), "DJANGO_DEBUG": "0"}
        env["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(50)
        _manage(env, "collectstatic", "--noinput")
        for scenario in args.scenarios.split(","):
            for config, extra_env in CONFIGS.items():
                folder = Path(tempfile.mkdtemp(dir=tmp))
                log(f"{scenario}, {config}")
                with serving(folder, static, extra_env) as server:
                    row = SCENARIOS[scenario](server, LiveSite.of(server), args)
                rows.append({**row, "config": config})
                log(json.dumps({k: v for k, v in row.items()}, default=str))
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
