"""Slow and flooding clients against a real server (chatsite/patches/daphne_limits.py): a
socket that never reads is dropped once it holds more than its cap unsent, and a socket that
floods the server with frames is read no faster than it is served; neither stalls anyone
else."""

import asyncio
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection

from tests.support.live_server import LiveSite, _serving
from tests.support.live_sockets import (
    FallbackStream,
    RawSocket,
    open_socket,
    post_frames,
    rss_bytes,
    text_frame,
)

pytestmark = [pytest.mark.live, pytest.mark.own_database]

CAP = 64 * 1024  # the server's CHAT_SOCKET_MAX_BUFFER_BYTES here: small, so tests stay short
LIMITS = {"CHAT_SOCKET_MAX_BUFFER_BYTES": str(CAP), "CHAT_SOCKET_MAX_QUEUED_FRAMES": "64"}
TIMEOUT = 10  # seconds for any one step over the network
MAX_MESSAGES = 1500  # 18 MB in all: more than the kernel's socket buffers (4 MB here) + CAP
BODY = "\u20ac" * 3990  # a frame of 12 kB (the euro sign is 3 bytes)
FLOOD_FRAME_BYTES = 60_000  # under the site's 64 KiB frame limit, so each is handled
RSS_GROWTH_LIMIT = 32 * 2**20  # bytes the server may grow by during a flood
# A flood pushes until it has pushed this much (enough to tell whether the server kept it),
# for at least FLOOD_SECONDS and at most FLOOD_MAX_SECONDS: how fast TCP takes it depends on
# how fast the server reads, and so on how busy the machine is.
FLOOD_ENOUGH_BYTES = 3 * RSS_GROWTH_LIMIT
FLOOD_SECONDS = 8
FLOOD_MAX_SECONDS = 40


@dataclass(frozen=True)
class FloodSite(LiveSite):
    pid: int  # the server process, whose memory a test watches


@pytest.fixture(scope="module")
def flood_site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FloodSite]:
    """A fresh site whose sockets have small limits."""
    with _serving(request, tmp_path_factory.mktemp("flood"), extra_env=LIMITS) as server:
        yield FloodSite.of(server, pid=server.pid)


async def request(ws: ClientConnection, frame: dict[str, Any]) -> dict[str, Any]:
    """Send `frame` with a fresh ref; return the reply that echoes it."""
    ref = os.urandom(4).hex()
    await ws.send(json.dumps({**frame, "ref": ref}))
    async with asyncio.timeout(TIMEOUT):
        while (reply := json.loads(await ws.recv())).get("ref") != ref:
            pass
    return reply


async def post(ws: ClientConnection, n: int) -> int:
    """Post message `n` to general and return its seq once acked. Its client_id is new even
    when another test of the module (the same site) posted an `n` before: a repeated one is
    a retry, which the server answers with the first message's ack and broadcasts nothing."""
    client_id = f"m{n}-{os.urandom(6).hex()}"
    frame = {"type": "send", "room": "general", "body": f"{n} {BODY}", "client_id": client_id}
    ack = await request(ws, frame)
    assert ack["type"] == "ack", ack
    return ack["seq"]


@dataclass
class RoomView:
    """What a well-behaved reader of general saw."""

    seqs: list[int] = field(default_factory=list)
    went_offline: set[str] = field(default_factory=set)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)


async def watch(ws: ClientConnection, view: RoomView) -> None:
    """Read general for good, noting each message and each user who went offline."""
    while True:
        frame = json.loads(await ws.recv())
        if frame["type"] == "message":
            view.seqs.append(frame["message"]["seq"])
        elif frame["type"] == "presence" and not frame["online"]:
            view.went_offline.add(frame["user"])
        async with view.changed:
            view.changed.notify_all()


async def test_a_socket_that_never_reads_is_dropped_while_the_room_reads_on(
    flood_site: FloodSite,
) -> None:
    """Bob's socket joins general and stops reading, with a tiny receive window. Alice posts
    until the room hears that bob left: the server dropped his socket once it held more than
    the cap unsent (past what the kernel buffers). A reader in the room gets every message,
    in order, meanwhile."""
    alice, bob = await asyncio.gather(
        asyncio.to_thread(flood_site.login, "alice"), asyncio.to_thread(flood_site.login, "bob")
    )
    stalled = await asyncio.to_thread(RawSocket.open, flood_site, bob, rcvbuf=4096)
    await asyncio.to_thread(stalled.join, "general")
    reader, sender = await open_socket(flood_site), await open_socket(flood_site, alice)
    view = RoomView()
    try:
        for ws in (reader, sender):
            assert (await request(ws, {"type": "join", "room": "general"}))["type"] == "joined"
        watching = asyncio.create_task(watch(reader, view))
        seqs: list[int] = []
        while "bob" not in view.went_offline and len(seqs) < MAX_MESSAGES:
            seqs.append(await post(sender, len(seqs)))
        async with asyncio.timeout(TIMEOUT), view.changed:
            await view.changed.wait_for(
                lambda: len(view.seqs) >= len(seqs) and "bob" in view.went_offline
            )
        watching.cancel()
        frames, ended = await asyncio.to_thread(stalled.drain)
    finally:
        stalled.close()
        await reader.close()
        await sender.close()

    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert view.seqs == seqs  # every message, in order, none twice
    assert ended  # the stalled socket's connection was cut...
    assert sum(frame["type"] == "message" for frame in frames) < len(seqs)  # ...before the end
    assert f"over the {CAP}-byte cap" in flood_site.log_path.read_text()


PAGE = 512 * 1024  # the site's CHAT_FRAME_BUDGET_BYTES: the most a page of messages holds
PAGE_MESSAGES = 50  # general's last page is full of 12 kB messages: a page of ~PAGE bytes
LOW_WATER = 64 * 1024  # a page waits until its socket holds no more than this unsent
PAGES = 12  # pages asked for at once: 6 MB, more than the kernel buffers (4 MB at most here)


async def fill_general(sender: ClientConnection) -> None:
    """Post enough 12 kB messages that a join of general answers with a full page."""
    await request(sender, {"type": "join", "room": "general"})
    for n in range(PAGE_MESSAGES):
        await post(sender, n)


async def asking_for_pages(site: FloodSite) -> tuple[ClientConnection, RawSocket, int]:
    """Alice's socket, which filled general; bob's, with a 4 KiB receive window, which
    asked for general's page PAGES times at once and has read nothing; and where the
    server's log was before."""
    alice, bob = await asyncio.gather(
        asyncio.to_thread(site.login, "alice"), asyncio.to_thread(site.login, "bob")
    )
    sender = await open_socket(site, alice)
    log_before = len(site.log_path.read_text())
    raw = await asyncio.to_thread(RawSocket.open, site, bob, rcvbuf=4096)
    try:
        await fill_general(sender)
        for _ in range(PAGES):
            await asyncio.to_thread(raw.send, {"type": "join", "room": "general"})
    except BaseException:
        raw.close()
        await sender.close()
        raise
    return sender, raw, log_before


def dropped_with(log: str) -> list[int]:
    """The bytes unsent at each WebSocket drop the server logged."""
    return [int(n) for n in re.findall(r"Dropping WebSocket .*?: (\d+) bytes unsent", log)]


async def test_a_socket_that_reads_late_gets_every_page_it_asked_for(
    flood_site: FloodSite,
) -> None:
    """A page a socket asks for (a join's messages, a history page) may hold far more than
    the cap, and a tab that reconnects rejoins all its rooms at once. Bob's socket, with a
    tiny receive window, asks for general's page PAGES times (more than the kernel's
    buffers hold) and reads nothing for a second, while alice posts to the room. It is not
    dropped: each page waits until the socket has taken the one before, and a broadcast is
    not counted against the cap behind a page it asked for. It then reads every page and
    alice's message, once."""
    sender, late, log_before = await asking_for_pages(flood_site)
    try:
        await asyncio.sleep(0.3)  # the first page is written and waits in the buffers
        seq = await post(sender, PAGE_MESSAGES)
        await asyncio.sleep(1)
        frames: list[dict[str, Any]] = []
        while sum(f["type"] == "joined" for f in frames) < PAGES or not any(
            f["type"] == "message" and f["message"]["seq"] == seq for f in frames
        ):
            frames.append(await asyncio.to_thread(late.recv))
        await asyncio.to_thread(late.send, {"type": "ping", "ref": "still-there"})
        while (frame := await asyncio.to_thread(late.recv))["type"] != "pong":
            frames.append(frame)
    finally:
        late.close()
        await sender.close()

    pages = [f for f in frames if f["type"] == "joined"]
    assert len(pages) == PAGES
    assert all(len(json.dumps(page)) > CAP for page in pages)
    assert [f["message"]["seq"] for f in frames if f["type"] == "message"] == [seq]
    assert frame.get("ref") == "still-there"
    assert dropped_with(flood_site.log_path.read_text()[log_before:]) == []


async def test_a_fallback_stream_that_reads_late_gets_every_page_it_asked_for(
    flood_site: FloodSite,
) -> None:
    """The same over the HTTP fallback's stream: bob's stream, with a tiny receive window,
    POSTs PAGES joins of general at once and reads nothing for a second while alice posts.
    It is not dropped, and then reads every page and alice's message."""
    alice, bob = await asyncio.gather(
        asyncio.to_thread(flood_site.login, "alice"), asyncio.to_thread(flood_site.login, "bob")
    )
    sender = await open_socket(flood_site, alice)
    log_before = len(flood_site.log_path.read_text())
    late = await asyncio.to_thread(FallbackStream, flood_site.base_url, bob, rcvbuf=4096)
    try:
        await fill_general(sender)
        joins = [{"type": "join", "room": "general"}] * PAGES
        assert await asyncio.to_thread(late.post, flood_site.base_url, joins) == 202
        await asyncio.sleep(0.3)
        seq = await post(sender, PAGE_MESSAGES)
        await asyncio.sleep(1)
        pages = [await asyncio.to_thread(late.until, "joined") for _ in range(PAGES)]
        message = await asyncio.to_thread(late.until, "message")
    finally:
        late.close()
        await sender.close()

    assert all(len(json.dumps(page)) > CAP for page in pages)
    assert message["message"]["seq"] == seq
    assert "Dropping HTTP response" not in flood_site.log_path.read_text()[log_before:]


async def test_a_socket_that_asks_for_pages_and_never_reads_is_held_one_page_past_the_cap(
    flood_site: FloodSite,
) -> None:
    """The other side of the same rule: bob's socket asks for general's page PAGES times
    and reads nothing. Once the kernel's buffers are full, no page is written until the one
    before was taken, so when alice's posts push what it holds past the cap beyond that
    page, the server drops it holding at most one page, the low-water mark and the cap:
    not the rest of the pages."""
    sender, stalled, log_before = await asking_for_pages(flood_site)
    try:
        posted = 0
        while not dropped_with(flood_site.log_path.read_text()[log_before:]):
            assert posted < MAX_MESSAGES, "bob's socket was never dropped"
            await post(sender, PAGE_MESSAGES + posted)
            posted += 1
    finally:
        stalled.close()
        await sender.close()

    [unsent] = dropped_with(flood_site.log_path.read_text()[log_before:])
    frame = len(BODY.encode()) + 1024
    assert unsent <= PAGE + LOW_WATER + CAP + frame, unsent


async def online(ws: ClientConnection, user: str) -> bool:
    """Whether `user` is online in general, as a join answers."""
    return user in (await request(ws, {"type": "join", "room": "general"}))["online"]


async def test_a_fallback_stream_that_is_never_read_is_dropped_while_the_room_reads_on(
    flood_site: FloodSite,
) -> None:
    """The same over the HTTP fallback: bob's event stream joins general (by a POST) and is
    never read again. The server drops it once it holds more than the cap unsent and cleans
    it up (bob is no longer online), and a reader gets every message meanwhile. (Presence
    news may fold bob's join and drop into no change, so the log says when he was dropped.)"""
    alice, bob = await asyncio.gather(
        asyncio.to_thread(flood_site.login, "alice"), asyncio.to_thread(flood_site.login, "bob")
    )
    stalled, token = await asyncio.to_thread(RawSocket.open_stream, flood_site, bob, rcvbuf=4096)
    join = [{"type": "join", "room": "general"}]
    posted = await asyncio.to_thread(
        post_frames, flood_site.base_url, token, f"sessionid={bob}", join, batch=1
    )
    assert posted == 202
    reader, sender = await open_socket(flood_site), await open_socket(flood_site, alice)
    view = RoomView()
    log_before = len(flood_site.log_path.read_text())

    def dropped() -> bool:
        return "Dropping HTTP response" in flood_site.log_path.read_text()[log_before:]

    try:
        for ws in (reader, sender):
            assert (await request(ws, {"type": "join", "room": "general"}))["type"] == "joined"
        watching = asyncio.create_task(watch(reader, view))
        seqs: list[int] = []
        while not dropped() and len(seqs) < MAX_MESSAGES:
            seqs.append(await post(sender, len(seqs)))
        async with asyncio.timeout(TIMEOUT), view.changed:
            await view.changed.wait_for(lambda: len(view.seqs) >= len(seqs))
        watching.cancel()
        async with asyncio.timeout(TIMEOUT):
            while await online(sender, "bob"):  # noqa: ASYNC110 - the server's cleanup, polled
                await asyncio.sleep(0.2)
    finally:
        stalled.close()
        await reader.close()
        await sender.close()

    assert dropped()  # over the cap, not left to the 60 s idle timeout
    assert len(seqs) < MAX_MESSAGES
    assert view.seqs == seqs  # every message, in order, none twice


async def test_a_socket_sending_faster_than_served_gets_every_reply_in_order(
    flood_site: FloodSite,
) -> None:
    """1,000 pings sent at once, far more than the 64 frames the server queues for a socket:
    the server stops and starts reading it many times over, and every ping is answered, in
    order; nothing is dropped."""
    raw = await asyncio.to_thread(RawSocket.open, flood_site)
    try:
        batch = b"".join(
            text_frame(json.dumps({"type": "ping", "ref": f"p{n}"})) for n in range(1000)
        )
        await asyncio.to_thread(raw.sock.sendall, batch)
        replies = [await asyncio.to_thread(raw.recv) for _ in range(1000)]
    finally:
        raw.close()

    assert [reply["type"] for reply in replies] == ["pong"] * 1000
    assert [reply["ref"] for reply in replies] == [f"p{n}" for n in range(1000)]


def flood(raw: RawSocket, frame: bytes) -> int:
    """Push copies of `frame` without reading a reply, as fast as TCP takes them, for
    FLOOD_SECONDS and then until FLOOD_ENOUGH_BYTES went out (at most FLOOD_MAX_SECONDS),
    or until the server cuts the connection: how many bytes went out."""
    started = time.monotonic()
    deadline = started + FLOOD_MAX_SECONDS
    batch = frame * 10
    pushed = 0
    try:
        while (left := deadline - time.monotonic()) > 0:
            if pushed >= FLOOD_ENOUGH_BYTES and time.monotonic() - started >= FLOOD_SECONDS:
                break
            raw.sock.settimeout(left)
            pushed += raw.sock.send(batch)
    except (TimeoutError, ConnectionError):
        pass
    return pushed


async def test_a_flooding_socket_is_read_no_faster_than_served_and_stalls_nobody(
    flood_site: FloodSite,
) -> None:
    """An anonymous socket floods frames that each cost the server a database lookup (joins
    of a room that does not exist), reading no reply, for 8 s and until it pushed three times
    the growth limit. The server reads it only as fast as it handles its frames, so the flood
    waits in TCP (or the socket is dropped for not reading its replies) and the server's
    memory grows by a fraction of it. Meanwhile alice's
    send is acked, and afterwards a new socket is served as usual."""
    alice = await asyncio.to_thread(flood_site.login, "alice")
    sender = await open_socket(flood_site, alice)
    await request(sender, {"type": "join", "room": "general"})
    before = rss_bytes(flood_site.pid)
    flooder = await asyncio.to_thread(RawSocket.open, flood_site)
    padding = " " * (FLOOD_FRAME_BYTES - 40)
    frame = text_frame('{"type":"join","room":"no-such-room"}' + padding)
    flooding = asyncio.create_task(asyncio.to_thread(flood, flooder, frame))
    peak = before
    try:
        await asyncio.sleep(1)
        acked = asyncio.create_task(post(sender, 10_000))
        while not flooding.done():
            peak = max(peak, rss_bytes(flood_site.pid))
            await asyncio.sleep(0.05)
        acked_during_the_flood = acked.done()
        pushed = await flooding
        seq = await acked
    finally:
        flooder.close()
        await sender.close()

    assert acked_during_the_flood
    assert pushed > 2 * RSS_GROWTH_LIMIT  # enough to tell whether the server kept it
    assert peak - before < RSS_GROWTH_LIMIT, f"the server grew by {(peak - before) >> 20} MiB"
    after = await open_socket(flood_site, alice)
    try:
        assert (await request(after, {"type": "join", "room": "general"}))["type"] == "joined"
        assert await post(after, 10_001) == seq + 1
    finally:
        await after.close()
