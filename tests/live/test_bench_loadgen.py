"""The bench's load generator (bench/loadgen.js) against the two reference servers: its raw
listeners, spread over several processes, hear every broadcast of both protocols, and so do
its native ones (bench/listeners.c), which also count what is late, foreign or missing."""

import contextlib
import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.support import PROJECT_ROOT
from tests.support.deps import need

pytestmark = pytest.mark.live

BENCH = PROJECT_ROOT / "bench"
SERVERS = {
    "websockets": [sys.executable, "websockets_server.py", "--port"],
    "socketio": ["node", "socketio_server.js", "--port"],
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def reference_server(name: str) -> Iterator[tuple[str, int]]:
    """A reference server on a free port: (its loadgen target, the port)."""
    need(
        "bench",
        bool(shutil.which("node")) and (BENCH / "node_modules" / "ws").exists(),
        "loadgen.js needs node and bench/node_modules (make bench runs npm ci)",
    )
    port = free_port()
    proc = subprocess.Popen(
        [*SERVERS[name], str(port)],
        cwd=BENCH,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "listening"
        yield name, port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(params=sorted(SERVERS))
def server(request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    with reference_server(request.param) as started:
        yield started


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


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> str:
    """bench/listeners.c, built as bench/run.py builds it."""
    need("cc", bool(shutil.which("cc") or shutil.which("gcc")), "no C compiler for listeners.c")
    sys.path.insert(0, str(BENCH))
    try:
        import run
    finally:
        sys.path.remove(str(BENCH))
    return str(run.build_listeners(tmp_path_factory.mktemp("native")))


def test_native_listeners_in_three_processes_hear_every_broadcast(server, native):
    target, port = server
    result = broadcast(target, port, "--procs", "3", "--client", "native", "--native", native)
    assert result["event"] == "result", result
    assert (result["client"], result["listener_procs"]) == ("native", 3)
    assert result["connect"]["listeners"]["connected"] == 30
    assert (result["deliveries"], result["expected_deliveries"]) == (150, 150)
    assert (result["dropped"], result["late"], result["duplicates"], result["foreign"]) == (
        0,
        0,
        0,
        0,
    )
    # Each native process's CPU is counted as the generator's.
    assert len(result["window"]["generator_procs_pct"]) == 4
    assert result["latency"]["count"] == 150


def test_over_http_the_native_choice_leaves_the_listeners_to_javascript(native):
    """--client native is for WebSocket listeners; the bench passes it to every run, and a
    broadcast over Socket.IO's long-polling still runs, on forked JavaScript listeners (the
    bare websockets server has no HTTP transport)."""
    client = ["--client", "native", "--native", native]
    with reference_server("socketio") as (target, port):
        result = broadcast(target, port, "--procs", "2", "--transport", "http", *client)
    assert result["event"] == "result", result
    assert (result["deliveries"], result["dropped"], result["late"]) == (150, 0, 0)


def test_a_native_listener_that_cannot_connect_is_reported_not_hung(native):
    """Nothing listens on the port: every socket fails, and the process says why, at once."""
    proc = subprocess.Popen(
        [native, "--port", str(free_port()), "--target", "chatsite", "--count", "3"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    proc.stdin.write("connect\n")
    proc.stdin.flush()
    ready = json.loads(proc.stdout.readline())
    out, _ = proc.communicate("finish\n", timeout=30)
    result = json.loads(out)
    assert ready["connect"]["connected"] == 0
    assert ready["connect"]["failures"] == 3
    assert ready["connect"]["failure_samples"] == ["connect: Connection refused"]
    assert result == {
        "type": "result",
        "late": 0,
        "duplicates": 0,
        "foreign": 0,
        "latencies": [],
    }


def test_native_listeners_refuse_bad_arguments(native):
    for argv in (["--count", "3"], ["--port", "1", "--target", "irc"], ["--port"]):
        proc = subprocess.run([native, *argv], capture_output=True, text=True, check=False)
        assert proc.returncode == 2, argv
        assert "usage: listeners" in proc.stderr


def test_library_listeners_hear_the_same_broadcasts(server):
    target, port = server
    result = broadcast(target, port, "--procs", "2", "--client", "lib")
    assert result["client"] == "lib"
    assert (result["deliveries"], result["dropped"], result["late"]) == (150, 0, 0)


def test_the_storm_opens_every_socket_with_native_clients_and_counts_their_cpu(server, native):
    target, port = server
    url = f"http://127.0.0.1:{port}"
    client = ["--client", "native", "--native", native, "--batch", "7"]
    gen = subprocess.Popen(
        [
            "node",
            "loadgen.js",
            "--target",
            target,
            "--url",
            url,
            *client,
            "idle",
            "--sockets",
            "40",
        ],
        cwd=BENCH,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert json.loads(gen.stdout.readline())["event"] == "baseline"
        gen.stdin.write("go\n")
        gen.stdin.flush()
        assert json.loads(gen.stdout.readline()) == {"event": "ready", "sockets": 40}
        out, _ = gen.communicate("close\n", timeout=60)
    finally:
        gen.kill()
    result = json.loads(out.splitlines()[-1])
    assert (result["client"], result["sockets"]) == ("native", 40)
    assert result["connect"]["failures"] == 0
    assert 0 < result["generator_cpu_pct"] < 100 * 2
