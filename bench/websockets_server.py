"""The bare Python reference for `make bench`: a room broadcast on `websockets`, nothing else.

It speaks the part of chatsite's protocol (docs/protocol.md) the workloads use, so the load
generator drives it exactly as it drives chatsite: `join` → `joined`; `send` → an `ack` to
the sender and one `message` frame, encoded once, written to every socket of the room (the
sender's too) with `websockets.broadcast`. No sessions, no database, no channel layer: what
chatsite pays per delivery above this server's figure is chatsite's own overhead, not
Python's.

    .venv/bin/python bench/websockets_server.py --port PORT
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import signal
from datetime import UTC, datetime

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

# As chatsite's bounds (bench/servers.py): frames up to 64 KiB, 64 queued frames per socket.
MAX_FRAME_BYTES = 64 * 1024
MAX_QUEUED_FRAMES = 64


def encode(frame: dict) -> str:
    """As chatsite encodes its frames (chat/protocol/events.py): compact, UTF-8 as is."""
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


def quiet_probes(record: logging.LogRecord) -> bool:
    """Drop the error websockets logs for a connection closed before its handshake: the bench
    probes the port that way (run.py's wait_for_port); a real failure is still logged."""
    error = record.exc_info[1] if record.exc_info else None
    return not (
        record.getMessage() == "opening handshake failed"
        and error is not None
        and isinstance(error.__cause__, EOFError)
    )


class Rooms:
    """The sockets of each room, and each room's last seq."""

    def __init__(self) -> None:
        self.members: dict[str, set[ServerConnection]] = {}
        self.last_seq: dict[str, int] = {}
        self.ids = itertools.count(1)

    def join(self, room: str, socket: ServerConnection) -> dict:
        self.members.setdefault(room, set()).add(socket)
        return {"room": room, "last_seq": self.last_seq.get(room, 0)}

    def leave(self, socket: ServerConnection, joined: set[str]) -> None:
        for room in joined:
            self.members.get(room, set()).discard(socket)

    def message(self, room: str, body: str, client_id: str | None, author: int) -> dict:
        seq = self.last_seq.get(room, 0) + 1
        self.last_seq[room] = seq
        return {
            "id": next(self.ids),
            "seq": seq,
            "room": room,
            "author": author,
            "body": body,
            "created": datetime.now(UTC).isoformat(),
            "client_id": client_id,
        }


async def handler(socket: ServerConnection, rooms: Rooms) -> None:
    """One socket: its frames in order until it closes, then out of every room it joined."""
    joined: set[str] = set()
    try:
        async for raw in socket:
            frame = json.loads(raw)
            kind, room, ref = frame.get("type"), frame.get("room"), frame.get("ref")
            if kind == "join" and isinstance(room, str):
                joined.add(room)
                await socket.send(
                    encode({"type": "joined", "ref": ref, **rooms.join(room, socket)})
                )
            elif kind == "send" and room in joined:
                message = rooms.message(
                    room, frame.get("body", ""), frame.get("client_id"), id(socket)
                )
                ack = {"type": "ack", "ref": ref, "id": message["id"], "seq": message["seq"]}
                await socket.send(encode(ack))
                broadcast(rooms.members[room], encode({"type": "message", "message": message}))
    except ConnectionClosed:
        pass  # the generator drops its sockets without a closing handshake: not an error
    finally:
        rooms.leave(socket, joined)


async def main(port: int) -> None:
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("websockets.server").addFilter(quiet_probes)
    rooms = Rooms()
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with serve(
        lambda socket: handler(socket, rooms),
        "127.0.0.1",
        port,
        compression=None,
        max_size=MAX_FRAME_BYTES,
        max_queue=MAX_QUEUED_FRAMES,
        backlog=4096,
    ):
        print("listening", flush=True)
        await stop


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(main(parser.parse_args().port))
