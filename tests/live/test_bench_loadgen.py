"""The bench's load generator (bench/loadgen.js) against the two reference servers: its raw
listeners, spread over several processes, hear every broadcast of both protocols."""

import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.support import PROJECT_ROOT

pytestmark = pytest.mark.live

BENCH = PROJECT_ROOT / "bench"
SERVERS = {
    "websockets": [sys.executable, "websockets_server.py", "--port"],
    "socketio": ["node", "socketio_server.js", "--port"],
}

if not shutil.which("node") or not (BENCH / "node_modules" / "ws").exists():
    pytest.skip(
        "needs node and bench/node_modules (make bench runs npm ci)", allow_module_level=True
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(params=sorted(SERVERS))
def server(request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    """A reference server on a free port: (its loadgen target, the port)."""
    port = free_port()
    proc = subprocess.Popen(
        [*SERVERS[request.param], str(port)],
        cwd=BENCH,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "listening"
        yield request.param, port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def broadcast(target: str, port: int, *args: str) -> dict:
    url = f"http://127.0.0.1:{port}"
    workload = ["broadcast", "--listeners", "30", "--messages", "5"]
    done = subprocess.run(
        ["node", "loadgen.js", "--target", target, "--url", url, "--warmup", "0", *args, *workload],
        cwd=BENCH,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    lines = done.stdout.splitlines()
    assert lines, done.stderr[-2000:]
    return json.loads(lines[-1])


def test_raw_listeners_in_three_processes_hear_every_broadcast(server):
    target, port = server
    started = time.monotonic()
    result = broadcast(target, port, "--procs", "3")
    assert result["event"] == "result", result
    assert result["listener_procs"] == 3
    assert result["client"] == "raw"
    assert (result["deliveries"], result["expected_deliveries"]) == (150, 150)
    assert (result["dropped"], result["late"], result["duplicates"]) == (0, 0, 0)
    assert result["foreign"] == 0
    # The sender's process and the three listener processes, each with its CPU share.
    assert len(result["window"]["generator_procs_pct"]) == 4
    assert 0 <= result["latency"]["p50_ms"] < (time.monotonic() - started) * 1000


def test_library_listeners_hear_the_same_broadcasts(server):
    target, port = server
    result = broadcast(target, port, "--procs", "2", "--client", "lib")
    assert result["client"] == "lib"
    assert (result["deliveries"], result["dropped"], result["late"]) == (150, 0, 0)
