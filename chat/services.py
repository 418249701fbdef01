"""Writes. Each service validates, changes the database in one transaction, and schedules its
broadcast with `transaction.on_commit`, so no socket hears of a row that was rolled back."""

from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.text import slugify

from . import events
from .errors import ChatError, ErrorCode
from .models import Message, Room

ARCHIVE_REASON = "This room has been archived."


def room_create(
    *, name: str, created_by: AbstractBaseUser, topic: str = "", is_private: bool = False
) -> Room:
    """Create a room whose slug comes from its name; the creator is its first member."""
    name = name.strip()
    slug = slugify(name)[:80].strip("-")
    if not name or not slug:
        raise ChatError(ErrorCode.BAD_REQUEST, "A room name needs at least one letter or digit.")
    with transaction.atomic():
        if Room.objects.filter(slug=slug).exists():
            raise ChatError(ErrorCode.BAD_REQUEST, f"A room called {slug!r} already exists.")
        room = Room.objects.create(
            name=name, slug=slug, topic=topic.strip(), is_private=is_private, created_by=created_by
        )
        room.members.add(created_by)
    return room


def message_validate_body(body: str) -> None:
    """Refuse what no message may be: empty, over the length limit, or holding NUL."""
    if not body.strip():
        raise ChatError(ErrorCode.BAD_REQUEST, "A message cannot be empty.")
    limit = settings.CHAT_MAX_MESSAGE_LENGTH
    if len(body) > limit:
        raise ChatError(ErrorCode.TOO_LONG, f"A message can be at most {limit} characters.")
    if "\x00" in body:
        raise ChatError(ErrorCode.BAD_REQUEST, "A message cannot contain NUL characters.")


def _message_by_client_id(*, room: Room, author: AbstractBaseUser, client_id: str) -> Message:
    return Message.objects.select_related("room", "author").get(
        room=room, author=author, client_id=client_id
    )


def _next_seq(room: Room) -> int:
    """Bump the room's counter and return it, in one statement (UPDATE … RETURNING, SQLite
    3.35+ and PostgreSQL). The row (PostgreSQL) or the database (SQLite) stays locked for
    this transaction, so concurrent senders queue here and each gets the next number."""
    table = connection.ops.quote_name(Room._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET last_seq = last_seq + 1 WHERE id = %s"
            " RETURNING last_seq, is_archived",
            [room.pk],
        )
        seq, archived = cursor.fetchone()
    if archived:
        raise ChatError(ErrorCode.ROOM_ARCHIVED, "This room is archived.")
    return seq


@dataclass(frozen=True)
class MessageDraft:
    """A message to store: what a `send` frame (or any other door) asks for."""

    room: Room
    author: AbstractBaseUser
    body: str
    client_id: str | None


def message_create(
    *, room: Room, author: AbstractBaseUser, body: str, client_id: str | None
) -> tuple[Message, bool]:
    """Store a message with the room's next seq and broadcast it after commit.

    Returns (message, created). A client_id this author already used in this room stores
    nothing and returns the original, so a retried send is always safe, even when two
    sockets race with the same client_id: the unique (room, author, client_id) constraint
    lets one insert win, and the other's transaction (its seq bump included) rolls back.
    No seq is ever skipped: a rollback undoes its bump.
    """
    (result,) = messages_create(
        drafts=[MessageDraft(room=room, author=author, body=body, client_id=client_id)]
    )
    if isinstance(result, ChatError):
        raise result
    return result


def messages_create(*, drafts: Sequence[MessageDraft]) -> list[tuple[Message, bool] | ChatError]:
    """Store several messages in one transaction (a group commit), each exactly as
    `message_create` would alone: in its own savepoint, with its own result or refusal."""
    results: list[tuple[Message, bool] | ChatError] = []
    with transaction.atomic():
        for draft in drafts:
            try:
                results.append(_store(draft))
            except ChatError as refusal:
                results.append(refusal)
    return results


def _store(draft: MessageDraft) -> tuple[Message, bool]:
    message_validate_body(draft.body)
    try:
        with transaction.atomic():
            message = Message.objects.create(
                room=draft.room,
                author=draft.author,
                body=draft.body,
                seq=_next_seq(draft.room),
                client_id=draft.client_id,
            )
            events.broadcast_on_commit(draft.room.pk, events.message_frame(message))
    except IntegrityError:
        if draft.client_id is None:
            raise
        original = _message_by_client_id(
            room=draft.room, author=draft.author, client_id=draft.client_id
        )
        return original, False
    return message, True


def message_delete(*, message: Message) -> bool:
    """Soft-delete a message and tell the room; False if it was already deleted."""
    with transaction.atomic():
        updated = Message.objects.filter(pk=message.pk, deleted_at__isnull=True).update(
            deleted_at=timezone.now()
        )
        if not updated:
            return False
        room = Room.objects.only("pk", "slug").get(pk=message.room_id)
        events.broadcast_on_commit(
            room.pk, events.message_deleted_frame(room_slug=room.slug, message_id=message.pk)
        )
    return True


def room_archive(*, room: Room, reason: str = ARCHIVE_REASON) -> bool:
    """Archive a room: every socket in it is told why and removed; False if already archived."""
    with transaction.atomic():
        updated = Room.objects.filter(pk=room.pk, is_archived=False).update(is_archived=True)
        if not updated:
            return False
        event = events.room_closed_event(room_id=room.pk, room_slug=room.slug, reason=reason)
        events.send_on_commit(event["group"], event)
    room.is_archived = True
    return True


def room_unarchive(*, room: Room) -> bool:
    """Open an archived room again; False if it was not archived."""
    updated = Room.objects.filter(pk=room.pk, is_archived=True).update(is_archived=False)
    room.is_archived = False
    return bool(updated)


def user_sockets_close(*, user_id: int, reason: str) -> None:
    """Close every open socket of a user, on every worker, saying why (after commit)."""
    event = events.session_ended_event(user_id=user_id, reason=reason)
    events.send_on_commit(event["group"], event)
