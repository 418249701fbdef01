"""The HTTP fallback (chat/realtime/fallback.py): the same protocol over a stream of
Server-Sent Events and POSTs, for networks that block WebSockets; the same checks, limits
and cleanup as the socket, since the socket's consumer runs it."""

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from django.test import AsyncClient

from chat.models import Message
from tests.support.fallback import FallbackCommunicator
from tests.support.sockets import HOST, ORIGIN, Socket, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

BOTH = pytest.mark.parametrize("transport", ["websocket", "http"])


@BOTH
async def test_a_message_goes_out_and_comes_back_over_either_transport(
    transport, connect, alice, general
):
    socket = await connect(alice)
    joined = await socket.join("general")
    reply = await socket.request(
        {"type": "send", "room": "general", "body": "over http?", "client_id": "c1"}
    )
    broadcast = await socket.recv_until("message")

    assert joined["room"] == "general"
    assert reply["type"] == "ack"
    assert broadcast["message"]["body"] == "over http?"
    assert await database_sync_to_async(Message.objects.filter(body="over http?").count)() == 1


async def presence_of(socket: Socket, user: str) -> bool:
    """Whether the next presence news about `user` says online."""
    while (frame := await socket.recv_until("presence"))["user"] != user:
        pass
    return frame["online"]


async def test_fallback_and_socket_users_hear_each_other(connect, alice, bob, general):
    over_http = Socket(await _open_fallback(alice))
    await over_http.join("general")
    socket = await connect(bob)
    await socket.join("general")

    await over_http.request({"type": "send", "room": "general", "body": "hi", "client_id": "a1"})
    heard = await socket.recv_until("message")
    await socket.request({"type": "send", "room": "general", "body": "hey", "client_id": "b1"})
    while (frame := await over_http.recv_until("message"))["message"]["body"] != "hey":
        pass

    assert heard["message"]["author"] == "alice"
    assert frame["message"]["author"] == "bob"
    await over_http.close()


async def test_closing_the_stream_cleans_up_like_a_closed_socket(connect, alice, bob, general):
    watcher = await connect(bob)
    await watcher.join("general")
    over_http = Socket(await _open_fallback(alice))
    await over_http.join("general")
    assert await presence_of(watcher, "alice") is True

    await over_http.close()

    assert await presence_of(watcher, "alice") is False


async def test_a_client_that_stops_posting_is_disconnected_after_the_idle_timeout(
    connect, alice, bob, general, settings
):
    # Longer than presence's one-second window, so "online" is announced before "offline".
    settings.CHAT_FALLBACK_IDLE_SECONDS = 1.5
    settings.CHAT_FALLBACK_KEEPALIVE_SECONDS = 0.1
    watcher = await connect(bob)
    await watcher.join("general")
    communicator = await _open_fallback(alice)
    over_http = Socket(communicator)
    await over_http.join("general")
    assert await presence_of(watcher, "alice") is True

    assert await presence_of(watcher, "alice") is False  # alice posts nothing more
    while (closed := await communicator.receive_output(2))["type"] != "websocket.close":
        pass
    assert closed["code"] == 1001  # going away: the server ended it
    assert communicator.response_ended


async def test_keepalive_posts_keep_a_quiet_connection_open(alice, general, settings):
    settings.CHAT_FALLBACK_IDLE_SECONDS = 0.3
    settings.CHAT_FALLBACK_KEEPALIVE_SECONDS = 0.1
    communicator = await _open_fallback(alice)
    for _ in range(8):  # 0.8 s: well past the idle timeout
        assert (await communicator.post([])).status_code == 202
        await asyncio.sleep(0.1)

    assert not communicator.response_ended
    await communicator.disconnect()


async def test_a_post_with_another_users_token_is_refused_and_reaches_nobody(alice, bob, general):
    alices = await _open_fallback(alice)
    bobs = await _open_fallback(bob)
    bobs.token = alices.token  # bob learned alice's connection token somehow

    refused = await bobs.post([{"type": "join", "room": "general", "ref": "r1"}])

    assert refused.status_code == 403
    assert await alices.receive_nothing(0.2)
    await alices.disconnect()
    await bobs.disconnect()


@pytest.mark.parametrize(
    ("token", "batch", "body", "status"),
    [
        ("forged", "1", [], 403),
        (None, "1", "not a list", 400),
        (None, "1", [{"type": "ping"}] * 51, 400),
        (None, "1", b"{not json", 400),
        (None, None, [], 400),
        (None, "0", [], 400),
        (None, "-1", [], 400),
        (None, "one", [], 400),
        (None, "\u00b2", [], 400),
        (None, "1", [{"type": "send", "body": "x" * 300_000}], 413),
    ],
    ids=[
        "forged token",
        "not an array",
        "too many frames",
        "not json",
        "no batch number",
        "batch 0",
        "negative batch",
        "batch not a number",
        "batch a superscript digit",
        "too large",
    ],
)
async def test_a_bad_post_gets_a_clear_error_and_changes_nothing(
    alice, general, token, batch, body, status
):
    communicator = await _open_fallback(alice)
    data = body if isinstance(body, bytes) else json.dumps(body)
    headers = {"X-Chat-Session": token or communicator.token}
    if batch is not None:
        headers["X-Chat-Batch"] = batch
    response = await communicator.client.post(
        "/fallback/chat/send/", data=data, content_type="application/json", headers=headers
    )

    assert response.status_code == status
    assert "error" in response.json()
    assert await communicator.receive_nothing(0.2)
    await communicator.disconnect()


async def test_a_post_without_the_csrf_token_is_refused(alice, general):
    communicator = await _open_fallback(alice)
    strict = AsyncClient(enforce_csrf_checks=True, headers={"host": HOST})
    strict.cookies["sessionid"] = communicator.client.cookies["sessionid"].value

    response = await strict.post(
        "/fallback/chat/send/",
        data="[]",
        content_type="application/json",
        headers={"X-Chat-Session": communicator.token, "X-Chat-Batch": "1"},
    )

    assert response.status_code == 403
    await communicator.disconnect()


@pytest.mark.parametrize(
    ("origin", "host", "status"),
    [("http://evil.example", HOST, 403), (None, "evil.example", 400)],
    ids=["another site's page", "a host not ours"],
)
async def test_a_stream_from_elsewhere_is_refused(alice, origin, host, status):
    cookie = await database_sync_to_async(session_cookie)(alice)
    headers = [(b"host", host.encode()), (b"cookie", f"sessionid={cookie}".encode())]
    if origin:
        headers.append((b"origin", origin.encode()))
    communicator = FallbackCommunicator(headers)

    opened, refused = await communicator.connect()

    assert (opened, refused) == (False, status)


async def test_the_socket_cap_counts_fallback_connections_too(alice, general, settings):
    settings.CHAT_MAX_SOCKETS_PER_USER = 1
    first = await _open_fallback(alice)
    second = FallbackCommunicator(await _headers(alice))

    opened, _ = await second.connect()
    error = await second.receive_json_from(2)
    closed = await second.receive_output(2)

    assert opened is True  # as a socket: accepted, then told why, then closed
    assert error["code"] == "limit_reached"
    assert closed == {"type": "websocket.close", "code": 4008}
    await first.disconnect()
    await second.disconnect()


async def _headers(user) -> list[tuple[bytes, bytes]]:
    cookie = await database_sync_to_async(session_cookie)(user)
    return [
        (b"host", HOST.encode()),
        (b"origin", ORIGIN.encode()),
        (b"cookie", f"sessionid={cookie}".encode()),
    ]


async def _open_fallback(user) -> FallbackCommunicator:
    communicator = FallbackCommunicator(await _headers(user))
    opened, refused = await communicator.connect()
    assert opened, refused
    return communicator


async def test_a_deactivated_users_posts_are_refused_and_change_nothing(alice, general):
    communicator = await _open_fallback(alice)
    await database_sync_to_async(type(alice).objects.filter(pk=alice.pk).update)(is_active=False)

    refused = await communicator.post(
        [{"type": "send", "room": "general", "body": "still here?", "client_id": "c1"}]
    )

    assert refused.status_code == 403
    assert await database_sync_to_async(Message.objects.filter(body="still here?").count)() == 0
    await communicator.disconnect()


async def test_a_client_posting_faster_than_served_is_ended_and_told_why(alice, general, settings):
    settings.CHAT_FALLBACK_MAX_QUEUED_FRAMES = 2
    communicator = await _open_fallback(alice)

    accepted = await communicator.post([{"type": "ping", "ref": f"p{n}"} for n in range(3)])
    while (closed := await communicator.receive_output(2))["type"] != "websocket.close":
        pass

    assert accepted.status_code == 202  # the worker that took the POST cannot know
    assert closed["code"] == 4008
    await communicator.disconnect()


@pytest.mark.parametrize(("second", "handled"), [("3", ["p1"]), ("1", ["p1"])])
async def test_a_post_that_never_came_ends_the_connection_rather_than_skip_its_frames(
    alice, general, second, handled
):
    """POSTs are numbered: one lost on the way (the layer lost it) or repeated means the
    frames can no longer be handled in order, so the connection ends (4009), as TCP would,
    and the client reconnects and resyncs."""
    communicator = await _open_fallback(alice)
    await communicator.post([{"type": "ping", "ref": "p1"}])
    communicator.batch = int(second) - 1  # the next POST's number is `second`

    await communicator.post([{"type": "ping", "ref": "p2"}])
    frames = []
    while (out := await communicator.receive_output(2))["type"] != "websocket.close":
        frames.append(json.loads(out["text"]))

    assert [f["ref"] for f in frames if f["type"] == "pong"] == handled
    assert out["code"] == 4009
    await communicator.disconnect()
