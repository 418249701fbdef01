"""The HTTP fallback (chat/realtime/fallback.py): the same protocol over a stream of
Server-Sent Events (or long polls, where a proxy buffers the stream) and POSTs, for networks
that block WebSockets; the same checks, limits and cleanup as the socket, since the socket's
consumer runs it. Tests marked MODES run on the stream and on long-polling."""

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from django.test import AsyncClient

from chat.models import Message
from chat.realtime import fallback
from tests.support.factories import post_messages
from tests.support.fallback import FallbackCommunicator, PollCommunicator
from tests.support.sockets import HOST, ORIGIN, Socket, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

BOTH = pytest.mark.parametrize("transport", ["websocket", "http", "poll"])
MODES = pytest.mark.parametrize("mode", ["stream", "poll"])
COMMUNICATORS = {"stream": FallbackCommunicator, "poll": PollCommunicator}


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


@MODES
async def test_fallback_and_socket_users_hear_each_other(connect, alice, bob, general, mode):
    over_http = Socket(await _open_fallback(alice, mode))
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


@MODES
async def test_closing_the_stream_cleans_up_like_a_closed_socket(
    connect, alice, bob, general, mode
):
    watcher = await connect(bob)
    await watcher.join("general")
    over_http = Socket(await _open_fallback(alice, mode))
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


@MODES
async def test_a_post_with_another_users_token_is_refused_and_reaches_nobody(
    alice, bob, general, mode
):
    alices = await _open_fallback(alice, mode)
    bobs = await _open_fallback(bob, mode)
    own, bobs.token = bobs.token, alices.token  # bob learned alice's connection token somehow

    refused = await bobs.post([{"type": "join", "room": "general", "ref": "r1"}])
    if mode == "poll":  # nor may he take her frames
        assert (await bobs.poll(0))[0] == 403

    assert refused.status_code == 403
    assert await alices.receive_nothing(0.2)
    bobs.token = own
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
@MODES
async def test_a_stream_from_elsewhere_is_refused(alice, origin, host, status, mode):
    cookie = await database_sync_to_async(session_cookie)(alice)
    headers = [(b"host", host.encode()), (b"cookie", f"sessionid={cookie}".encode())]
    if origin:
        headers.append((b"origin", origin.encode()))
    communicator = COMMUNICATORS[mode](headers)

    opened, refused = await communicator.connect()

    assert (opened, refused) == (False, status)
    assert not fallback.polling  # nothing was left running


@MODES
async def test_the_socket_cap_counts_fallback_connections_too(alice, general, settings, mode):
    settings.CHAT_MAX_SOCKETS_PER_USER = 1
    first = await _open_fallback(alice, mode)
    second = COMMUNICATORS[mode](await _headers(alice))

    opened, _ = await second.connect()
    error = await second.receive_json_from(2)
    closed = await second.receive_output(2)

    assert opened is True  # as a socket: accepted, then told why, then closed
    assert error["code"] == "limit_reached"
    assert closed == {"type": "websocket.close", "code": 4008}
    if mode == "poll":  # told, so it ends now rather than linger until idle
        await second.ended(2)
        assert len(fallback.polling) == 1
    await first.disconnect()
    await second.disconnect()


async def _headers(user) -> list[tuple[bytes, bytes]]:
    cookie = await database_sync_to_async(session_cookie)(user)
    return [
        (b"host", HOST.encode()),
        (b"origin", ORIGIN.encode()),
        (b"cookie", f"sessionid={cookie}".encode()),
    ]


async def _open_fallback(user, mode: str = "stream") -> FallbackCommunicator:
    communicator = COMMUNICATORS[mode](await _headers(user))
    opened, refused = await communicator.connect()
    assert opened, refused
    return communicator


@MODES
async def test_a_deactivated_users_posts_are_refused_and_change_nothing(alice, general, mode):
    communicator = await _open_fallback(alice, mode)
    await database_sync_to_async(type(alice).objects.filter(pk=alice.pk).update)(is_active=False)

    refused = await communicator.post(
        [{"type": "send", "room": "general", "body": "still here?", "client_id": "c1"}]
    )

    assert refused.status_code == 403
    assert await database_sync_to_async(Message.objects.filter(body="still here?").count)() == 0
    await communicator.disconnect()


@MODES
async def test_a_client_posting_faster_than_served_is_ended_and_told_why(
    alice, general, settings, mode
):
    settings.CHAT_FALLBACK_MAX_QUEUED_FRAMES = 2
    communicator = await _open_fallback(alice, mode)

    accepted = await communicator.post([{"type": "ping", "ref": f"p{n}"} for n in range(3)])
    while (closed := await communicator.receive_output(2))["type"] != "websocket.close":
        pass

    assert accepted.status_code == 202  # the worker that took the POST cannot know
    assert closed["code"] == 4008
    await communicator.disconnect()


@MODES
@pytest.mark.parametrize(("second", "handled"), [("3", ["p1"]), ("1", ["p1"])])
async def test_a_post_that_never_came_ends_the_connection_rather_than_skip_its_frames(
    alice, general, second, handled, mode
):
    """POSTs are numbered: one lost on the way (the layer lost it) or repeated means the
    frames can no longer be handled in order, so the connection ends (4009), as TCP would,
    and the client reconnects and resyncs."""
    communicator = await _open_fallback(alice, mode)
    await communicator.post([{"type": "ping", "ref": "p1"}])
    communicator.batch = int(second) - 1  # the next POST's number is `second`

    await communicator.post([{"type": "ping", "ref": "p2"}])
    frames = []
    while (out := await communicator.receive_output(2))["type"] != "websocket.close":
        frames.append(json.loads(out["text"]))

    assert [f["ref"] for f in frames if f["type"] == "pong"] == handled
    assert out["code"] == 4009
    await communicator.disconnect()


# Long-polling: what only a connection that outlives its responses has to get right.


async def _quiet_poller(user) -> PollCommunicator:
    """A polling connection whose polls the test makes itself (no poll loop)."""
    communicator = await _open_fallback(user, "poll")
    communicator.task.cancel()
    return communicator


async def _frames_of(communicator: PollCommunicator, ack: int) -> tuple[int, list[dict]]:
    status, answer = await communicator.poll(ack)
    assert status == 200, answer
    return answer["first"], answer["frames"]


async def test_a_lost_answer_loses_nothing_the_next_poll_brings_the_same_frames(alice, general):
    communicator = await _quiet_poller(alice)
    await communicator.post([{"type": "ping", "ref": "p1"}, {"type": "join", "room": "general"}])
    first, frames = await _frames_of(communicator, 0)
    while len(frames) < 2:  # the join's reply may come in an answer of its own
        more_first, more = await _frames_of(communicator, 0)
        first, frames = more_first, more

    again_first, again = await _frames_of(communicator, 0)  # that answer never arrived
    later_first, later = await _frames_of(communicator, 1)  # this time it did, up to frame 1

    assert first == again_first == 1
    assert again[: len(frames)] == frames
    assert later_first == 2
    assert later == again[1:]
    assert frames[0] == {"type": "pong", "ref": "p1", "rooms": {}, "live": True}
    await communicator.disconnect()


async def test_a_poll_with_nothing_to_take_is_answered_empty_after_the_poll_timeout(
    alice, general, settings
):
    settings.CHAT_FALLBACK_POLL_SECONDS = 0.3
    communicator = await _quiet_poller(alice)
    _, frames = await _frames_of(communicator, 0)  # whatever came as it opened

    started = asyncio.get_running_loop().time()
    first, nothing = await _frames_of(communicator, len(frames))
    waited = asyncio.get_running_loop().time() - started

    assert (first, nothing) == (len(frames) + 1, [])
    assert 0.25 < waited < 3
    await communicator.disconnect()


async def test_a_newer_poll_sends_the_older_one_back_empty(alice, general, settings):
    settings.CHAT_FALLBACK_POLL_SECONDS = 30
    communicator = await _quiet_poller(alice)
    older = asyncio.create_task(communicator.poll(0))
    await asyncio.sleep(0.2)
    assert not older.done()  # it waits for frames

    newer = asyncio.create_task(communicator.poll(0))
    status, answer = await asyncio.wait_for(older, 2)
    await communicator.post([{"type": "ping", "ref": "p1"}])
    newer_status, newer_answer = await asyncio.wait_for(newer, 2)

    assert (status, answer["frames"]) == (200, [])
    assert newer_status == 200
    assert newer_answer["frames"][-1]["ref"] == "p1"
    await communicator.disconnect()


@pytest.mark.parametrize(
    ("ack", "why"),
    [
        (b"", "no ack"),
        (b"-1", "negative"),
        (b"one", "not a number"),
        (b"\xc2\xb2", "superscript"),
        (b"99", "past the last frame sent"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
async def test_a_bad_ack_gets_a_clear_error_and_changes_nothing(alice, general, ack, why):
    communicator = await _quiet_poller(alice)
    await communicator.post([{"type": "ping", "ref": "p1"}])

    status, answer = await communicator.request(
        [(b"x-chat-session", communicator.token.encode()), (b"x-chat-ack", ack)]
    )
    _, frames = await _frames_of(communicator, 0)

    assert status == 400, why
    assert "error" in answer
    assert frames[-1]["ref"] == "p1"  # still there, still unacked
    await communicator.disconnect()


async def test_a_stale_poll_behind_an_earlier_ack_is_refused_and_acks_nothing_back(
    alice, general, settings
):
    settings.CHAT_FALLBACK_POLL_SECONDS = 0.2
    communicator = await _quiet_poller(alice)
    await communicator.post([{"type": "ping", "ref": "p1"}, {"type": "ping", "ref": "p2"}])
    while len((await _frames_of(communicator, 0))[1]) < 2:
        pass
    await _frames_of(communicator, 2)  # frames 1 and 2 acked…

    status, _ = await communicator.poll(1)  # …so a late poll that acks only 1 is stale

    assert status == 400
    await communicator.disconnect()


async def test_a_forged_token_cannot_poll(alice, general):
    communicator = await _quiet_poller(alice)
    token = communicator.token
    communicator.token = token[:-2] + ("AA" if not token.endswith("AA") else "BB")

    status, answer = await communicator.poll(0)

    assert status == 403
    assert "error" in answer
    communicator.token = token
    await communicator.disconnect()


async def test_a_poll_for_a_connection_that_ended_is_told_to_open_a_new_one(
    alice, general, settings, monkeypatch
):
    settings.CHAT_FALLBACK_POLL_SECONDS = 0.2
    monkeypatch.setattr(fallback, "ANSWER_WAIT_MARGIN", 0.3)
    communicator = await _quiet_poller(alice)
    await communicator.post([], **{"X-Chat-Close": "1"})
    await communicator.ended()

    status, answer = await communicator.poll(0)

    assert status == 410
    assert "new one" in answer["error"]


async def test_leaving_ends_the_connection_at_once_like_a_closed_socket(
    connect, bob, alice, general
):
    watcher = await connect(bob)
    await watcher.join("general")
    communicator = await _open_fallback(alice, "poll")
    over_http = Socket(communicator)
    await over_http.join("general")
    assert await presence_of(watcher, "alice") is True

    communicator.task.cancel()
    await communicator.post(
        [{"type": "send", "room": "general", "body": "bye", "client_id": "c1"}],
        **{"X-Chat-Close": "1"},
    )
    await communicator.ended(2)

    heard = await watcher.recv_until("message")
    assert heard["message"]["body"] == "bye"  # the POST's frames first, then the end
    assert await presence_of(watcher, "alice") is False
    assert not [c for c in fallback.polling if c.channel and c.token == communicator.token]


async def test_a_client_that_stops_polling_is_disconnected_after_the_idle_timeout(
    connect, alice, bob, general, settings, monkeypatch
):
    settings.CHAT_FALLBACK_IDLE_SECONDS = 1.5
    settings.CHAT_FALLBACK_KEEPALIVE_SECONDS = 0.1
    settings.CHAT_FALLBACK_POLL_SECONDS = 0.2
    monkeypatch.setattr(fallback, "ANSWER_WAIT_MARGIN", 0.3)
    watcher = await connect(bob)
    await watcher.join("general")
    communicator = await _open_fallback(alice, "poll")
    await Socket(communicator).join("general")
    assert await presence_of(watcher, "alice") is True

    communicator.task.cancel()  # the page froze: no polls, no POSTs

    assert await presence_of(watcher, "alice") is False
    await communicator.ended()
    assert (await communicator.poll())[0] == 410


async def test_polls_keep_a_quiet_connection_open_without_posts(alice, general, settings):
    settings.CHAT_FALLBACK_IDLE_SECONDS = 0.5
    settings.CHAT_FALLBACK_KEEPALIVE_SECONDS = 0.1
    settings.CHAT_FALLBACK_POLL_SECONDS = 0.1
    communicator = await _open_fallback(alice, "poll")  # its loop polls; it never POSTs

    await asyncio.sleep(1.5)  # three idle timeouts

    assert not communicator.response_ended
    assert communicator.polls > 5
    await communicator.disconnect()


async def test_frames_nobody_takes_are_capped_and_the_client_told_why(alice, general, settings):
    settings.CHAT_FALLBACK_MAX_UNACKED_BYTES = 1000  # about 24 pongs
    communicator = await _quiet_poller(alice)
    await communicator.post([{"type": "ping", "ref": f"p{n:03}"} for n in range(40)])

    frames = []
    while True:  # now it reads: what fitted, then the end, with its reason
        _, answer = await communicator.poll(len(frames))
        frames += answer["frames"]
        if answer["close"] is not None:
            break

    assert answer["close"] == 4008
    assert 5 < len(frames) < 40
    assert [f["ref"] for f in frames] == [f"p{n:03}" for n in range(len(frames))]
    await communicator.ended()


async def test_pages_a_poller_asked_for_wait_for_its_acks_and_do_not_end_it(
    alice, general, settings
):
    """A page (a join's messages) may alone be larger than the cap on unacked frames, and a
    tab asks for one per room at once. Each page waits until the client has acked all but
    the low-water mark of what went before, and is not counted against the cap until acked:
    the client gets all three, in order, and the connection is not ended (4008)."""
    settings.CHAT_FALLBACK_MAX_UNACKED_BYTES = 2000
    settings.CHAT_PAGE_LOW_WATER_BYTES = 500
    settings.CHAT_FALLBACK_POLL_SECONDS = 0.2
    await database_sync_to_async(post_messages)(general, alice, 40)  # a page: about 8 KB
    communicator = await _quiet_poller(alice)
    await communicator.post([{"type": "join", "room": "general", "ref": f"j{n}"} for n in range(3)])
    await asyncio.sleep(0.3)

    frames: list[dict] = []
    pages_per_answer = []
    while sum(frame["type"] == "joined" for frame in frames) < 3:
        status, answer = await communicator.poll(len(frames))
        assert status == 200, answer
        assert answer["close"] is None
        frames += answer["frames"]
        pages_per_answer.append(sum(frame["type"] == "joined" for frame in answer["frames"]))

    assert [n for n in pages_per_answer if n] == [1, 1, 1]  # each waited for the acks
    pages = [frame for frame in frames if frame["type"] == "joined"]
    assert [page["ref"] for page in pages] == ["j0", "j1", "j2"]
    assert all(len(json.dumps(page)) > 2000 for page in pages)
    await communicator.disconnect()


async def test_an_answer_is_capped_in_size_and_the_rest_comes_in_the_next(
    alice, general, monkeypatch
):
    monkeypatch.setattr(fallback, "MAX_ANSWER_BYTES", 200)
    communicator = await _quiet_poller(alice)
    await communicator.post([{"type": "ping", "ref": f"p{n}"} for n in range(10)])
    await asyncio.sleep(0.3)

    sizes, frames = [], []
    while len(frames) < 10:
        _, more = await _frames_of(communicator, len(frames))
        sizes.append(len(more))
        frames += more

    assert len(sizes) >= 2
    assert max(sizes) < 10
    assert [f["ref"] for f in frames] == [f"p{n}" for n in range(10)]
    await communicator.disconnect()


class _Recorder:
    """A channel layer stand-in that keeps what is sent."""

    def __init__(self) -> None:
        self.sent: list[dict] = []

    async def send(self, channel: str, message: dict) -> None:
        self.sent.append(message)


@pytest.mark.parametrize(
    ("ack", "empty", "frames", "close"),
    [
        (0, False, ["p1", "p2"], 4008),
        (0, True, [], None),
        (2, True, [], 4008),
        (1, False, ["p2"], 4008),
    ],
    ids=[
        "all of it",
        "sent back empty with frames pending",
        "sent back empty at the end",
        "the rest",
    ],
)
async def test_an_answer_carries_the_close_only_after_the_last_frame(ack, empty, frames, close):
    """A connection's end comes after its frames: an answer that stops short of the last one
    (a poll sent back empty by a newer one) must not say the connection ended."""
    connection = fallback.PollConnection({"user": None}, consumer=None)
    connection.layer = _Recorder()
    for ref in ("p1", "p2"):
        await connection.down(json.dumps({"type": "pong", "ref": ref}))
    await connection.announce_close(4008)

    await connection._answer({"ack": ack, "reply": "r", "id": "x"}, empty=empty)

    answer = json.loads(connection.layer.sent[0]["body"])
    assert [f["ref"] for f in answer["frames"]] == frames
    assert answer["close"] == close
    assert connection.told_end.is_set() is (close is not None)
