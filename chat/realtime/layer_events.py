"""The channel-layer events each process's fan-out handles, and which of them the publisher
may carry together.

Every event names its group: one process channel receives the events of all its rooms.
A room's events travel the layer in its shard's group (`carrier`), beside those of the
other rooms of that shard, so the publisher needs one layer message per shard and turn, and
a process one receive, however many rooms are busy. `chat.protocol.events` builds the
events; this module holds only what the publisher and the fan-out both need, so neither
imports the other.
"""

import zlib
from typing import Any

from django.conf import settings

EVENT_BROADCAST = "chat.broadcast"  # a pre-encoded frame for every socket in the group
EVENT_TYPING = "chat.typing"  # a pre-encoded frame for every socket but the typist's
EVENT_LEAVE_ROOM = "chat.leave_room"  # leave a room and tell the client why (archived, banned)
EVENT_SESSION_ENDED = "chat.session_ended"  # the user's sessions ended (logout, …): close
EVENT_RECHECK_ROOM = "chat.recheck_room"  # who may read the room changed: ask again
EVENT_BATCH = "chat.batch"  # several events of one group, in order: {"events": [...]}
# Several rooms' events, each room's in order: {"streams": [[group, [event, ...]], ...]}
EVENT_STREAMS = "chat.streams"

ROOM_GROUP_PREFIX = "room."
SHARD_GROUP_PREFIX = "rooms."

# One layer message carries at most this many events, and about this much encoded text: a
# batch is one Redis value, which the layer reads and writes whole.
BATCH_EVENTS = 200
BATCH_TEXT = 256 * 1024


def is_room_stream(group: str, event: dict[str, Any]) -> bool:
    """Whether `event` is one frame of a room's own stream (a message, an edit, presence,
    typing...). Each room's frames are ordered by that room's seqs, and a client holds each
    room apart, so the streams of two rooms may pass each other on the way. Anything else (a
    user's frames, a socket leaving a room, a session ending) keeps its place among all the
    events of the process: a ban is heard before any message posted after it."""
    return group.startswith(ROOM_GROUP_PREFIX) and event["type"] in (
        EVENT_BROADCAST,
        EVENT_TYPING,
    )


def carrier(group: str) -> str:
    """The channel-layer group that carries `group`'s events: for a room, its shard's group
    (the same in every process: a CRC, not Python's salted hash); any other group carries
    itself. Who is in the room is the fan-out's business, not the layer's."""
    if not group.startswith(ROOM_GROUP_PREFIX):
        return group
    shard = zlib.crc32(group.encode()) % settings.CHAT_FANOUT_SHARDS
    return f"{SHARD_GROUP_PREFIX}{shard}"


def batch_event(group: str, batch: list[dict[str, Any]]) -> dict[str, Any]:
    """One layer message for `batch`, events of `group` in the order they must be heard."""
    if len(batch) == 1:
        return batch[0]
    return {"type": EVENT_BATCH, "group": group, "events": batch}


def streams_event(streams: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """One layer message for the events of several groups, each group's in order."""
    if len(streams) == 1:
        [(group, batch)] = streams.items()
        return batch_event(group, batch)
    return {"type": EVENT_STREAMS, "streams": [[group, batch] for group, batch in streams.items()]}


def events_in(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The events one layer message carries, in order (each names its group)."""
    if message["type"] == EVENT_STREAMS:
        return [event for _, batch in message["streams"] for event in batch]
    if message["type"] == EVENT_BATCH:
        return list(message["events"])
    return [message]


def event_count(message: dict[str, Any]) -> int:
    """How many events one layer message carries."""
    return len(events_in(message))


def event_size(event: dict[str, Any]) -> int:
    """About what the event weighs on the layer: its frame's encoded text."""
    text = event.get("text")
    return len(text) if isinstance(text, str) else 64
