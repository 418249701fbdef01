"""chat/protocol/schema.json matches the code: the parsers, the builders, the error codes
and the limits; every builder's frame conforms; and the schema accepts exactly the frames
the parsers accept."""

import ast
import datetime
import math
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from chat import reactions
from chat.models import Message, Reaction, Room
from chat.protocol import events, requests
from chat.protocol.errors import ChatError, ErrorCode
from tests.support import PROJECT_ROOT
from tests.support.protocol import check_server_frame, frame_types, named_fields, problem, schema

CHAT = PROJECT_ROOT / "chat"


def built_frame_types(path: Path) -> set[str]:
    """The `type` of every dict literal in a module whose "type" is a string constant."""
    kinds = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if (
                    isinstance(key, ast.Constant)
                    and key.value == "type"
                    and isinstance(value, ast.Constant)
                    and isinstance(value.value, str)
                ):
                    kinds.add(value.value)
    return kinds


def test_the_schema_is_a_valid_draft_2020_12_schema():
    Draft202012Validator.check_schema(schema())


def test_every_request_type_has_a_client_definition_and_every_definition_a_parser():
    assert frame_types("client") == set(requests.PARSERS)


def test_every_frame_type_events_builds_has_a_server_definition_and_back():
    assert frame_types("server") == built_frame_types(CHAT / "protocol" / "events.py")


def test_no_module_but_events_builds_a_frame():
    """Only ASGI messages and scopes (websocket, http.*) are dict literals with a "type"
    elsewhere (the HTTP fallback speaks both)."""
    for path in CHAT.rglob("*.py"):
        if path.name != "events.py":
            kinds = built_frame_types(path)
            assert all(kind.split(".")[0] in {"websocket", "http"} for kind in kinds), (
                path.name,
                kinds,
            )


def test_the_unions_name_every_definition_of_their_side():
    defs = schema()["$defs"]
    for side in ("client", "server"):
        refs = {item["$ref"] for item in defs[f"{side}_frame"]["oneOf"]}
        assert refs == {f"#/$defs/{side}.{kind}" for kind in frame_types(side)}


def test_the_error_codes_are_those_of_error_code():
    assert schema()["$defs"]["error_code"]["enum"] == [code.value for code in ErrorCode]


def test_the_limits_are_those_of_requests():
    defs = schema()["$defs"]
    assert defs["client_ref"]["maxLength"] == requests.MAX_REF_LENGTH
    assert defs["server_ref"]["maxLength"] == requests.MAX_REF_LENGTH
    assert defs["client_id"]["maxLength"] == requests.MAX_CLIENT_ID_LENGTH
    assert defs["seq"]["maximum"] == defs["id"]["maximum"] == requests.MAX_SEQ
    assert defs["emoji"]["enum"] == [*reactions.PALETTE, *reactions.ALTERNATES]
    assert defs["reactions"]["maxItems"] == len(reactions.PALETTE)


def sample_message(**fields) -> Message:
    now = datetime.datetime(2026, 11, 25, 21, 40, 0, 123456, tzinfo=datetime.UTC)
    values = {
        "pk": 42,
        "seq": 7,
        "rev": 7,
        "room": Room(slug="general", name="General"),
        "author": get_user_model()(username="alice"),
        "body": "hi",
        "body_html": "<p>hi</p>",
        "created_at": now,
        "client_id": "3f1c",
    }
    return Message(**(values | fields))


def test_every_builder_makes_a_conforming_frame():
    now = datetime.datetime(2026, 11, 25, 21, 40, tzinfo=datetime.UTC)
    edited = sample_message(rev=9, edited_at=now)
    deleted = sample_message(rev=10, deleted_at=now, client_id=None)
    edited.reaction_rows = []  # as selectors load it (a message changed since posting)
    reacted = sample_message(rev=11)
    alice, bob = get_user_model()(username="alice"), get_user_model()(username="bob")
    reacted.reaction_rows = [
        Reaction(message=reacted, user=alice, emoji="👍"),
        Reaction(message=reacted, user=bob, emoji="👍"),
        Reaction(message=reacted, user=bob, emoji="❤️"),
    ]
    root = sample_message(pk=40, seq=3, rev=12, thread_count=2, thread_last_seq=11)
    root.thread_last_at, root.reaction_rows = now, []
    quoted = sample_message(pk=43, seq=8, rev=8, reply_to=root, thread_root=root)
    msgs = [
        events.message_dict(m) for m in (sample_message(), edited, deleted, reacted, root, quoted)
    ]
    assert msgs[4]["thread_summary"] == {
        "count": 2,
        "last_seq": 11,
        "last_at": now.isoformat(),
    }
    assert msgs[5]["reply_to"] == {
        "id": 40,
        "seq": 3,
        "author": "alice",
        "excerpt": "hi",
        "deleted": False,
    }
    assert msgs[5]["thread"] == {"root": 40, "also_in_room": False}
    assert msgs[3]["reactions"] == [
        {"emoji": "👍", "count": 2, "users": ["alice", "bob"]},
        {"emoji": "❤️", "count": 1, "users": ["bob"]},
    ]
    frames = [
        events.joined_frame(
            room_slug="general",
            name="General",
            topic="",
            messages=msgs,
            last_seq=10,
            online=["alice"],
            guests=0,
            presence_v=1_796_000_000_000_000,
            has_more=False,
            read=None,
            unread=0,
            thread_reads={40: 11},
        ),
        events.left_frame(room_slug="general"),
        events.ack_frame(room_slug="general", client_id="c", message_id=42, seq=7),
        events.history_frame(room_slug="general", messages=[], has_more=True),
        events.pong_frame(rooms={"general": 10, "empty": 0}, live=True),
        events.edited_frame(room_slug="general", message_id=42, seq=9),
        events.deleted_frame(room_slug="general", message_id=42, seq=10),
        events.message_frame(sample_message()),
        events.message_edited_frame(edited),
        events.message_deleted_frame(room_slug="general", message_id=42, seq=10),
        events.reacted_frame(room_slug="general", message_id=42, seq=11),
        events.message_reactions_frame(reacted),
        events.message_thread_frame(
            room_slug="general",
            root_id=40,
            seq=12,
            summary=events.thread_summary(count=2, last_seq=11, last_at=now),
        ),
        events.thread_frame(
            room_slug="general", root=msgs[4], messages=msgs[5:], has_more=False, read=None
        ),
        events.thread_read_frame(room_slug="general", root_id=40, seq=11),
        events.notification_frame(reason="mention", message=sample_message()),
        events.announcement_frame(announcement_id=1, body="Hi all", created=now.isoformat()),
        events.read_frame(room_slug="general", seq=7),
        events.live_frame(ok=False),
        events.presence_frame(
            room_slug="general", username="alice", online=True, v=1_796_000_000_000_001
        ),
        events.guests_frame(room_slug="general", count=3, v=1_796_000_000_000_002),
        events.profile_frame(username="alice"),
        events.typing_frame(room_slug="general", username="alice"),
        events.room_closed_frame(room_slug="general", reason="archived"),
        events.removed_frame(room_slug="general", reason="banned"),
        events.membership_frame(
            room_slug="general",
            name="General",
            member=True,
            starred=False,
            notify="mentions",
            owner=True,
            private=False,
            direct=False,
            people=None,
            last_seq=10,
            read=None,
            unread=0,
        ),
        events.room_updated_frame(room_slug="general", name="General", topic="Say hi"),
        events.room_opened_frame(
            room_slug="general",
            name="General",
            topic="",
            private=False,
            direct=False,
            members=3,
            last_seq=10,
        ),
        events.session_ended_frame(reason="logout"),
        events.error_frame(ChatError(ErrorCode.RATE_LIMITED, retry_after=1.25), "r7"),
        events.error_frame(ChatError(ErrorCode.NOT_FOUND)),
    ]
    for frame in frames:
        check_server_frame(frame)
    assert {frame["type"] for frame in frames} == frame_types("server")


def test_a_frame_off_the_contract_is_caught():
    assert problem("server", {"type": "left", "room": "general", "extra": 1})
    assert problem("server", {"type": "ack", "room": "general", "client_id": "c", "id": 1})
    assert problem("server", {"type": "error", "code": "oops", "message": "?"})
    assert problem("server", {"type": "typing", "room": "general", "user": "a", "ref": "r"})
    assert problem("server", {"type": "shout"})
    assert problem("client", {"type": "send", "room": "general", "body": "hi"})


# The parsers and the schema agree on every frame made of the protocol's fields. JSON text
# carries no lone surrogate the server accepts, and no client writes 1.0 for 1 (JSON Schema
# counts it an integer; Python's parsers do not), so the strategies leave those out.
text = st.text(alphabet=st.characters(codec="utf-8"), max_size=70) | st.sampled_from(
    ["", "\x00", "a" * 64, "a" * 65, "💬" * 64, "💬" * 65]
)
scalars = (
    st.none()
    | st.booleans()
    | st.sampled_from([-1, 0, 1, 2, requests.MAX_SEQ, requests.MAX_SEQ + 1])
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False).filter(lambda f: not f.is_integer() or math.isinf(f))
    | text
)
values = scalars | st.lists(scalars, max_size=2) | st.dictionaries(text, scalars, max_size=2)
# Each field is mostly absent or valid, else near a limit or anything at all, so that most
# frames are valid or one field away from it.
near_limits = st.sampled_from(
    [None, True, False, -1, 0, 1, 2, requests.MAX_SEQ, requests.MAX_SEQ + 1, 1.5]
    + ["", "\x00", "a", "general", "a\x00b", "💬"]
    + ["a" * n for n in (63, 64, 65)]
    + ["💬" * n for n in (64, 65)]
)
some_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=20)
seqs = st.integers(min_value=0, max_value=requests.MAX_SEQ)
valid = {
    "room": st.just("general") | some_text.filter(bool),
    "since": st.none() | seqs,
    "before": st.none() | seqs,
    "limit": st.none() | st.integers(min_value=1, max_value=requests.MAX_SEQ),
    "body": some_text,
    "client_id": st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"))
    .filter(bool)
    .map(lambda value: value[: requests.MAX_CLIENT_ID_LENGTH]),
    "ref": st.none() | some_text,
    "id": st.integers(min_value=1, max_value=requests.MAX_SEQ),
    "seq": seqs,
    "quiet": st.booleans(),
    "emoji": st.sampled_from([*reactions.PALETTE, *reactions.ALTERNATES, "", "💬", "👍🏽", 1]),
    "on": st.booleans(),
    "reply_to": st.none() | st.integers(min_value=1, max_value=requests.MAX_SEQ),
    "thread": st.none() | st.integers(min_value=1, max_value=requests.MAX_SEQ),
    "also_in_room": st.booleans(),
}


@st.composite
def protocol_shaped(draw: st.DrawFn) -> dict:
    frame = {"type": draw(st.sampled_from([*requests.PARSERS, "shout", None, 1]))}
    for name, good in valid.items():
        how = draw(st.sampled_from(["valid", "valid", "valid", "absent", "near", "any"]))
        if how != "absent":
            strategy = {"valid": good, "near": near_limits, "any": values}[how]
            frame[name] = draw(strategy)
    return frame


def parses(frame: dict) -> bool:
    ref = frame.get("ref")
    if ref is not None and (not isinstance(ref, str) or len(ref) > requests.MAX_REF_LENGTH):
        return False  # requests.decode refuses it
    try:
        requests.parse(frame)
    except ChatError:  # always bad_request: parsing is about the frame's shape only
        return False
    return True


@hypothesis_settings(max_examples=1000)
@given(frame=protocol_shaped())
def test_the_schema_accepts_exactly_what_the_parsers_accept(frame):
    """Fields a definition does not name are left out: the server ignores them, and a
    conforming client does not send them."""
    frame = named_fields(frame)
    assert (problem("client", frame) is None) == parses(frame), problem("client", frame)


MAX = requests.MAX_SEQ


@pytest.mark.parametrize(
    ("frame", "valid"),
    [
        ({"type": "join", "room": "general"}, True),
        ({"type": "join", "room": "general", "since": 0, "quiet": True, "ref": "c1"}, True),
        ({"type": "join", "room": "general", "since": MAX}, True),
        ({"type": "join", "room": "general", "since": MAX + 1}, False),
        ({"type": "join", "room": "general", "since": -1}, False),
        ({"type": "join", "room": "general", "quiet": None}, False),
        ({"type": "join", "room": ""}, False),
        ({"type": "history", "room": "general", "before": None, "limit": 50}, True),
        ({"type": "history", "room": "general", "limit": 0}, False),
        ({"type": "send", "room": "general", "body": "", "client_id": "💬" * 64}, True),
        ({"type": "send", "room": "general", "body": "", "client_id": "a" * 65}, False),
        ({"type": "send", "room": "general", "body": "", "client_id": ""}, False),
        ({"type": "send", "room": "general", "body": "", "client_id": "a\x00"}, False),
        ({"type": "send", "room": "general", "body": 1, "client_id": "a"}, False),
        ({"type": "send", "room": "r", "body": "", "client_id": "a", "reply_to": 1}, True),
        ({"type": "send", "room": "r", "body": "", "client_id": "a", "reply_to": None}, True),
        ({"type": "send", "room": "r", "body": "", "client_id": "a", "reply_to": 0}, False),
        ({"type": "send", "room": "r", "body": "", "client_id": "a", "thread": MAX}, True),
        ({"type": "send", "room": "r", "body": "", "client_id": "a", "thread": "1"}, False),
        (
            {"type": "send", "room": "r", "body": "", "client_id": "a", "thread": 1}
            | {"also_in_room": True},
            True,
        ),
        ({"type": "send", "room": "r", "body": "", "client_id": "a", "also_in_room": True}, False),
        (
            {"type": "send", "room": "r", "body": "", "client_id": "a", "thread": None}
            | {"also_in_room": True},
            False,
        ),
        ({"type": "send", "room": "r", "body": "", "client_id": "a", "also_in_room": False}, True),
        ({"type": "send", "room": "r", "body": "", "client_id": "a", "also_in_room": 1}, False),
        ({"type": "thread", "room": "general", "id": 1}, True),
        ({"type": "thread", "room": "general", "id": 0}, False),
        ({"type": "thread", "room": "general"}, False),
        ({"type": "thread_read", "room": "general", "id": 1, "seq": 0}, True),
        ({"type": "thread_read", "room": "general", "id": 1}, False),
        ({"type": "ping", "ref": None}, True),
        ({"type": "ping", "ref": "r" * 64}, True),
        ({"type": "ping", "ref": "r" * 65}, False),
        ({"type": "ping", "ref": 7}, False),
        ({"type": "edit", "room": "general", "id": 1, "body": "x"}, True),
        ({"type": "edit", "room": "general", "id": 0, "body": "x"}, False),
        ({"type": "delete", "room": "general", "id": MAX + 1}, False),
        ({"type": "read", "room": "general", "seq": 0}, True),
        ({"type": "read", "room": "general", "seq": None}, False),
        ({"type": "read", "room": "general", "seq": True}, False),
        ({"type": "react", "room": "general", "id": 1, "emoji": "👍", "on": True}, True),
        ({"type": "react", "room": "general", "id": 1, "emoji": "❤", "on": False}, True),
        ({"type": "react", "room": "general", "id": 1, "emoji": "❤️", "on": False}, True),
        ({"type": "react", "room": "general", "id": 1, "emoji": "👍🏽", "on": True}, False),
        ({"type": "react", "room": "general", "id": 1, "emoji": "<b>", "on": True}, False),
        ({"type": "react", "room": "general", "id": 1, "emoji": "👍", "on": None}, False),
        ({"type": "react", "room": "general", "id": 1, "emoji": "👍"}, False),
        ({"type": "react", "room": "general", "id": 0, "emoji": "👍", "on": True}, False),
        ({"type": "shout"}, False),
    ],
)
def test_schema_and_parsers_agree_at_the_limits(frame, valid):
    assert (problem("client", frame) is None) == valid
    assert parses(frame) == valid
