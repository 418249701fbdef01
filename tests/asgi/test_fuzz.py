"""Property-based fuzzing of the socket: arbitrary frames thrown at the real consumer.

Whatever arrives — wrong types, huge numbers, deep nesting, unicode edge cases, lone
surrogates, NUL bytes, control characters, not JSON at all — the consumer never crashes and
never closes the socket, answers each request with a well-formed frame that daphne can
encode, the stored messages stay valid, and once closed the socket is counted nowhere.
"""

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.conf import settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from chat import reactions
from chat.models import Message, Reaction, Room
from chat.protocol import requests
from chat.protocol.errors import ErrorCode
from chat.realtime.runtime import runtime_for_loop
from chatsite.asgi import application
from tests.support.protocol import (
    check_client_frame,
    check_server_frame,
    frame_types,
    named_fields,
    schema,
)
from tests.support.sockets import HOST, ORIGIN, encoding_like_daphne, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

# Every frame the schema lets the server send: a new frame is fuzzed as soon as it is in
# chat/protocol/schema.json (as `membership` and `room_updated` are), with no list to update.
SERVER_FRAMES = frame_types("server")
CODES = {code.value for code in ErrorCode}
FRAME_TYPES = [*requests.PARSERS, "shout"]  # every client frame, and one that is none

# Lone surrogates (category Cs) are text JSON can carry (as \ud800 escapes) and UTF-8 cannot.
edge_text = (
    st.text(alphabet=st.characters(codec="utf-8", categories=None), max_size=40)
    | st.text(alphabet=st.characters(categories=["Cs"]) | st.characters(), max_size=8)
    | st.sampled_from(
        [
            "",
            "\x00",
            "\u0000abc",
            "\ud7ff",
            "\ud800",
            "a\udfff",
            "\u202e",
            "💬" * 5,
            " \n\t",
            "a" * 5000,
        ]
    )
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | edge_text
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(edge_text, inner, max_size=4),
    max_leaves=12,
)
# Every field any client frame of the schema names is thrown, with values near the real
# ones where a field has some (a new request field is fuzzed with no list to update).
CLIENT_FIELDS = sorted(
    {
        name
        for kind in frame_types("client")
        for name in schema()["$defs"][f"client.{kind}"]["properties"]
    }
    - {"type"}
)
NEAR_REAL = {
    "room": st.sampled_from(["general", "secret", "nope", "../x", ""]) | json_values,
    "body": edge_text | json_values,
    "client_id": edge_text | json_values,
    "ref": edge_text | json_values,
    "emoji": st.sampled_from([*reactions.PALETTE, *reactions.ALTERNATES]) | edge_text,
}
protocol_shaped = st.fixed_dictionaries(
    {"type": st.sampled_from(FRAME_TYPES)},
    optional={
        name: NEAR_REAL.get(name, st.integers(min_value=-3, max_value=40) | st.booleans())
        | json_values
        for name in CLIENT_FIELDS
    },
)


# Well-formed sends with hostile bodies and ids, and edits, deletions, read marks and
# reactions of the messages they may have stored: these reach the database.
sends = st.fixed_dictionaries(
    {
        "type": st.just("send"),
        "room": st.just("general"),
        "body": edge_text,
        "client_id": edge_text,
    },
    optional={
        "reply_to": st.integers(min_value=1, max_value=40),
        "thread": st.integers(min_value=1, max_value=40),
        "also_in_room": st.booleans(),
    },
)
changes = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["edit", "delete", "read", "react", "thread", "thread_read"]),
        "room": st.just("general"),
        "id": st.integers(min_value=1, max_value=40),
        "seq": st.integers(min_value=0, max_value=40),
        "body": edge_text,
        "emoji": st.sampled_from([*reactions.PALETTE, *reactions.ALTERNATES]) | edge_text,
        "on": st.booleans(),
    }
)


def encode(value) -> str:
    return json.dumps(value, allow_nan=True)


frames = st.one_of(
    st.text(max_size=200),  # mostly not JSON
    st.text(alphabet=st.characters(categories=["Cs"]) | st.characters(), max_size=20),
    json_values.map(encode),
    protocol_shaped.map(encode),
    sends.map(encode),
    changes.map(encode),
    st.integers(min_value=1, max_value=3000).map(lambda n: "[" * n + "]" * n),  # deep nesting
)


def well_formed(frame: dict) -> bool:
    if not isinstance(frame, dict) or frame.get("type") not in SERVER_FRAMES:
        return False
    if frame["type"] == "error":
        return frame.get("code") in CODES and isinstance(frame.get("message"), str)
    return True


async def throw(cookie: str, texts: list[str]) -> list[dict]:
    """Send each text, then a ping; return everything heard. Fails if the socket closes,
    if a frame cannot be encoded as daphne would, if a frame heard or a frame that passed
    the server's shape checks (no bad_request) breaks the protocol's schema, or if the
    socket is still counted anywhere once it closed."""
    communicator = WebsocketCommunicator(
        encoding_like_daphne(application),
        "/ws/chat/",
        headers=[
            (b"host", HOST.encode()),
            (b"origin", ORIGIN.encode()),
            (b"cookie", f"sessionid={cookie}".encode()),
        ],
    )
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    heard = []
    try:
        await communicator.send_json_to({"type": "join", "room": "general"})
        for n, text in enumerate(texts):
            await communicator.send_input({"type": "websocket.receive", "text": text})
            await communicator.send_json_to({"type": "ping", "ref": f"probe-{n}"})
            refused = False
            while True:
                output = await communicator.receive_output(timeout=5)
                assert output["type"] == "websocket.send", output  # never closed
                frame = json.loads(output["text"])
                check_server_frame(frame)
                heard.append(frame)
                refused |= frame["type"] == "error" and frame["code"] == "bad_request"
                if frame.get("ref") == f"probe-{n}" and frame["type"] == "pong":
                    break
            if not refused:
                check_client_frame(named_fields(json.loads(text)))
    finally:
        await communicator.disconnect()
    general = await database_sync_to_async(Room.objects.get)(slug="general")
    runtime = runtime_for_loop()
    assert await runtime.presence.online(room_id=general.pk) == []
    assert await runtime.presence.guests(room_id=general.pk) == 0
    assert runtime.limits.sockets == {}
    assert runtime.fanout.members == {}
    return heard


@pytest.fixture
def cookie(alice, general, make_room) -> str:
    make_room("secret", is_private=True)
    return session_cookie(alice)


@hypothesis_settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(texts=st.lists(frames, min_size=1, max_size=6))
def test_arbitrary_frames_never_break_the_socket_or_the_data(cookie, texts):
    channel_layers.backends.clear()  # a fresh in-memory layer for this example's event loop
    Message.objects.all().delete()  # each example starts from an empty room
    Room.objects.update(last_seq=0)
    heard = asyncio.run(throw(cookie, texts))

    assert all(well_formed(frame) for frame in heard), heard
    messages = list(Message.objects.order_by("room_id", "seq"))
    for room in Room.objects.all():
        mine = [m for m in messages if m.room_id == room.pk]
        seqs, revs = [m.seq for m in mine], sorted(m.rev for m in mine)
        # Each event (a message, an edit, a deletion, a reaction) took the next seq: seqs and
        # revs are unique, a change comes after its message, and the newest event is some rev.
        assert len(set(seqs)) == len(seqs)
        assert len(set(revs)) == len(revs)
        assert all(m.seq <= m.rev <= room.last_seq for m in mine)
        assert (revs[-1] if revs else 0) == room.last_seq
        if all(m.rev == m.seq for m in mine):
            assert seqs == list(range(1, room.last_seq + 1))
        # A message never changed has no reactions (events.reaction_summary relies on it);
        # a deleted one has none left; every one is of the palette.
        reacted = {r.message_id: r for r in Reaction.objects.filter(message__room=room)}
        assert all(m.rev > m.seq and m.deleted_at is None for m in mine if m.pk in reacted)
        assert all(r.emoji in reactions.PALETTE for r in reacted.values())
        # Replies quote and thread replies hang off messages of their own room; a thread
        # has one level (its root is no reply); a live root's summary counts its live replies.
        by_id = {m.pk: m for m in mine}
        for m in mine:
            assert m.reply_to_id is None or m.reply_to_id in by_id
            if m.thread_root_id is not None:
                assert by_id[m.thread_root_id].thread_root_id is None
            replies = [r for r in mine if r.thread_root_id == m.pk and r.deleted_at is None]
            if m.deleted_at is None:
                assert m.thread_count == len(replies)
    for message in messages:
        assert message.body.strip()
        assert "\x00" not in message.body
        assert len(message.body) <= settings.CHAT_MAX_MESSAGE_LENGTH
