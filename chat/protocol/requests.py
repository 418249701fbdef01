"""Client → server frames: parse and validate, or raise ChatError(bad_request).

Parsing is pure: it touches no database and no state, so a bad frame changes nothing.
"""

import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from .. import reactions
from .errors import ChatError, ErrorCode

MAX_SEQ = 2**63 - 1  # the largest value a PositiveBigIntegerField holds on every database
MAX_REF_LENGTH = 64
MAX_CLIENT_ID_LENGTH = 64


@dataclass(frozen=True)
class Join:
    room: str
    since: int | None
    quiet: bool = False  # follow the room without being counted online (the lobby)


@dataclass(frozen=True)
class Leave:
    room: str


@dataclass(frozen=True)
class Send:
    room: str
    body: str
    client_id: str
    attachments: tuple[int, ...] = ()  # ids of the sender's uploads into the room
    reply_to: int | None = None  # the id of a message of the room it quotes
    thread: int | None = None  # the id of a message whose thread it goes in
    also_in_room: bool = False  # a thread reply shown in the room's main log too


@dataclass(frozen=True)
class Typing:
    room: str


@dataclass(frozen=True)
class History:
    room: str
    before: int | None
    limit: int


@dataclass(frozen=True)
class Ping:
    pass


@dataclass(frozen=True)
class Edit:
    room: str
    id: int
    body: str


@dataclass(frozen=True)
class Delete:
    room: str
    id: int


@dataclass(frozen=True)
class Read:
    room: str
    seq: int


@dataclass(frozen=True)
class React:
    room: str
    id: int
    emoji: str
    on: bool  # put the reaction on (true) or take it back (false): a retry changes nothing


@dataclass(frozen=True)
class Thread:
    room: str
    id: int  # the root (a thread reply's id stands for its root)


@dataclass(frozen=True)
class ThreadRead:
    room: str
    id: int  # the root
    seq: int


Request = (Join | Leave | Send | Typing | History | Ping | Edit | Delete | Read | React) | (
    Thread | ThreadRead
)


def _bad(message: str) -> ChatError:
    return ChatError(ErrorCode.BAD_REQUEST, message)


def _room(frame: dict[str, Any]) -> str:
    room = frame.get("room")
    if not isinstance(room, str) or not room:
        raise _bad('"room" must be a room slug (a non-empty string).')
    return room


def _seq(frame: dict[str, Any], key: str, *, minimum: int = 0) -> int | None:
    value = frame.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_SEQ:
        raise _bad(f'"{key}" must be a whole number from {minimum} up.')
    return value


def _string(frame: dict[str, Any], key: str, *, max_length: int) -> str:
    value = frame.get(key)
    if not isinstance(value, str) or not value or len(value) > max_length or "\x00" in value:
        raise _bad(f'"{key}" must be a string of 1 to {max_length} characters.')
    return value


def _join(frame: dict[str, Any]) -> Join:
    quiet = frame.get("quiet", False)
    if not isinstance(quiet, bool):
        raise _bad('"quiet" must be true or false.')
    return Join(room=_room(frame), since=_seq(frame, "since"), quiet=quiet)


def _leave(frame: dict[str, Any]) -> Leave:
    return Leave(room=_room(frame))


def _send(frame: dict[str, Any]) -> Send:
    body = _body(frame)
    client_id = _string(frame, "client_id", max_length=MAX_CLIENT_ID_LENGTH)
    thread = _seq(frame, "thread", minimum=1)
    also_in_room = frame.get("also_in_room", False)
    if not isinstance(also_in_room, bool):
        raise _bad('"also_in_room" must be true or false.')
    if also_in_room and thread is None:
        raise _bad('"also_in_room" goes with "thread": only a thread reply can be in both.')
    return Send(
        room=_room(frame),
        body=body,
        client_id=client_id,
        attachments=_attachments(frame),
        reply_to=_seq(frame, "reply_to", minimum=1),
        thread=thread,
        also_in_room=also_in_room,
    )


def _attachments(frame: dict[str, Any]) -> tuple[int, ...]:
    """`attachments`: a list of upload ids (whole numbers from 1), at most
    CHAT_UPLOAD_MAX_FILES, none twice; absent means none."""
    value = frame.get("attachments", [])
    limit = settings.CHAT_UPLOAD_MAX_FILES
    if (
        not isinstance(value, list)
        or len(value) > limit
        or not all(type(v) is int and 1 <= v <= MAX_SEQ for v in value)
        or len(set(value)) != len(value)
    ):
        raise _bad(f'"attachments" must be a list of at most {limit} distinct file ids.')
    return tuple(value)


def _typing(frame: dict[str, Any]) -> Typing:
    return Typing(room=_room(frame))


def _history(frame: dict[str, Any]) -> History:
    limit = _seq(frame, "limit", minimum=1)
    if limit is None:
        limit = settings.CHAT_PAGE_SIZE
    return History(
        room=_room(frame),
        before=_seq(frame, "before"),
        limit=min(limit, settings.CHAT_HISTORY_LIMIT),
    )


def _ping(frame: dict[str, Any]) -> Ping:
    return Ping()


def _required_seq(frame: dict[str, Any], key: str, *, minimum: int = 0) -> int:
    value = _seq(frame, key, minimum=minimum)
    if value is None:
        raise _bad(f'"{key}" is required: a whole number from {minimum} up.')
    return value


def _body(frame: dict[str, Any]) -> str:
    body = frame.get("body")
    if not isinstance(body, str):
        raise _bad('"body" must be a string.')
    return body


def _edit(frame: dict[str, Any]) -> Edit:
    return Edit(room=_room(frame), id=_required_seq(frame, "id", minimum=1), body=_body(frame))


def _delete(frame: dict[str, Any]) -> Delete:
    return Delete(room=_room(frame), id=_required_seq(frame, "id", minimum=1))


def _read(frame: dict[str, Any]) -> Read:
    return Read(room=_room(frame), seq=_required_seq(frame, "seq"))


def _react(frame: dict[str, Any]) -> React:
    on = frame.get("on")
    if not isinstance(on, bool):
        raise _bad('"on" must be true (react) or false (take the reaction back).')
    emoji = frame.get("emoji")
    canonical = reactions.canonical(emoji) if isinstance(emoji, str) else None
    if canonical is None:
        raise _bad(f'"emoji" must be one of the reactions: {" ".join(reactions.PALETTE)}')
    return React(
        room=_room(frame), id=_required_seq(frame, "id", minimum=1), emoji=canonical, on=on
    )


def _thread(frame: dict[str, Any]) -> Thread:
    return Thread(room=_room(frame), id=_required_seq(frame, "id", minimum=1))


def _thread_read(frame: dict[str, Any]) -> ThreadRead:
    return ThreadRead(
        room=_room(frame), id=_required_seq(frame, "id", minimum=1), seq=_required_seq(frame, "seq")
    )


PARSERS = {
    "join": _join,
    "leave": _leave,
    "send": _send,
    "typing": _typing,
    "history": _history,
    "ping": _ping,
    "edit": _edit,
    "delete": _delete,
    "read": _read,
    "react": _react,
    "thread": _thread,
    "thread_read": _thread_read,
}


def decode(text: str | None) -> tuple[dict[str, Any], str | None]:
    """Decode a text frame into (object, ref); ref is None when absent or unusable."""
    if text is None:
        raise _bad("Frames must be JSON text, not binary.")
    try:
        frame = json.loads(text)
    except (ValueError, RecursionError):
        raise _bad("The frame is not valid JSON.") from None
    if not isinstance(frame, dict):
        raise _bad("A frame must be a JSON object.")
    if not _encodable(text, frame):
        raise _bad("The frame holds text that is not Unicode (a lone surrogate).")
    ref = frame.get("ref")
    if ref is not None and (not isinstance(ref, str) or len(ref) > MAX_REF_LENGTH):
        raise _bad(f'"ref" must be a string of at most {MAX_REF_LENGTH} characters.')
    return frame, ref


def _encodable(text: str, frame: dict[str, Any]) -> bool:
    """Whether every string in the frame can be encoded as UTF-8, so that no field the
    server echoes, stores or looks up (ref, body, room…) makes an encoder fail later.

    JSON's `\\ud800` escape decodes to a lone surrogate, which UTF-8 cannot encode: the
    frame's text is fine, the decoded strings are not. Only a frame with an escape needs
    the walk (iterative: frames may nest deeply)."""
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            return False
    if "\\u" not in text:
        return True
    stack: list[Any] = [frame]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str):
            try:
                value.encode()
            except UnicodeEncodeError:
                return False
    return True


def parse(frame: dict[str, Any]) -> Request:
    """Turn a decoded frame into a typed request."""
    kind = frame.get("type")
    if not isinstance(kind, str):
        raise _bad('"type" must be a string.')
    parser = PARSERS.get(kind)
    if parser is None:
        raise _bad(f"Unknown frame type {kind[:40]!r}.")
    return parser(frame)
