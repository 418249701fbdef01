"""The browser client's delivery logic (chat/static/chat/sync.js, run by Node through
tests/js/driver.js) wired to a test socket: the same code the browser runs, under test."""

import asyncio
import json
import shutil
from typing import Any, Protocol

from tests.support import PROJECT_ROOT
from tests.support.deps import need

DRIVER = PROJECT_ROOT / "tests" / "js" / "driver.js"


def need_node() -> str:
    node = shutil.which("node")
    need(
        "node", node is not None, "Node.js runs the browser client's logic (apt-get install nodejs)"
    )
    assert node is not None
    return node


class Transport(Protocol):
    async def send(self, frame: dict[str, Any]) -> None: ...


class JsClient:
    """One browser tab's ChatClient, in a Node process, speaking through `transport`."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.transport: Transport | None = None
        self.clock = 0

    @classmethod
    async def start(cls) -> "JsClient":
        process = await asyncio.create_subprocess_exec(
            need_node(),
            str(DRIVER),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def command(self, cmd: str, **args: Any) -> list[dict[str, Any]]:
        """Run one driver command; forward what the client sends; return the other outputs."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write((json.dumps({"cmd": cmd, **args}) + "\n").encode())
        await self.process.stdin.drain()
        outputs = []
        while True:
            line = await asyncio.wait_for(self.process.stdout.readline(), timeout=10)
            if not line:
                raise RuntimeError("the Node driver exited")
            output = json.loads(line)
            if output.get("done"):
                return outputs
            if "send" in output:
                if self.transport is not None:
                    await self.transport.send(output["send"])
            else:
                outputs.append(output)

    async def watch(self, room: str, cursor: int | None = None) -> None:
        await self.command("watch", room=room, cursor=cursor)

    async def connected(self, transport: Transport) -> None:
        self.transport = transport
        await self.command("connected")

    async def disconnected(self) -> None:
        self.transport = None
        await self.command("disconnected")

    async def receive(self, frame: dict[str, Any]) -> None:
        await self.command("frame", frame=frame)

    async def advance(self, ms: int) -> list[dict[str, Any]]:
        """Move the client's clock on (its timers: ack timeout, ping, dead connection)."""
        self.clock += ms
        return await self.command("tick", now=self.clock)

    async def state(self) -> dict[str, Any]:
        (output,) = await self.command("state")
        return output["state"]

    async def close(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
