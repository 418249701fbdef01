"""deploy/reuseport.py: each worker's own SO_REUSEPORT socket on fd 0, then the worker itself."""

import json
import socket
import subprocess
import sys

import pytest

from tests.support import PROJECT_ROOT
from tests.support.live_server import _free_port

REUSEPORT = str(PROJECT_ROOT / "deploy" / "reuseport.py")
# What the command finds on fd 0, and its pid (the wrapper's, if it exec'd).
REPORT = """
import json, os, socket
sock = socket.socket(fileno=0)
print(json.dumps({
    "pid": os.getpid(),
    "address": list(sock.getsockname()),
    "reuseport": sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT),
    "listening": sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN),
    "inheritable": os.get_inheritable(0),
}))
"""


def reuseport(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, REUSEPORT, *args], capture_output=True, text=True, timeout=30
    )


def listener(port: int, *, reuseport: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, int(reuseport))
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return sock


def test_the_command_becomes_the_process_with_a_listening_reuseport_socket_on_fd_0():
    port = _free_port()
    worker = subprocess.Popen(
        [sys.executable, REUSEPORT, f"127.0.0.1:{port}", "--", sys.executable, "-c", REPORT],
        stdout=subprocess.PIPE,
        text=True,
    )
    out, _ = worker.communicate(timeout=30)

    assert json.loads(out) == {
        "pid": worker.pid,  # exec'd: supervisor's signals reach the server itself
        "address": ["127.0.0.1", port],
        "reuseport": 1,
        "listening": 1,
        "inheritable": True,
    }


def test_a_second_worker_listens_on_the_port_a_first_worker_holds():
    port = _free_port()
    with listener(port, reuseport=True) as first:
        second = reuseport(f"127.0.0.1:{port}", "--", sys.executable, "-c", REPORT)
        assert first.getsockname() == ("127.0.0.1", port)

    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["address"] == ["127.0.0.1", port]


def test_a_port_held_without_reuseport_is_a_clear_error():
    port = _free_port()
    with listener(port, reuseport=False):
        result = reuseport(f"127.0.0.1:{port}", "--", sys.executable, "-c", REPORT)

    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr


@pytest.mark.parametrize("reuse", [True, False])
def test_check_refuses_a_port_something_listens_on_even_with_reuseport(reuse):
    port = _free_port()
    assert reuseport(f"127.0.0.1:{port}", "--check").returncode == 0
    with listener(port, reuseport=reuse):
        result = reuseport(f"127.0.0.1:{port}", "--check")

    assert result.returncode == 1
    assert f"127.0.0.1:{port} is already in use" in result.stderr


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["8000", "--", "true"], "'8000' is not HOST:PORT"),
        (["127.0.0.1:http", "--", "true"], "is not HOST:PORT"),
        (["127.0.0.1:70000", "--", "true"], "is not HOST:PORT"),
        (["[::1]:8000", "--", "true"], "has no IPv4 address"),
        (["127.0.0.1:8000"], "no command"),
        (["127.0.0.1:8000", "--backlog", "0", "--", "true"], "--backlog must be at least 1"),
        (["127.0.0.1:8000", "--check", "--", "true"], "--check takes no command"),
    ],
)
def test_bad_arguments_are_clear_errors(args, error):
    result = reuseport(*args)

    assert result.returncode == 2
    assert error in result.stderr


def test_a_command_that_cannot_run_is_a_clear_error():
    result = reuseport(f"127.0.0.1:{_free_port()}", "--", "/nonexistent/daphne")

    assert result.returncode == 1
    assert "cannot run '/nonexistent/daphne': No such file or directory" in result.stderr
