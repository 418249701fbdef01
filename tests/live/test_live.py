"""Smoke tests against the site running as a real server: HTTP login, then a real WebSocket."""

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from tests.support.live_server import LiveSite

pytestmark = [pytest.mark.live, pytest.mark.own_database]

TIMEOUT = 10  # seconds for any one step over the network


async def receive_until(ws: ClientConnection, wanted: set[str]) -> dict[str, dict[str, Any]]:
    """Read frames until one of each wanted type came; other types (presence) are skipped."""
    found: dict[str, dict[str, Any]] = {}
    async with asyncio.timeout(TIMEOUT):
        while not wanted <= found.keys():
            frame = json.loads(await ws.recv())
            if frame["type"] in wanted:
                assert frame["type"] not in found, f"second {frame['type']} frame: {frame}"
                found[frame["type"]] = frame
    return found


async def test_signed_in_socket_posts_and_hears_its_message(live_site: LiveSite) -> None:
    """Alice's HTTP session opens a real socket that joins, gets an ack (seq 1) and the echo."""
    sessionid = await asyncio.to_thread(live_site.login, "alice")
    async with connect(
        live_site.ws_url,
        origin=Origin(live_site.base_url),
        additional_headers={"Cookie": f"sessionid={sessionid}"},
        open_timeout=TIMEOUT,
        close_timeout=TIMEOUT,
    ) as ws:
        await ws.send(json.dumps({"type": "join", "room": "general"}))
        joined = (await receive_until(ws, {"joined"}))["joined"]
        assert joined["room"] == "general"
        assert "alice" in joined["online"]

        body = "hello from the smoke test"
        await ws.send(
            json.dumps(
                {
                    "type": "send",
                    "room": "general",
                    "body": body,
                    "client_id": "smoke-1",
                    "ref": "s1",
                }
            )
        )
        frames = await receive_until(ws, {"ack", "message"})

    ack, message = frames["ack"], frames["message"]["message"]
    assert (ack["ref"], ack["seq"], ack["client_id"]) == ("s1", 1, "smoke-1")
    assert message["body"] == body
    assert (message["author"], message["seq"], message["id"]) == ("alice", 1, ack["id"])


async def test_handshake_from_a_foreign_origin_is_refused(live_site: LiveSite) -> None:
    """The server answers a WebSocket handshake from http://evil.example with 403."""
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            live_site.ws_url, origin=Origin("http://evil.example"), open_timeout=TIMEOUT
        ):
            pass
    assert refused.value.response.status_code == 403
