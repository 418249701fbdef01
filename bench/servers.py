"""The commands that serve chatsite in the bench (bench/run.py) and the bounds runs
(bench/flood.py), so both measure the same server setups.

- daphne: production's server (deploy/serve.sh), with chatsite's patches of daphne and
  Twisted in effect (chatsite/patches/).
- uvicorn: the same `chatsite.asgi:application` under uvicorn with its `websockets`
  implementation. The daphne/Twisted patches are still installed at startup (daphne is in
  INSTALLED_APPS, so it and Twisted are imported anyway) but patch classes uvicorn never
  uses; the app-level overrides (chatsite/patches/channels_overrides.py, asgiref_loop.py)
  apply under either server. uvicorn's own bounds are set to match chatsite's where it has
  one (UVICORN_BOUNDS).
"""

from __future__ import annotations

import sys
from pathlib import Path

HOST = "127.0.0.1"

# chatsite's settings these mirror (chatsite/settings.py): CHAT_MAX_FRAME_BYTES, and
# CHAT_SOCKET_MAX_QUEUED_FRAMES (frames a socket sent that the consumer has not handled).
MAX_FRAME_BYTES = 64 * 1024
MAX_QUEUED_FRAMES = 64

UVICORN_BOUNDS = (
    # A longer frame closes the socket (1009), like the site's own frame limit.
    "--ws-max-size",
    str(MAX_FRAME_BYTES),
    # Frames read and not yet received by the app; past this websockets stops reading the
    # socket (TCP pushes back on the client), as daphne_limits does at 64 frames or 1 MiB.
    "--ws-max-queue",
    str(MAX_QUEUED_FRAMES),
    # daphne negotiates no compression (and the load generator offers none); compression
    # would also cost each socket zlib state.
    "--ws-per-message-deflate",
    "false",
    # Not set, so uvicorn's defaults: --ws-ping-interval 20 --ws-ping-timeout 20 (daphne:
    # 20 and 30), the only thing that drops a socket that stops reading. websockets' write
    # limit (64 KiB, past which a send waits for the socket to drain) is not an option of
    # uvicorn's: a waiting send is what chatsite's CHAT_SOCKET_BACKLOG is for.
)


def daphne_command(port: int | str, *, backlog: int | None = None) -> list[str]:
    """One daphne process serving chatsite on 127.0.0.1:`port` (a number, or a placeholder
    such as "{port}")."""
    endpoint = f"tcp:{port}:interface={HOST}" + (f":backlog={backlog}" if backlog else "")
    return [sys.executable, "-m", "daphne", "-v", "0", "-e", endpoint, "chatsite.asgi:application"]


def daphne_worker_command(port: int | str, *, backlog: int | None = None) -> list[str]:
    """One of several daphne workers on 127.0.0.1:`port`, as `make serve` runs them: each on
    a listening socket of its own bound with SO_REUSEPORT (deploy/reuseport.py), so the
    kernel spreads connections over the workers."""
    return [
        sys.executable,
        str(Path(__file__).resolve().parent.parent / "deploy" / "reuseport.py"),
        f"{HOST}:{port}",
        *(["--backlog", str(backlog)] if backlog else []),
        "--",
        sys.executable,
        "-m",
        "daphne",
        "-v",
        "0",
        "--fd",
        "0",
        "chatsite.asgi:application",
    ]


def uvicorn_command(port: int | str, *, backlog: int | None = None) -> list[str]:
    """One uvicorn process (no workers, no reload) serving chatsite on 127.0.0.1:`port` with
    websockets' implementation, asyncio's loop and h11, as daphne runs on asyncio's loop:
    installing uvloop or httptools must not change what is measured."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "chatsite.asgi:application",
        "--host",
        HOST,
        "--port",
        str(port),
        *(["--backlog", str(backlog)] if backlog else []),
        "--ws",
        "websockets",
        *UVICORN_BOUNDS,
        "--loop",
        "asyncio",
        "--http",
        "h11",
        # chatsite's application (chatsite/asgi.py) has no "lifespan" handler.
        "--lifespan",
        "off",
        "--log-level",
        "warning",
        "--no-access-log",
    ]


COMMANDS = {"daphne": daphne_command, "uvicorn": uvicorn_command}
