"""Two real daphne workers on one Redis and one database: what happens on one worker reaches
sockets on the other, and a killed worker's clients lose nothing."""

import asyncio
import contextlib
import http.cookiejar
import json
import time
import urllib.parse
import urllib.request
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from tests.support.cluster import (
    PRESENCE_TTL,
    SOCKET_CAP,
    STAFF,
    TIMEOUT,
    Cluster,
    Worker,
    open_site_socket,
    open_socket,
    request,
    wait_for,
)
from tests.support.js_client import JsClient
from tests.support.live_server import PASSWORD
from tests.support.live_sockets import (
    AsyncFallback,
    AsyncPoll,
    FallbackStream,
    SocketTransport,
)

pytestmark = pytest.mark.live


def admin_action(worker: Worker, model: str, action: str, pks: list[int]) -> int:
    """Run an admin changelist action over HTTP as the staff user; return the status."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    login_url = f"{worker.base_url}/admin/login/"
    opener.open(login_url, timeout=TIMEOUT).read()
    token = next(c.value for c in jar if c.name == "csrftoken")
    form = {"username": STAFF, "password": PASSWORD, "csrfmiddlewaretoken": token, "next": "/"}
    opener.open(
        urllib.request.Request(
            login_url, data=urllib.parse.urlencode(form).encode(), headers={"Referer": login_url}
        ),
        timeout=TIMEOUT,
    ).read()
    url = f"{worker.base_url}/admin/chat/{model}/"
    token = next(c.value for c in jar if c.name == "csrftoken")
    body = urllib.parse.urlencode(
        {
            "action": action,
            "_selected_action": [str(pk) for pk in pks],
            "csrfmiddlewaretoken": token,
        },
        doseq=True,
    ).encode()
    with opener.open(
        urllib.request.Request(url, data=body, headers={"Referer": url}), timeout=TIMEOUT
    ) as response:
        return response.status


async def test_messages_presence_and_typing_cross_workers(cluster: Cluster) -> None:
    one, two = cluster.workers
    alice = await open_socket(one, "alice")
    bob = await open_socket(two, "bob")
    alice_seen: list[dict] = []

    await request(alice, {"type": "join", "room": "general"}, alice_seen)
    joined = await request(bob, {"type": "join", "room": "general"})
    assert joined["online"] == ["alice", "bob"]  # alice's worker told Redis
    assert await wait_for(alice, "presence", alice_seen, user="bob", online=True)

    ack = await request(
        alice, {"type": "send", "room": "general", "body": "from one", "client_id": "x1"}
    )
    message = await wait_for(bob, "message")
    assert message["message"]["id"] == ack["id"]
    assert message["message"]["body"] == "from one"

    await bob.send(json.dumps({"type": "typing", "room": "general"}))
    assert (await wait_for(alice, "typing", alice_seen))["user"] == "bob"

    await bob.close()
    assert await wait_for(alice, "presence", alice_seen, user="bob", online=False)
    await alice.close()


async def test_a_fallback_connection_posts_to_one_worker_and_streams_from_the_other(
    cluster: Cluster,
) -> None:
    """No sticky sessions: the POSTs land on worker two, the stream is held by worker one,
    and the frames reach it through Redis; the replies and broadcasts come down the stream."""
    one, two = cluster.workers
    bob = await open_socket(two, "bob")
    await request(bob, {"type": "join", "room": "general"})
    sessionid = await asyncio.to_thread(one.login, "alice")
    alice = await asyncio.to_thread(FallbackStream, one.base_url, sessionid)
    try:
        frames = [
            {"type": "join", "room": "general", "ref": "j"},
            {"type": "send", "room": "general", "body": "over http", "client_id": "h1", "ref": "s"},
        ]
        assert await asyncio.to_thread(alice.post, two.base_url, frames) == 202
        joined = await asyncio.to_thread(alice.until, "joined", ref="j")
        ack = await asyncio.to_thread(alice.until, "ack", ref="s")
        heard = await wait_for(bob, "message")
        echoed = await asyncio.to_thread(alice.until, "message")
    finally:
        await asyncio.to_thread(alice.close)

    assert joined["room"] == "general"
    assert heard["message"]["id"] == ack["id"] == echoed["message"]["id"]
    assert heard["message"]["author"] == "alice"
    assert await wait_for(bob, "presence", user="alice", online=False)  # the stream closed
    await bob.close()


async def test_a_polling_connection_is_served_through_either_worker(cluster: Cluster) -> None:
    """No sticky sessions for long-polling either: the connection runs on worker one, its
    polls alternate between the workers and its POSTs go to worker two; every frame comes
    once, in order, whichever worker a poll reached."""
    one, two = cluster.workers
    bob = await open_socket(two, "bob")
    await request(bob, {"type": "join", "room": "general"})
    sessionid = await asyncio.to_thread(one.login, "alice")
    alice = await AsyncPoll.open(one.base_url, sessionid, post_url=two.base_url)
    try:
        await alice.send({"type": "join", "room": "general", "ref": "j"})
        frames = []
        for n in range(6):
            alice.poll_url = (one, two)[n % 2].base_url  # the next poll goes elsewhere
            await alice.send(
                {"type": "send", "room": "general", "body": f"p{n}", "client_id": f"p{n}"}
            )
            while (frame := await asyncio.wait_for(alice.recv(), TIMEOUT))["type"] != "ack":
                frames.append(frame)
        heard = [(await wait_for(bob, "message"))["message"]["body"] for _ in range(6)]
        await alice.close()
    finally:
        alice.polling.cancel()

    assert heard == [f"p{n}" for n in range(6)]
    assert {one.base_url, two.base_url} <= set(alice.polls)
    echoed = [f["message"]["body"] for f in frames if f["type"] == "message"]
    assert echoed == [f"p{n}" for n in range(len(echoed))]
    assert await wait_for(bob, "presence", user="alice", online=False)  # it said it left
    await bob.close()


async def test_admin_actions_reach_sockets_on_every_worker(cluster: Cluster) -> None:
    one, two = cluster.workers
    readers = [await open_socket(one), await open_socket(two)]
    for reader in readers:
        await request(reader, {"type": "join", "room": "general"})
    talker = await open_socket(two, "alice")
    await request(talker, {"type": "join", "room": "general"})
    ack = await request(
        talker, {"type": "send", "room": "general", "body": "rude", "client_id": "d1"}
    )

    status = await asyncio.to_thread(admin_action, one, "message", "soft_delete", [ack["id"]])
    assert status == 200
    for reader in readers:
        assert (await wait_for(reader, "message_deleted"))["id"] == ack["id"]

    general_pk = 1  # the data migration's room, the first of a fresh database
    status = await asyncio.to_thread(admin_action, two, "room", "archive", [general_pk])
    assert status == 200
    for socket in (*readers, talker):
        assert (await wait_for(socket, "room_closed"))["room"] == "general"
        await socket.close()


async def reader_connection(transport: str, *, stream_from: Worker, post_to: Worker) -> Any:
    """An anonymous reader's connection: a socket to `stream_from`, or the HTTP fallback
    streaming from it and POSTing to `post_to`."""
    if transport == "http":
        return await AsyncFallback.open(stream_from.base_url, post_url=post_to.base_url)
    if transport == "poll":  # opened on one worker, its polls and POSTs through the other
        return await AsyncPoll.open(
            stream_from.base_url, poll_url=post_to.base_url, post_url=post_to.base_url
        )
    return await open_socket(stream_from)


async def next_frame(connection: Any) -> dict:
    """The next frame from a socket or a fallback connection."""
    if isinstance(connection, AsyncFallback | AsyncPoll):
        return await connection.recv()
    return json.loads(await connection.recv())


@pytest.mark.parametrize("transport", ["websocket", "http", "poll"])
async def test_a_killed_workers_clients_recover_on_another_and_go_offline(
    cluster: Cluster, transport: str
) -> None:
    """The reader is the browser's own client (sync.js), over a socket or, where WebSockets
    are blocked, the HTTP fallback (its POSTs to the other worker, its stream from the one
    that dies)."""
    doomed, survivor = cluster.workers
    reader = await JsClient.start()
    await reader.watch("general")
    ws = await reader_connection(transport, stream_from=doomed, post_to=survivor)
    await reader.connected(ws if transport != "websocket" else SocketTransport(ws))
    alice = await open_socket(doomed, "alice")  # only ever on the doomed worker
    await request(alice, {"type": "join", "room": "general"})
    watcher = await open_socket(survivor, "bob")
    sender = await open_socket(survivor, "bob")  # bob's second tab
    watcher_seen: list[dict] = []
    await request(watcher, {"type": "join", "room": "general"}, watcher_seen)
    await request(sender, {"type": "join", "room": "general"})

    async def post(first: int, count: int) -> None:
        for n in range(first, first + count):
            reply = await request(
                sender, {"type": "send", "room": "general", "body": f"m{n}", "client_id": f"m{n}"}
            )
            assert reply["type"] == "ack", reply

    async def read_until_cut() -> None:
        with contextlib.suppress(Exception):
            while True:
                await reader.receive(await next_frame(ws))

    reading = asyncio.create_task(read_until_cut())
    await post(0, 50)
    doomed.server.kill()  # SIGKILL: no close frames, no cleanup, no presence update
    killed_at = time.monotonic()

    async def offline_after() -> float:
        await wait_for(watcher, "presence", watcher_seen, user="alice", online=False)
        return time.monotonic() - killed_at

    # Heard while the reader recovers (a polling reader learns its worker died only when a
    # poll goes unanswered: CHAT_FALLBACK_POLL_SECONDS + 5 s).
    went_offline = asyncio.create_task(offline_after())
    await reading
    await reader.disconnected()
    await post(50, 50)  # meanwhile the room goes on

    # The client reconnects (here: to the surviving worker) and rejoins with `since`.
    ws = await reader_connection(transport, stream_from=survivor, post_to=survivor)
    await reader.connected(ws if transport != "websocket" else SocketTransport(ws))
    async with asyncio.timeout(TIMEOUT):
        while (await reader.state())["rooms"]["general"]["cursor"] != 100:
            await reader.receive(await next_frame(ws))
    shown = (await reader.state())["rooms"]["general"]
    assert shown["seqs"] == list(range(1, 101))
    assert len(set(shown["ids"])) == 100
    await ws.close()
    await reader.close()

    # alice's socket died with its worker: the survivor's sweep tells bob she went offline,
    # within TTL + TTL/3 of the last heartbeat (40 s with the default TTL of 30 s).
    assert await went_offline < PRESENCE_TTL * 2
    assert (await request(watcher, {"type": "join", "room": "general"}))["online"] == ["bob"]
    for socket in (watcher, sender):
        await socket.close()


@pytest.mark.timeout(300)
async def test_a_thousand_sockets_connecting_at_once_all_succeed(cluster: Cluster) -> None:
    worker = cluster.workers[0]

    async def connect_and_join() -> bool:
        ws = await connect(
            worker.ws_url, origin=Origin(worker.base_url), open_timeout=120, close_timeout=1
        )
        try:
            # Every socket must get in and be answered; how fast a storm is served on two
            # shared cores is the bench's business, not this test's (9.8 s alone, over 60 s
            # beside the rest of the suite in CI).
            reply = await request(ws, {"type": "join", "room": "general"}, within=120)
            return reply["type"] == "joined"
        finally:
            await ws.close()

    results = await asyncio.gather(
        *(connect_and_join() for _ in range(1000)), return_exceptions=True
    )

    failures = [r for r in results if r is not True]
    assert failures == []


async def test_a_users_socket_cap_counts_their_tabs_on_both_workers(cluster: Cluster) -> None:
    one, two = cluster.workers
    sessionid = await asyncio.to_thread(one.login, "alice")
    tabs = [await open_site_socket(worker, sessionid) for worker in (one, two, one, two)]
    assert len(tabs) == SOCKET_CAP
    for tab in tabs:  # each was let in: it can join
        assert (await request(tab, {"type": "join", "room": "general"}))["type"] == "joined"

    refused = await open_site_socket(one, sessionid)  # the fifth, on either worker
    async with asyncio.timeout(TIMEOUT):
        error = json.loads(await refused.recv())
        await refused.wait_closed()
    assert (error["type"], error["code"]) == ("error", "limit_reached")
    assert refused.close_code == 4008

    await tabs.pop().close()  # one tab closes on worker two: worker one lets a new one in
    async with asyncio.timeout(TIMEOUT):
        while True:
            again = await open_site_socket(one, sessionid)
            try:
                assert (await request(again, {"type": "ping"}))["type"] == "pong"
                break
            except ConnectionClosed:
                await asyncio.sleep(0.1)  # refused: the close was not counted yet
    for tab in [*tabs, again]:
        await tab.close()
