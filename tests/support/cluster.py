"""Several daphne workers sharing one Redis and one database, as in production.

The `cluster` fixture gets a fresh database (a copy of a migrated SQLite file,
live_server.fresh_database, or a fresh PostgreSQL database, migrated, when DATABASE_URL
points at PostgreSQL), empties the Redis database of REDIS_URL
(tests use a database of their own, e.g. /15), creates alice, bob and a staff user, and
starts two daphne workers with DJANGO_DEBUG off. Presence entries expire after 3 s so that a
killed worker's users go offline quickly.
"""

import asyncio
import json
import os
import secrets
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psycopg
import pytest
import redis
from websockets.asyncio.client import ClientConnection

from tests.support.live_server import (
    PASSWORD,
    LiveServer,
    _manage,
    _report,
    _tail,
    fresh_database,
    login,
)
from tests.support.live_sockets import open_socket as open_site_socket
from tests.support.redis_service import redis_url

STAFF = "moderator"
USERS = ("alice", "bob", STAFF)
PRESENCE_TTL = 3
SOCKET_CAP = 4  # open sockets per user, counted across both workers
CREATE_USERS = f"""
from django.contrib.auth import get_user_model
User = get_user_model()
for name in {list(USERS)!r}:
    staff = name == {STAFF!r}
    User.objects.create_user(name, password={PASSWORD!r}, is_staff=staff, is_superuser=staff)
"""
DAPHNE = (
    sys.executable,
    "-m",
    "daphne",
    "-e",
    "tcp:{port}:interface=127.0.0.1:backlog=2048",
    "--websocket_connect_timeout",  # as deploy/supervisord.conf: a storm's sockets queue
    "30",
    "chatsite.asgi:application",
)


@dataclass
class Worker:
    server: LiveServer

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.server.port}/ws/chat/"

    def login(self, username: str) -> str:
        return login(self.base_url, username, PASSWORD)


@dataclass
class Cluster:
    workers: list[Worker]


def _database_url(folder: Path) -> Iterator[str]:
    """A fresh database for the cluster, dropped afterwards (PostgreSQL) or left in tmp."""
    configured = os.environ.get("DATABASE_URL", "")
    if not configured.startswith(("postgres://", "postgresql://")):
        yield f"sqlite:///{folder / 'cluster.sqlite3'}"
        return
    name = f"chatsite_cluster_{os.getpid()}"
    admin_url = configured
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlparse(configured)._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def collected_static(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Static files collected once, as a deployment does (debug off serves only these)."""
    folder = tmp_path_factory.mktemp("static")
    env = {**os.environ, "DJANGO_STATIC_ROOT": str(folder), "DJANGO_DEBUG": "0"}
    env["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(50)
    _manage(env, "collectstatic", "--noinput")
    return folder


@pytest.fixture
def cluster(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    collected_static: Path,
) -> Iterator[Cluster]:
    url = redis_url()
    redis.Redis.from_url(url).flushdb()
    yield from run_cluster(request, tmp_path_factory, collected_static, url)


def run_cluster(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    collected_static: Path,
    url: str,
) -> Iterator[Cluster]:
    """Two daphne workers on the Redis at `url` (emptied by the caller) and a fresh database."""
    folder = tmp_path_factory.mktemp("cluster")
    databases = _database_url(folder)
    env = {
        **os.environ,
        "DATABASE_URL": next(databases),
        "REDIS_URL": url,
        "DJANGO_DEBUG": "0",
        "DJANGO_HTTPS": "0",  # plain http on 127.0.0.1
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_STATIC_ROOT": str(collected_static),
        "DJANGO_SETTINGS_MODULE": "chatsite.settings",
        "CHAT_PRESENCE_TTL": str(PRESENCE_TTL),
        "CHAT_RATE_LIMIT": "off",
        # A thousand test sockets come from one address, reconnecting and rejoining at will.
        "CHAT_JOIN_RATE_LIMIT": "off",
        "CHAT_MAX_ANONYMOUS_SOCKETS_PER_ADDRESS": "100000",
        "CHAT_MAX_SOCKETS_PER_USER": str(SOCKET_CAP),
        # A poll for a connection whose worker died is answered 410 after this + 5 s.
        "CHAT_FALLBACK_POLL_SECONDS": "5",
        "PYTHONUNBUFFERED": "1",
    }
    try:
        if (database_url := env["DATABASE_URL"]).startswith("sqlite:///"):
            fresh_database(request, Path(database_url.removeprefix("sqlite:///")), CREATE_USERS)
        else:
            _manage(env, "migrate", "--noinput")
            _manage(env, "shell", "--no-imports", "-c", CREATE_USERS)
        servers = [
            LiveServer(env=env, log_path=folder / f"worker{i}.log", command=DAPHNE)
            for i in range(2)
        ]
        failed_before = request.session.testsfailed
        try:
            for server in servers:
                server.start()
            yield Cluster(workers=[Worker(server) for server in servers])
        finally:
            for server in servers:
                server.stop()
        if request.session.testsfailed > failed_before:
            for server in servers:
                _report(request, f"--- {server.log_path} ---\n{_tail(server.log_path)}")
    finally:
        databases.close()


TIMEOUT = 10


async def open_socket(worker: Worker, user: str | None = None) -> ClientConnection:
    """A socket to `worker`, signed in as `user` through the login form when given."""
    sessionid = await asyncio.to_thread(worker.login, user) if user is not None else None
    return await open_site_socket(worker, sessionid)


async def request(
    ws: ClientConnection, frame: dict[str, Any], seen: list | None = None, within: float = TIMEOUT
) -> dict:
    """Send with a ref; return the reply, keeping other frames in `seen`."""
    ref = f"r{time.monotonic_ns()}"
    await ws.send(json.dumps({**frame, "ref": ref}))
    async with asyncio.timeout(within):
        while (frame := json.loads(await ws.recv())).get("ref") != ref:
            if seen is not None:
                seen.append(frame)
    return frame


async def wait_for(ws: ClientConnection, kind: str, seen: list | None = None, **match) -> dict:
    """The first frame of type `kind` with the given fields, from `seen` or the socket."""

    def fits(frame: dict) -> bool:
        return frame["type"] == kind and all(frame.get(k) == v for k, v in match.items())

    for frame in seen or []:
        if fits(frame):
            seen.remove(frame)
            return frame
    async with asyncio.timeout(TIMEOUT):
        while not fits(frame := json.loads(await ws.recv())):
            pass
    return frame
