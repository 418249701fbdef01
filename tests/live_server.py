"""The site as a real server process, for tests that speak HTTP and WebSockets over a socket.

`live_site` migrates a fresh SQLite file in a temporary folder (never the developer's
db.sqlite3), creates alice and bob, and runs `manage.py runserver` (daphne: HTTP and
WebSockets in one process, the in-memory channel layer) on a free port. Test modules import
it: `from tests.live_server import live_site  # noqa: F401`.
"""

import http.cookiejar
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-battery-9"
USERNAMES = ("alice", "bob")
START_TIMEOUT = 30  # seconds for the server to answer GET / with 200
STOP_TIMEOUT = 10  # seconds between SIGTERM and SIGKILL
COMMAND_TIMEOUT = 120  # seconds for migrate and for creating users
LOG_TAIL_LINES = 60

CREATE_USERS = """
import os
from django.contrib.auth import get_user_model
User = get_user_model()
for name in os.environ["LIVE_USERNAMES"].split(","):
    User.objects.create_user(username=name, password=os.environ["LIVE_PASSWORD"])
"""


@dataclass(frozen=True)
class LiveSite:
    """A running server: where it listens, who can sign in, and where it logs."""

    base_url: str
    ws_url: str
    passwords: dict[str, str]
    log_path: Path

    def login(self, username: str) -> str:
        """Sign `username` in over HTTP and return the sessionid cookie's value."""
        return login(self.base_url, username, self.passwords[username])

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        if not self.log_path.exists():
            return "(no server log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def login(base_url: str, username: str, password: str, *, timeout: float = 10) -> str:
    """Log in through /accounts/login/ the way a browser does; return the sessionid value."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    login_url = f"{base_url}/accounts/login/"
    with opener.open(login_url, timeout=timeout) as response:
        response.read()
    csrftoken = _cookie(jar, "csrftoken")
    if csrftoken is None:
        raise AssertionError(f"GET {login_url} set no csrftoken cookie")
    form = urllib.parse.urlencode(
        {"username": username, "password": password, "csrfmiddlewaretoken": csrftoken}
    ).encode()
    request = urllib.request.Request(login_url, data=form, headers={"Referer": login_url})
    with opener.open(request, timeout=timeout) as response:
        response.read()
    sessionid = _cookie(jar, "sessionid")
    if sessionid is None:
        raise AssertionError(f"logging in as {username!r} at {login_url} set no sessionid")
    return sessionid


def _cookie(jar: http.cookiejar.CookieJar, name: str) -> str | None:
    return next((cookie.value for cookie in jar if cookie.name == name), None)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _site_env(folder: Path) -> dict[str, str]:
    """The environment of every command: a fresh file database and no Redis."""
    env = dict(os.environ)
    env.pop("REDIS_URL", None)
    env.update(
        {
            "DATABASE_URL": f"sqlite:///{folder / 'live.sqlite3'}",
            "DJANGO_DEBUG": "1",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SETTINGS_MODULE": "chatsite.settings",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _manage(env: dict[str, str], *args: str) -> None:
    """Run one manage.py command to completion; fail with its output if it fails."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"manage.py {' '.join(args)} exited {result.returncode}:\n"
            f"{result.stdout}\n{result.stderr}"
        )


def _wait_until_ready(process: subprocess.Popen[bytes], base_url: str) -> bool:
    """True once GET / answers 200; False if the process dies or the deadline passes."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"{base_url}/", timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)


@pytest.fixture(scope="module")
def live_site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveSite]:
    """A fresh site served by `manage.py runserver` for the tests of one module."""
    folder = tmp_path_factory.mktemp("live")
    env = _site_env(folder)
    _manage(env, "migrate", "--noinput")
    env_users = {**env, "LIVE_USERNAMES": ",".join(USERNAMES), "LIVE_PASSWORD": PASSWORD}
    _manage(env_users, "shell", "--no-imports", "-c", CREATE_USERS)

    log_path = folder / "server.log"
    with log_path.open("wb") as log:
        # A port picked now may be taken before the server binds it: a server that exits
        # early gets another port; one that never answers is a failure.
        for _attempt in range(3):
            port = _free_port()
            base_url = f"http://127.0.0.1:{port}"
            process = subprocess.Popen(
                [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
                cwd=PROJECT_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            if _wait_until_ready(process, base_url):
                break
            exited = process.poll() is not None
            _stop(process)
            if not exited:
                break
        if process.poll() is not None:
            log.flush()
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:])
            pytest.fail(f"the server never answered GET / with 200; {log_path} ends:\n{tail}")

        site = LiveSite(
            base_url=base_url,
            ws_url=f"ws://127.0.0.1:{port}/ws/chat/",
            passwords=dict.fromkeys(USERNAMES, PASSWORD),
            log_path=log_path,
        )
        failed_before = request.session.testsfailed
        try:
            yield site
        finally:
            _stop(process)
    if request.session.testsfailed > failed_before:
        _report(request, f"--- last lines of {log_path} ---\n{site.log_tail()}")


def _report(request: pytest.FixtureRequest, text: str) -> None:
    """Print past pytest's capture, so the server's log shows beside the failure."""
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if capture is None:
        print(text)
        return
    with capture.global_and_fixture_disabled():
        print(f"\n{text}")
