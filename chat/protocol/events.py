"""The wire contract: group names, event and frame types, and the one message serializer.

Everything a socket sends or the channel layer carries is built here, so history, broadcasts,
acks and pages cannot drift apart. Layer payloads carry only ids, strings, numbers and ISO
timestamps (channels-redis serializes them with msgpack).
"""

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.urls import reverse

from ..models import Attachment, Message, Profile, Reaction
from ..realtime.layer_events import (  # the events each process's fan-out handles
    EVENT_BROADCAST,
    EVENT_LEAVE_ROOM,
    EVENT_RECHECK_ROOM,
    EVENT_SESSION_ENDED,
    EVENT_TYPING,
    ROOM_GROUP_PREFIX,
)
from ..realtime.publisher import publish
from .errors import ChatError

# Every socket, signed in or not: a site-wide announcement reaches each socket once, however
# many rooms it is in (Socket.IO's union rule).
SITE_GROUP = "site"


def room_group(room_id: int) -> str:
    """The channel-layer group of a room, built from its primary key, never from user text."""
    return f"{ROOM_GROUP_PREFIX}{room_id}"


def user_group(user_id: int) -> str:
    """The group of every socket of one signed-in user (all their tabs, on every worker)."""
    return f"user.{user_id}"


def message_dict(message: Message) -> dict[str, Any]:
    """The MSG object of the protocol. Needs `room`, `author` and `author__profile` loaded
    (select_related), as every selector and service loads a message.

    `rev` is the seq of the message's latest change (== seq until it is edited or deleted);
    `html` is the body as rendered and sanitised when it was written (chat/formatting.py),
    the only HTML a client inserts; a deleted message (only ever in a `since` replay) keeps
    its ids and loses its body and its HTML. `reactions` is its reaction summary
    (`reaction_summary`). `reply_to` quotes the message it replies to (`reply_quote`);
    `thread` says whose thread it is a reply in; `thread_summary`, for a root, its replies
    (`thread_summary`). Load `reply_to` and `reply_to__author` with it too
    (selectors.MESSAGE_RELATED)."""
    deleted = message.deleted_at is not None
    profile = _profile(message)
    return {
        "id": message.pk,
        "seq": message.seq,
        "rev": message.rev,
        "room": message.room.slug,
        "author": message.author.get_username(),
        "author_display": (profile and profile.display_name) or message.author.get_username(),
        "author_avatar": profile.avatar_url() if profile else "",
        "body": "" if deleted else message.body,
        "html": "" if deleted else message.body_html,
        "created": message.created_at.isoformat(),
        "edited": message.edited_at.isoformat() if message.edited_at else None,
        "deleted": deleted,
        "client_id": message.client_id,
        "reactions": reaction_summary(message),
        "files": [] if deleted else [_file_with_urls(stored) for stored in message.files],
        "reply_to": reply_quote(message),
        "thread": (
            {"root": message.thread_root_id, "also_in_room": message.also_in_room}
            if message.thread_root_id
            else None
        ),
        "thread_summary": (
            thread_summary(
                count=message.thread_count,
                last_seq=message.thread_last_seq,
                last_at=message.thread_last_at,
            )
            if message.thread_count and not deleted
            else None
        ),
    }


EXCERPT_LENGTH = 120


def reply_quote(message: Message) -> dict[str, Any] | None:
    """What a reply shows of the message it quotes: its id and seq (to jump to it), its
    author and a plain-text excerpt of its body (the client shows it as text); a deleted
    original keeps its ids and loses its text."""
    original = message.reply_to if message.reply_to_id else None
    if original is None:
        return None
    gone = original.deleted_at is not None
    text = " ".join(original.body.split())
    if len(text) > EXCERPT_LENGTH:
        text = text[: EXCERPT_LENGTH - 1] + "…"
    return {
        "id": original.pk,
        "seq": original.seq,
        "author": original.author.get_username(),
        "excerpt": "" if gone else text,
        "deleted": gone,
    }


def thread_summary(*, count: int, last_seq: int, last_at: datetime | None) -> dict[str, Any]:
    """A root message's thread: how many live replies, and the seq and time of the newest."""
    return {
        "count": count,
        "last_seq": last_seq,
        "last_at": last_at.isoformat() if last_at else None,
    }


def reaction_summary(message: Message) -> list[dict[str, Any]]:
    """The message's reactions, one entry per emoji in the order each was first used:
    {"emoji", "count", "users"}, `users` the first CHAT_REACTION_NAMES to react with it.

    Selectors load them with a page (`selectors.with_reactions`, as `reaction_rows`); a
    message loaded without them asks the database, unless it cannot have any: a deleted
    one, or one never changed since it was posted (rev == seq; every reaction takes a
    seq), so a new message's broadcast costs no query."""
    if message.deleted_at is not None or message.rev == message.seq:
        return []
    rows = getattr(message, "reaction_rows", None)
    if rows is None:
        rows = Reaction.objects.filter(message=message).select_related("user").order_by("pk")
    summary: dict[str, dict[str, Any]] = {}
    for reaction in rows:
        entry = summary.setdefault(
            reaction.emoji, {"emoji": reaction.emoji, "count": 0, "users": []}
        )
        entry["count"] += 1
        if len(entry["users"]) < settings.CHAT_REACTION_NAMES:
            entry["users"].append(reaction.user.get_username())
    return list(summary.values())


def attachment_dict(attachment: Attachment) -> dict[str, Any]:
    """What a message stores of each of its files (`Message.files`), written once when the
    file is tied to it: MSG's `files` adds the URLs to fetch it by (`_file_with_urls`)."""
    return {
        "id": attachment.pk,
        "name": attachment.name,
        "size": attachment.size,
        "type": attachment.content_type,
        "image": attachment.is_image,
        "width": attachment.width,
        "height": attachment.height,
    }


def file_dict(attachment: Attachment) -> dict[str, Any]:
    """An attachment as MSG's `files` shows it (the reply to an upload too)."""
    return _file_with_urls(attachment_dict(attachment))


def _file_with_urls(stored: dict[str, Any]) -> dict[str, Any]:
    """One entry of MSG's `files`: the stored dict and where to fetch the file (and, for an
    image, its thumbnail); each URL answers only those who may read the room."""
    url = reverse("chat:file", kwargs={"file_id": stored["id"], "name": stored["name"]})
    thumb = None
    if stored["image"]:
        thumb = reverse("chat:file_thumb", kwargs={"file_id": stored["id"]})
    return {**stored, "url": url, "thumb_url": thumb}


def _profile(message: Message) -> Profile | None:
    """The author's profile (load it with the message: `author__profile`), or None: a user
    who never saved one shows their username and initials."""
    try:
        return message.author.profile
    except Profile.DoesNotExist:
        return None


def messages_within(
    messages: list[Message], *, budget: int, keep_newest: bool
) -> tuple[list[dict[str, Any]], bool]:
    """MSG objects for as many of `messages` (oldest first) as fit in `budget` bytes once
    encoded, at least one, keeping the newest or the oldest; and whether any were left out.
    A page of long messages must still fit in one WebSocket frame (daphne refuses to send
    one over 1 MiB), so a big page is cut and the client asks for the rest."""
    dicts = [message_dict(m) for m in messages]
    order = range(len(dicts) - 1, -1, -1) if keep_newest else range(len(dicts))
    kept: list[int] = []
    total = 0
    for i in order:
        size = len(encode(dicts[i]).encode())
        if kept and total + size > budget:
            break
        kept.append(i)
        total += size
    kept.sort()
    return [dicts[i] for i in kept], len(kept) < len(dicts)


def encode(frame: dict[str, Any]) -> str:
    """Encode a frame once; broadcasts carry the text so no recipient encodes it again."""
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


def joined_frame(
    *,
    room_slug: str,
    name: str,
    topic: str,
    messages: list[dict[str, Any]],
    last_seq: int,
    online: list[str],
    guests: int,
    presence_v: int,
    has_more: bool,
    read: int | None,
    unread: int,
    thread_reads: dict[int, int] | None = None,
) -> dict[str, Any]:
    """The reply to `join`: the room, the messages the client lacks and who is there (as of
    the presence version `presence_v`); `thread_reads`, the user's read mark of each thread
    of the room they read (root id → seq), for the unread dots."""
    return {
        "type": "joined",
        "room": room_slug,
        "name": name,
        "topic": topic,
        "messages": messages,
        "last_seq": last_seq,
        "online": online,
        "guests": guests,
        "presence_v": presence_v,
        "has_more": has_more,
        "read": read,
        "unread": unread,
        "thread_reads": {str(root): seq for root, seq in (thread_reads or {}).items()},
    }


def left_frame(*, room_slug: str) -> dict[str, Any]:
    """The reply to `leave` (sent even when the socket was not in the room)."""
    return {"type": "left", "room": room_slug}


def ack_frame(*, room_slug: str, client_id: str, message_id: int, seq: int) -> dict[str, Any]:
    """The reply to `send`, once the message (or the retried original) is committed."""
    return {"type": "ack", "room": room_slug, "client_id": client_id, "id": message_id, "seq": seq}


def history_frame(
    *, room_slug: str, messages: list[dict[str, Any]], has_more: bool
) -> dict[str, Any]:
    """The reply to `history`: a page of older messages, oldest first."""
    return {"type": "history", "room": room_slug, "messages": messages, "has_more": has_more}


def live_frame(*, ok: bool) -> dict[str, Any]:
    """Unasked: whether this worker's broadcasts are live. False when it lost its channel
    layer (others' messages, edits and presence reach the socket only once it is back, by a
    resync); true when it has it back (an unasked `pong` follows)."""
    return {"type": "live", "ok": ok}


def pong_frame(*, rooms: dict[str, int], live: bool) -> dict[str, Any]:
    """The reply to `ping` (or unasked, after the layer came back): each joined room's
    last seq, and whether broadcasts are live (as the last `live` frame said)."""
    return {"type": "pong", "rooms": rooms, "live": live}


def edited_frame(*, room_slug: str, message_id: int, seq: int) -> dict[str, Any]:
    """The reply to `edit`; `seq` is the message's rev after the edit."""
    return {"type": "edited", "room": room_slug, "id": message_id, "seq": seq}


def deleted_frame(*, room_slug: str, message_id: int, seq: int) -> dict[str, Any]:
    """The reply to `delete`; `seq` is the deletion's place in the room's sequence."""
    return {"type": "deleted", "room": room_slug, "id": message_id, "seq": seq}


def message_frame(message: Message) -> dict[str, Any]:
    return {"type": "message", "room": message.room.slug, "message": message_dict(message)}


def message_edited_frame(message: Message) -> dict[str, Any]:
    """`seq` is the edit's own place in the room's sequence (the message's new rev)."""
    return {
        "type": "message_edited",
        "room": message.room.slug,
        "seq": message.rev,
        "message": message_dict(message),
    }


def reacted_frame(*, room_slug: str, message_id: int, seq: int) -> dict[str, Any]:
    """The reply to `react`; `seq` is the message's rev (unchanged if nothing changed)."""
    return {"type": "reacted", "room": room_slug, "id": message_id, "seq": seq}


def message_reactions_frame(message: Message) -> dict[str, Any]:
    """A message's reactions changed: its whole summary, which replaces the one shown;
    `seq` is the change's own place in the room's sequence (the message's new rev)."""
    return {
        "type": "message_reactions",
        "room": message.room.slug,
        "id": message.pk,
        "seq": message.rev,
        "reactions": reaction_summary(message),
    }


def message_thread_frame(
    *, room_slug: str, root_id: int, seq: int, summary: dict[str, Any]
) -> dict[str, Any]:
    """A reply was added to a root's thread or deleted from it: the root's whole thread
    summary; `seq` is the change's own place in the room's sequence (the root's new rev)."""
    return {
        "type": "message_thread",
        "room": room_slug,
        "id": root_id,
        "seq": seq,
        "thread_summary": summary,
    }


def thread_frame(
    *,
    room_slug: str,
    root: dict[str, Any],
    messages: list[dict[str, Any]],
    has_more: bool,
    read: int | None,
) -> dict[str, Any]:
    """The reply to `thread`: the root, its newest replies oldest first (has_more: older
    ones were left out) and the user's read mark of the thread (None: never read)."""
    return {
        "type": "thread",
        "room": room_slug,
        "root": root,
        "messages": messages,
        "has_more": has_more,
        "read": read,
    }


def thread_read_frame(*, room_slug: str, root_id: int, seq: int) -> dict[str, Any]:
    """The user has read the thread of `root_id` up to `seq` (to all their tabs)."""
    return {"type": "thread_read", "room": room_slug, "id": root_id, "seq": seq}


def message_deleted_frame(*, room_slug: str, message_id: int, seq: int) -> dict[str, Any]:
    """`seq` is the deletion's own place in the room's sequence."""
    return {"type": "message_deleted", "room": room_slug, "id": message_id, "seq": seq}


def notification_frame(*, reason: str, message: Message) -> dict[str, Any]:
    """Sent to one user's sockets, why the message is for them (services._notify): `reason`
    is "mention" (@them), "room" (@room), "here" (@here), "dm" (a direct message) or
    "message" (a room they asked to hear every message of)."""
    return {
        "type": "notification",
        "reason": reason,
        "room": message.room.slug,
        "message": message_dict(message),
    }


def announcement_frame(*, announcement_id: int, body: str, created: str) -> dict[str, Any]:
    return {"type": "announcement", "id": announcement_id, "body": body, "created": created}


def read_frame(*, room_slug: str, seq: int) -> dict[str, Any]:
    """The user has read `room` up to `seq` (sent to all their tabs)."""
    return {"type": "read", "room": room_slug, "seq": seq}


def membership_frame(
    *,
    room_slug: str,
    name: str,
    member: bool,
    starred: bool,
    notify: str,
    owner: bool,
    private: bool,
    direct: bool,
    people: int | None,
    last_seq: int,
    read: int | None,
    unread: int,
) -> dict[str, Any]:
    """To every tab of one user: they joined, left or (un)starred a room, changed what of it
    notifies them (`notify`: "all", "mentions", "mute"), became or stopped being one of its
    owners, a direct message with them was made, or someone left a group one of theirs, so
    each sidebar adds, drops, renames, moves or marks its entry (a DM in "Direct messages",
    with how many `people` it holds: None for other rooms); the counts are the sidebar's,
    as a page would render."""
    return {
        "type": "membership",
        "room": room_slug,
        "name": name,
        "member": member,
        "starred": starred,
        "notify": notify,
        "owner": owner,
        "private": private,
        "direct": direct,
        "people": people,
        "last_seq": last_seq,
        "read": read,
        "unread": unread,
    }


def room_updated_frame(*, room_slug: str, name: str, topic: str) -> dict[str, Any]:
    """To everyone in a room: its owners renamed it or changed its topic."""
    return {"type": "room_updated", "room": room_slug, "name": name, "topic": topic}


def room_opened_frame(
    *,
    room_slug: str,
    name: str,
    topic: str,
    private: bool,
    direct: bool,
    members: int,
    last_seq: int,
) -> dict[str, Any]:
    """To whoever may see a room (every socket for a public one, its members' for a private
    one): it was made or un-archived, so lobbies list it and pages that showed it closed
    open it again."""
    return {
        "type": "room_opened",
        "room": room_slug,
        "name": name,
        "topic": topic,
        "private": private,
        "direct": direct,
        "members": members,
        "last_seq": last_seq,
    }


def presence_frame(*, room_slug: str, username: str, online: bool, v: int) -> dict[str, Any]:
    """`username` came to the room or left it, as of the room's presence version `v` (a
    page keeps the newest per user: two workers' frames may arrive in either order)."""
    return {"type": "presence", "room": room_slug, "user": username, "online": online, "v": v}


def profile_frame(*, username: str) -> dict[str, Any]:
    """To every socket: `username` changed what their profile shows; pages that show it ask
    for it again (GET /people/profiles/, signed-in viewers only). Only the name travels."""
    return {"type": "profile", "user": username}


def guests_frame(*, room_slug: str, count: int, v: int) -> dict[str, Any]:
    """How many anonymous readers the room has (they are counted, never named), as of the
    room's presence version `v`."""
    return {"type": "guests", "room": room_slug, "count": count, "v": v}


def typing_frame(*, room_slug: str, username: str) -> dict[str, Any]:
    return {"type": "typing", "room": room_slug, "user": username}


def room_closed_frame(*, room_slug: str, reason: str) -> dict[str, Any]:
    return {"type": "room_closed", "room": room_slug, "reason": reason}


def removed_frame(*, room_slug: str, reason: str) -> dict[str, Any]:
    return {"type": "removed", "room": room_slug, "reason": reason}


def session_ended_frame(*, reason: str) -> dict[str, Any]:
    return {"type": "session_ended", "reason": reason}


def session_ended_event(*, user_id: int, reason: str) -> dict[str, Any]:
    return {"type": EVENT_SESSION_ENDED, "group": user_group(user_id), "reason": reason}


def error_frame(error: ChatError, ref: str | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "error", "code": error.code.value, "message": error.message}
    if error.retry_after is not None:
        frame["retry_after"] = round(error.retry_after, 1)
    if ref is not None:
        frame["ref"] = ref
    return frame


def broadcast_event(*, group: str, frame: dict[str, Any]) -> dict[str, Any]:
    event = {"type": EVENT_BROADCAST, "group": group, "text": encode(frame)}
    if frame["type"] == "message":
        event["seq"] = frame["message"]["seq"]  # lets a sender's ack wait for the fan-out
    return event


def user_broadcast(user_id: int, frame: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(group, event) to send `frame` to every socket of one user."""
    group = user_group(user_id)
    return group, broadcast_event(group=group, frame=frame)


def users_broadcast(
    user_ids: Iterable[int], frame: dict[str, Any]
) -> list[tuple[str, dict[str, Any]]]:
    """(group, event) for each of `user_ids`, to send them all one frame: encoded once, not
    once per user (an @room in a large room tells every member)."""
    event = broadcast_event(group="", frame=frame)
    return [(group, {**event, "group": group}) for group in map(user_group, user_ids)]


def typing_event(*, group: str, frame: dict[str, Any], sender: str) -> dict[str, Any]:
    """`sender` is the typist's socket id: its own socket is skipped."""
    return {"type": EVENT_TYPING, "group": group, "text": encode(frame), "sender": sender}


def room_closed_event(*, room_id: int, room_slug: str, reason: str) -> dict[str, Any]:
    """Every socket in the room leaves it and hears `room_closed`."""
    return {
        "type": EVENT_LEAVE_ROOM,
        "group": room_group(room_id),
        "room": room_slug,
        "text": encode(room_closed_frame(room_slug=room_slug, reason=reason)),
        "announce": False,  # the room is closed: nobody is left to tell
    }


def removed_event(*, user_id: int, room_slug: str, reason: str) -> dict[str, Any]:
    """Every socket of the user leaves the room and hears `removed`."""
    return {
        "type": EVENT_LEAVE_ROOM,
        "group": user_group(user_id),
        "room": room_slug,
        "text": encode(removed_frame(room_slug=room_slug, reason=reason)),
        "announce": True,  # the others see the user go
    }


def room_recheck_event(*, room_id: int, room_slug: str, reason: str) -> dict[str, Any]:
    """Every socket in the room asks whether its user may still read it; one that may not
    leaves and hears `removed` with `reason`."""
    return {
        "type": EVENT_RECHECK_ROOM,
        "group": room_group(room_id),
        "room": room_slug,
        "reason": reason,
    }


def room_broadcast(room_id: int, frame: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(group, event) to send `frame` to everyone in a room."""
    group = room_group(room_id)
    return group, broadcast_event(group=group, frame=frame)


def send_on_commit(group: str, event: dict[str, Any]) -> None:
    """Send a layer event once the current transaction commits (never if it rolls back)."""
    transaction.on_commit(lambda: publish(group, event))


def broadcast_on_commit(room_id: int, frame: dict[str, Any]) -> None:
    """Send `frame` to the room after commit; it is encoded now, once, for every recipient."""
    send_on_commit(*room_broadcast(room_id, frame))
