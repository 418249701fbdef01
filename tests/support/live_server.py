"""The site as a real server process, for tests that speak HTTP and WebSockets over a socket.

`live_site` gets a fresh SQLite file in a temporary folder (never the developer's
db.sqlite3), migrated and holding alice, bob, carol and a moderator (a copy of a database
built so once per test process: `fresh_database`), and runs `manage.py runserver`
(daphne: HTTP and WebSockets in one process, the in-memory channel layer) on a free port.
Tests ask for it by name (tests/conftest.py registers this module's fixtures).

`production_site` is `live_site` as production runs it: debug off, the static files collected
(hashed names, gzip and brotli) into the temporary folder and served by WhiteNoise.

`restartable_site` is the same for one test, whose server (`site.server`) may be paused
(SIGSTOP), killed (SIGKILL, no shutdown at all) and started again on the same port and the
same database, the way a crashed worker comes back.
"""

import http.cookiejar
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import pytest

from tests.support import PROJECT_ROOT

PASSWORD = "correct-horse-battery-9"
STAFF = "moderator"  # a superuser, for the admin
USERNAMES = ("alice", "bob", "carol", STAFF)
START_TIMEOUT = 90  # seconds for the server to answer GET / with 200 (fails at once if it exits)
STOP_TIMEOUT = 10  # seconds between SIGTERM and SIGKILL
REBIND_TIMEOUT = 10  # seconds a restart keeps trying the port a killed server held
PORT_ATTEMPTS = 3  # free ports tried by a first start, in case another process grabs one
DATABASE_NAME = "live.sqlite3"
COMMAND_TIMEOUT = 120  # seconds for migrate and for creating users
LOG_TAIL_LINES = 60

# The accounts are made as sign-up makes them: each joins the default room (general).
CREATE_USERS = """
import os
from django.contrib.auth import get_user_model
from chat import services
User = get_user_model()
for name in os.environ["LIVE_USERNAMES"].split(","):
    staff = name == os.environ["LIVE_STAFF"]
    user = User.objects.create_user(
        username=name, password=os.environ["LIVE_PASSWORD"], is_staff=staff, is_superuser=staff
    )
    services.user_welcome(user=user)
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
        return _tail(self.log_path, lines)

    @classmethod
    def of(cls, server: "LiveServer", /, **extra: Any) -> Self:
        """The site `server` serves (with `extra` fields, for a subclass)."""
        return cls(
            base_url=server.base_url,
            ws_url=f"ws://127.0.0.1:{server.port}/ws/chat/",
            passwords=dict.fromkeys(USERNAMES, PASSWORD),
            log_path=server.log_path,
            **extra,
        )


@dataclass(frozen=True)
class RestartableSite(LiveSite):
    """A live site whose server a test may pause, kill and start again (same port, same DB)."""

    server: "LiveServer"
    database: Path


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
            "DATABASE_URL": f"sqlite:///{folder / DATABASE_NAME}",
            "DJANGO_DEBUG": "1",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SETTINGS_MODULE": "chatsite.settings",
            "CHAT_RATE_LIMIT": "off",  # the tests post hundreds of messages at once
            # …and open, drop and rejoin sockets by the hundred, all from 127.0.0.1.
            "CHAT_JOIN_RATE_LIMIT": "off",
            "CHAT_HISTORY_RATE_LIMIT": "off",
            "CHAT_MAX_ANONYMOUS_SOCKETS_PER_ADDRESS": "100000",
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
        process.send_signal(signal.SIGCONT)  # a paused server cannot act on SIGTERM
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)


def _tail(log_path: Path, lines: int = LOG_TAIL_LINES) -> str:
    if not log_path.exists():
        return "(no server log)"
    return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])


RUNSERVER = (sys.executable, "manage.py", "runserver", "127.0.0.1:{port}", "--noreload")


class LiveServer:
    """A server for one database (`manage.py runserver` unless `command` says otherwise,
    with "{port}" in it); it keeps its port across kill() and start()."""

    def __init__(
        self, *, env: dict[str, str], log_path: Path, command: tuple[str, ...] = RUNSERVER
    ) -> None:
        self.env = env
        self.log_path = log_path
        self.command = command
        self.port: int | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The running server's process id (never a reaped one, which may be reused)."""
        assert self.process is not None, "the server was never started"
        assert self.process.poll() is None, "the server is not running"
        return self.process.pid

    def start(self) -> None:
        """Serve, and return once GET / answers 200.

        The first start picks a free port; a port picked now may be taken before the server
        binds it, so a server that exits early gets another port. Later starts keep the port
        (pages and sockets know it) and retry for a while if binding it fails: daphne's
        listening socket has SO_REUSEADDR (Twisted sets it), so a killed server's lingering
        connections do not block it, but another process could.
        """
        assert self.process is None or self.process.poll() is not None, "already running"
        if self.port is None:
            for _attempt in range(PORT_ATTEMPTS):
                if self._run(_free_port()):
                    return
                self.port = None
        else:
            deadline = time.monotonic() + REBIND_TIMEOUT
            while True:
                if self._run(self.port):
                    return
                if time.monotonic() > deadline:
                    break
                time.sleep(0.2)
        pytest.fail(
            f"the server never answered GET / with 200; {self.log_path} ends:\n"
            f"{_tail(self.log_path)}"
        )

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup; open sockets are torn down by the kernel."""
        os.kill(self.pid, signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT)  # type: ignore[union-attr]

    def pause(self) -> None:
        """SIGSTOP: connections stay open, but nothing sent to the server is read or answered.
        Returns once the process is stopped (on Linux, where /proc tells)."""
        pid = self.pid
        os.kill(pid, signal.SIGSTOP)
        stat = Path(f"/proc/{pid}/stat")
        deadline = time.monotonic() + STOP_TIMEOUT
        while stat.exists() and stat.read_text().rpartition(")")[2].split()[0] != "T":
            if time.monotonic() > deadline:
                pytest.fail(f"the server (pid {pid}) did not stop on SIGSTOP")
            time.sleep(0.01)

    def resume(self) -> None:
        """SIGCONT: undo pause()."""
        os.kill(self.pid, signal.SIGCONT)

    def stop(self) -> None:
        """Graceful: SIGTERM, then SIGKILL if the server does not exit in time."""
        if self.process is not None:
            _stop(self.process)

    def _run(self, port: int) -> bool:
        """Launch on `port`: True once it answers, False if it exited first (port taken).
        One that stays up but never answers is a failure."""
        self.port = port
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts}, port {port} ---\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [part.format(port=port) for part in self.command],
                cwd=PROJECT_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if _wait_until_ready(self.process, self.base_url):
            return True
        if self.process.poll() is None:
            _stop(self.process)
            pytest.fail(
                f"the server on port {port} never answered GET / with 200; "
                f"{self.log_path} ends:\n{_tail(self.log_path)}"
            )
        return False


def _production_env(folder: Path) -> dict[str, str]:
    """Debug off, as `make serve` runs it on this machine (plain http), with a strong secret
    (a weak one stops the site) and the static files collected into `folder`."""
    return {
        "DJANGO_DEBUG": "0",
        "DJANGO_HTTPS": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_STATIC_ROOT": str(folder / "static"),
    }


_TEMPLATES: dict[str, Path] = {}  # a users script (and its variables) → its template


def fresh_database(
    request: pytest.FixtureRequest,
    database: Path,
    users_script: str,
    users_env: dict[str, str] | None = None,
) -> None:
    """Make `database` a SQLite file migrated and holding the users `users_script` creates
    (a `manage.py shell` script, run with `users_env` added): a copy of a template built so
    once per test process. Migrating and hashing the users' passwords take seconds of CPU
    for every site, and a loaded CI machine stretched them to a minute; a copy takes none."""
    users_env = users_env or {}
    key = users_script + repr(sorted(users_env.items()))
    if (template := _TEMPLATES.get(key)) is None:
        folder = request.getfixturevalue("tmp_path_factory").mktemp("template")
        template = folder / DATABASE_NAME
        env = _site_env(folder)
        _manage(env, "migrate", "--noinput")
        _manage({**env, **users_env}, "shell", "--no-imports", "-c", users_script)
        _TEMPLATES[key] = template
    # SQLite's backup: a consistent copy whatever is still in the template's WAL file.
    with closing(sqlite3.connect(template)) as source, closing(sqlite3.connect(database)) as copy:
        source.backup(copy)


@contextmanager
def _serving(
    request: pytest.FixtureRequest,
    folder: Path,
    *,
    extra_env: dict[str, str] | None = None,
    production: bool = False,
) -> Iterator[LiveServer]:
    """A fresh database with alice and bob, served (with `extra_env` added to the server's
    environment, and as in production if `production`) until the block ends; on a failure in
    the block's tests the server's log is printed."""
    env = {**_site_env(folder), **(_production_env(folder) if production else {})}
    env.update(extra_env or {})
    if production:
        _manage(env, "collectstatic", "--noinput", "--verbosity", "0")
    users = {"LIVE_USERNAMES": ",".join(USERNAMES), "LIVE_PASSWORD": PASSWORD, "LIVE_STAFF": STAFF}
    fresh_database(request, folder / DATABASE_NAME, CREATE_USERS, users)

    server = LiveServer(env=env, log_path=folder / "server.log")
    failed_before = request.session.testsfailed
    try:
        server.start()
        yield server
    finally:
        server.stop()
    if request.session.testsfailed > failed_before:
        _report(request, f"--- last lines of {server.log_path} ---\n{_tail(server.log_path)}")


@pytest.fixture(scope="module")
def live_site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveSite]:
    """A fresh site served by `manage.py runserver` for the tests of one module."""
    with _serving(request, tmp_path_factory.mktemp("live")) as server:
        yield LiveSite.of(server)


@pytest.fixture(scope="module")
def production_site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveSite]:
    """A fresh site served with debug off and its static files collected, for one module."""
    with _serving(request, tmp_path_factory.mktemp("production"), production=True) as server:
        yield LiveSite.of(server)


@pytest.fixture
def restartable_site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RestartableSite]:
    """A fresh site for one test, which may pause, kill and restart its server."""
    folder = tmp_path_factory.mktemp("restartable")
    with _serving(request, folder) as server:
        yield RestartableSite.of(server, server=server, database=folder / DATABASE_NAME)


def _report(request: pytest.FixtureRequest, text: str) -> None:
    """Print past pytest's capture, so the server's log shows beside the failure."""
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if capture is None:
        print(text)
        return
    with capture.global_and_fixture_disabled():
        print(f"\n{text}")
