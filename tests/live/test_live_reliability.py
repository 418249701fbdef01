"""Delivery over real TCP to a real server: a reader whose connection is cut without a close
frame, again and again, while a sender posts, still ends with every message once."""

import asyncio
import contextlib
import json
import random

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.support.js_client import JsClient
from tests.support.live_server import LiveSite
from tests.support.live_sockets import SocketTransport, open_socket

pytestmark = [pytest.mark.live, pytest.mark.own_database]

MESSAGES = 200
DROPS = 8
TIMEOUT = 10


async def send_messages(ws: ClientConnection, count: int, rng: random.Random) -> list[int]:
    """Post `count` messages one after another, each acked before the next; return seqs."""
    await ws.send(json.dumps({"type": "join", "room": "general", "ref": "j"}))
    seqs = []
    for n in range(count):
        ref = f"s{n}"
        frame = {"type": "send", "room": "general", "body": f"m{n}", "client_id": ref, "ref": ref}
        await ws.send(json.dumps(frame))
        async with asyncio.timeout(TIMEOUT):
            while (reply := json.loads(await ws.recv())).get("ref") != ref:
                pass
        assert reply["type"] == "ack", reply
        seqs.append(reply["seq"])
        await asyncio.sleep(rng.random() * 0.01)
    return seqs


async def read_with_cuts(
    site: LiveSite, client: JsClient, rng: random.Random, sending: asyncio.Task
) -> int:
    """Read as a browser tab would, cutting the TCP connection (no close frame) after a
    random number of frames, DROPS times; return how many cuts came while sending."""
    mid_stream = 0
    for _cut in range(DROPS):
        ws = await open_socket(site)
        await client.connected(SocketTransport(ws))
        budget = rng.randint(3, 15)
        with contextlib.suppress(ConnectionClosed):
            while budget > 0:
                try:
                    raw = await asyncio.wait_for(ws.recv(), 1)
                except TimeoutError:
                    if sending.done():
                        break
                    continue
                await client.receive(json.loads(raw))
                budget -= 1
        mid_stream += not sending.done()
        ws.transport.abort()  # the connection dies: no close frame
        await client.disconnected()
    return mid_stream


async def test_a_reader_dropped_without_a_close_frame_recovers_every_message(
    live_site: LiveSite,
) -> None:
    rng = random.Random(20261125)
    reader = await JsClient.start()
    await reader.watch("general")
    sessionid = await asyncio.to_thread(live_site.login, "alice")
    sender = await open_socket(live_site, sessionid)
    try:
        sending = asyncio.create_task(send_messages(sender, MESSAGES, rng))
        mid_stream = await read_with_cuts(live_site, reader, rng, sending)
        seqs = await sending

        ws = await open_socket(live_site)
        await reader.connected(SocketTransport(ws))
        await reader.advance(30_000)  # quiet → ping → pong → resync if still behind
        async with asyncio.timeout(TIMEOUT):
            while (await reader.state())["rooms"]["general"]["cursor"] != MESSAGES:
                await reader.receive(json.loads(await ws.recv()))
        await ws.close()
        shown = (await reader.state())["rooms"]["general"]
    finally:
        await sender.close()
        await reader.close()

    assert mid_stream >= DROPS // 2  # most cuts came while messages were being posted
    assert seqs == list(range(1, MESSAGES + 1))
    assert shown["seqs"] == list(range(1, MESSAGES + 1))
    assert len(set(shown["ids"])) == MESSAGES
