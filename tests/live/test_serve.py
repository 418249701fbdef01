"""`make serve`: debug off, static files collected, several daphne workers under supervisor."""

import asyncio
import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.typing import Origin

from tests.support.live_server import PROJECT_ROOT, _free_port, login
from tests.support.redis_service import redis_url

pytestmark = [pytest.mark.live, pytest.mark.own_database]

WORKERS = 2


def wait_for_log(path: Path, text: str, count: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and path.read_text(errors="replace").count(text) >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"{path} never said {text!r} {count} times")


async def post_and_hear(port: int, cookie: str) -> set[str]:
    """Join and post over a real socket; return the frame types heard."""
    base = f"http://127.0.0.1:{port}"
    async with connect(
        f"ws://127.0.0.1:{port}/ws/chat/",
        origin=Origin(base),
        additional_headers={"Cookie": f"sessionid={cookie}"},
        open_timeout=10,
    ) as ws:
        assert "Server" not in ws.response.headers  # --no-server-name
        await ws.send(json.dumps({"type": "join", "room": "general"}))
        frame = {"type": "send", "room": "general", "body": "hi", "client_id": "1"}
        await ws.send(json.dumps(frame))
        kinds: set[str] = set()
        async with asyncio.timeout(10):
            while not {"joined", "ack", "message"} <= kinds:
                kinds.add(json.loads(await ws.recv())["type"])
        return kinds


def test_make_serve_runs_workers_behind_supervisor(tmp_path: Path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "CHATSITE_PORT": str(port),
        "CHATSITE_WORKERS": str(WORKERS),
        "CHATSITE_RUN_DIR": str(tmp_path / "run"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.sqlite3'}",
        "DJANGO_STATIC_ROOT": str(tmp_path / "static"),
        "REDIS_URL": redis_url(),
    }
    env.pop("DJANGO_SECRET_KEY", None)
    env["DJANGO_SECRET_KEY"] = "serve-test-" + "0123456789abcdef" * 4
    log = (tmp_path / "serve.log").open("wb")
    serve = subprocess.Popen(
        ["deploy/serve.sh"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        supervisor_log = tmp_path / "run" / "supervisord.log"
        wait_for_log(supervisor_log, "entered RUNNING state", WORKERS)
        with urllib.request.urlopen(f"{base}/chat/general/", timeout=10) as page:
            html = page.read().decode()
            assert page.headers["Server"] is None  # daphne does not name itself
        # Debug is off: static URLs are hashed (manifest) and WhiteNoise serves them.
        found = re.search(r'<script type="module" src="(/static/chat/room\.[^"]+)"', html)
        assert found, html[-800:]
        script = found.group(1)
        assert re.fullmatch(r"/static/chat/room\.[0-9a-f]{12}\.js", script), script
        with urllib.request.urlopen(f"{base}{script}", timeout=10) as static:
            assert static.status == 200
            assert "max-age" in static.headers["Cache-Control"]

        subprocess.run(
            [
                str(PROJECT_ROOT / ".venv/bin/python"),
                "manage.py",
                "shell",
                "-c",
                "from django.contrib.auth.models import User;"
                "User.objects.create_user('alice', password='correct-horse-battery-9')",
            ],
            cwd=PROJECT_ROOT,
            env={**env, "DJANGO_DEBUG": "0"},
            check=True,
            capture_output=True,
            timeout=60,
        )
        cookie = login(base, "alice", "correct-horse-battery-9")
        assert {"joined", "ack", "message"} <= asyncio.run(post_and_hear(port, cookie))
    finally:
        os.killpg(serve.pid, signal.SIGTERM)
        serve.wait(timeout=30)
        log.close()
    assert "stopped: daphne" in supervisor_log.read_text()
