"""Writes. Each service validates, changes the database in one transaction, and schedules its
broadcast with `transaction.on_commit`, so no socket hears of a row that was rolled back."""

import functools
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import NamedTuple

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile, File
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Field, Max
from django.utils import timezone
from django.utils.text import slugify

from . import access, attachments, formatting, reactions, selectors, visible_text
from .models import (
    Announcement,
    Attachment,
    Ban,
    Membership,
    Message,
    Profile,
    Reaction,
    ReadState,
    Room,
    ThreadRead,
    slug_is_reserved,
)
from .protocol import events
from .protocol.errors import ChatError, ErrorCode

ARCHIVE_REASON = "This room has been archived."
BAN_REASON = "You have been banned from this room."
# The slug base of a room whose name has letters or digits but none slugify keeps (Japanese,
# Greek, Cyrillic…); its random suffix makes it unique, its name is shown everywhere else.
UNSPELLABLE_NAME_SLUG = "room"


def room_create(
    *, name: str, created_by: AbstractBaseUser, topic: str = "", is_private: bool = False
) -> Room:
    """Create a room named `name`; the creator is its first member and its owner (the only
    one who may see it, if private); their tabs hear `membership` after commit, and whoever
    may see the room hears `room_opened` (every socket, for a public room), so open lobbies
    list it.

    Its slug is the name's, plus a random suffix, so that what the creator gets never
    depends on rooms they may not see: a slug taken by a private room or a DM would
    otherwise answer "already exists" (or a telltale "-2"). A name already used by a room
    they can see is refused (that tells them nothing new). Names in the direct-message
    namespace (`dm-…`) are refused whoever holds them.

    A name in a script slugify cannot spell in ASCII ("日本語チーム", "Ελληνικά") gets
    `room-<suffix>`: slugs stay ASCII, so every URL, selector and group name that checks
    one keeps working unchanged (docs/security.md)."""
    name = name.strip()
    base = slugify(name)[:70].strip("-")
    if not base and any(char.isalnum() for char in name):
        base = UNSPELLABLE_NAME_SLUG
    if not name or not base:
        raise ChatError(ErrorCode.BAD_REQUEST, "A room name needs at least one letter or digit.")
    if slug_is_reserved(base):
        raise ChatError(
            ErrorCode.BAD_REQUEST, "Names starting with “dm” are kept for direct messages."
        )
    if selectors.room_name_taken(name=name, user=created_by):
        raise ChatError(ErrorCode.BAD_REQUEST, f"A room called {name!r} already exists.")
    for attempt in range(3):
        try:
            with transaction.atomic():
                room = Room.objects.create(
                    name=name,
                    slug=f"{base}-{secrets.token_hex(3)}",
                    topic=topic.strip(),
                    is_private=is_private,
                    created_by=created_by,
                )
                membership = Membership.objects.create(
                    room=room, user=created_by, role=Membership.Role.OWNER
                )
                ReadState.objects.create(user=created_by, room=room, seq=0)
                _membership_announce(membership, member=True)
                _room_opened_announce(room)
                return room
        except IntegrityError:  # 1 in 16 million per room with the same name: draw again
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def message_validate_body(body: str, *, with_files: bool = False) -> None:
    """Refuse what no message may be: empty (or only characters that show nothing, such as
    zero-width spaces) unless it carries files, over the length limit, or holding NUL."""
    if not with_files and (not body.strip() or visible_text.shows_nothing(body)):
        raise ChatError(ErrorCode.BAD_REQUEST, "A message cannot be empty.")
    limit = settings.CHAT_MAX_MESSAGE_LENGTH
    if len(body) > limit:
        raise ChatError(ErrorCode.TOO_LONG, f"A message can be at most {limit} characters.")
    if "\x00" in body:
        raise ChatError(ErrorCode.BAD_REQUEST, "A message cannot contain NUL characters.")


def message_render(body: str) -> str:
    """A body's sanitised HTML, its @mentions of active accounts linked to their profiles:
    rendered once, when the body is stored (chat/formatting.py)."""
    people = selectors.usernames_active(names=formatting.mentioned_names(body))
    return formatting.render(body, people=people)


def _message_by_client_id(*, room: Room, author: AbstractBaseUser, client_id: str) -> Message:
    return Message.objects.select_related(*selectors.MESSAGE_RELATED).get(
        room=room, author=author, client_id=client_id
    )


def _next_seq(room: Room, *, actor_id: int | None) -> int:
    """Bump the room's counter and return it, in one statement (UPDATE … RETURNING, SQLite
    3.35+ and PostgreSQL). The row (PostgreSQL) or the database (SQLite) stays locked for
    this transaction, so concurrent writers queue here and each gets the next number.

    The same statement checks, under that lock, that `actor_id` (None: a moderator in the
    admin, who may write anywhere) may still write in the room (`access.may_write_sql`):
    its account not deactivated or deleted since its socket opened, not banned, a member if
    the room is private, the room not archived. A refusal raises, and the caller's
    transaction undoes the bump."""
    room_table = connection.ops.quote_name(Room._meta.db_table)
    may_write, params = "1", []
    if actor_id is not None:
        may_write, params = access.may_write_sql(actor_id=actor_id)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {room_table} SET last_seq = last_seq + 1 WHERE id = %s"
            f" RETURNING last_seq, is_archived, {may_write}",
            [room.pk, *params],
        )
        seq, archived, allowed = cursor.fetchone()
    if archived and actor_id is not None:
        raise ChatError(ErrorCode.ROOM_ARCHIVED, "This room is archived.")
    if not allowed:
        raise ChatError(ErrorCode.FORBIDDEN, "You may not post in this room.")
    return seq


@dataclass(frozen=True)
class MessageDraft:
    """A message to store: what a `send` frame (or any other door) asks for."""

    room: Room
    author: AbstractBaseUser
    body: str
    client_id: str | None
    # For a body that says @here: the ids of the users connected now (any tab, any worker),
    # which the socket's door looks up before the write (`here_wanted`).
    here: frozenset[int] = frozenset()
    # Ids of files the author uploaded into the room (`attachment_upload`) for it to carry.
    attachments: tuple[int, ...] = ()
    # The id of a message of the room it quotes, and of one whose thread it goes in (a
    # thread reply's id stands for its root); `also_in_room` shows a thread reply in the
    # room's main log too.
    reply_to: int | None = None
    thread: int | None = None
    also_in_room: bool = False


def messages_create(*, drafts: Sequence[MessageDraft]) -> list[tuple[Message, bool] | ChatError]:
    """Store messages in one transaction (a group commit), each with its own result or
    refusal, and broadcast each after commit.

    A result is (message, created). A client_id this author already used in this room
    stores nothing and returns the original, so a retried send is always safe, even when
    two sockets race with the same client_id. No seq is ever skipped.

    A room whose drafts in the batch are all plain (`_is_plain`: the common send) takes its
    seqs in one bump of its counter, and its messages go in the batch's one multi-row
    INSERT, without savepoints; a room with any other draft stores each of its drafts in a
    savepoint of its own (`_store`), in order. If the INSERT meets a client_id already stored
    (a retry, or two sockets racing), the whole transaction is undone, bumps included, and
    the batch is written again the savepoint way, where the unique (room, author,
    client_id) constraint lets one insert win and the other's savepoint rolls back."""
    by_room: dict[int, list[int]] = {}
    for index, draft in enumerate(drafts):
        by_room.setdefault(draft.room.pk, []).append(index)
    rooms = sorted(by_room)
    results: list[tuple[Message, bool] | ChatError | None] = [None] * len(drafts)
    plain_rooms = [room for room in rooms if _all_plain(drafts, by_room[room])]
    authors: dict[int, AbstractBaseUser] = {}
    try:
        # Everything in the transaction, reads included: a connection found dead (the
        # server restarted, or terminated it) is then dropped on the way out, so the
        # caller's one retry (group_commit) gets a fresh one. No lock is taken before the
        # bump, so checking and rendering here holds nobody up.
        with transaction.atomic():
            authors = selectors.users_with_profiles(ids={draft.author.pk for draft in drafts})
            html = _plain_bodies_checked(
                drafts,
                [i for room in plain_rooms for i in by_room[room]],
                authors=authors,
                results=results,
            )
            live = {room: [i for i in by_room[room] if results[i] is None] for room in plain_rooms}
            counters = _counters_bumped(
                {room: len(indexes) for room, indexes in live.items() if indexes},
                {room: [drafts[i].author.pk for i in indexes] for room, indexes in live.items()},
                lock=rooms,
            )
            plain: list[tuple[int, Message]] = []
            for room in rooms:
                if room in counters:
                    plain += _plain_messages(
                        drafts,
                        live[room],
                        counter=counters[room],
                        authors=authors,
                        html=html,
                        results=results,
                    )
                elif room not in live:
                    _store_each(drafts, by_room[room], authors=authors, results=results)
                else:  # gone (deleted meanwhile), or all its drafts refused already
                    for index in live[room]:
                        slug = drafts[index].room.slug
                        results[index] = ChatError(ErrorCode.NOT_FOUND, f"No room {slug!r}.")
            _insert_plain(plain, drafts=drafts, counters=counters, results=results)
    except IntegrityError:
        results = [None] * len(drafts)
        with transaction.atomic():
            for room in rooms:
                _store_each(drafts, by_room[room], authors=authors, results=results)
    return results  # type: ignore[return-value]  # every draft has its result now


def _is_plain(draft: MessageDraft) -> bool:
    """A draft with nothing but a body (no files, no reply, no thread): the common send."""
    return not draft.attachments and draft.reply_to is None and draft.thread is None


def _all_plain(drafts: Sequence[MessageDraft], indexes: Sequence[int]) -> bool:
    """Whether one room's drafts at `indexes` can all go in the batch's INSERT: all plain,
    and no client_id twice (a quick retry in the same batch gets its original back the
    savepoint way, rather than failing the INSERT and so the whole batch's first try)."""
    keys = [(drafts[i].author.pk, drafts[i].client_id) for i in indexes if drafts[i].client_id]
    return len(set(keys)) == len(keys) and all(_is_plain(drafts[i]) for i in indexes)


def _store_each(
    drafts: Sequence[MessageDraft],
    indexes: Sequence[int],
    *,
    authors: Mapping[int, AbstractBaseUser],
    results: list,
) -> None:
    """Store the drafts at `indexes` one by one, each in its savepoint (`_store`)."""
    for index in indexes:
        draft = drafts[index]
        try:
            results[index] = _store(draft, author=authors.get(draft.author.pk, draft.author))
        except ChatError as refusal:
            results[index] = refusal


def _plain_bodies_checked(
    drafts: Sequence[MessageDraft],
    plain: Sequence[int],
    *,
    authors: Mapping[int, AbstractBaseUser],
    results: list,
) -> dict[int, str]:
    """Before any lock is taken: check and render the bodies of the drafts at `plain`, their
    @mentions looked up in one query for the batch. Their HTML by draft index; a refusal
    goes in `results`. (`_store` checks and renders the other drafts itself.)"""
    names = {index: formatting.mentioned_names(drafts[index].body) for index in plain}
    active = selectors.usernames_active(names=set().union(*names.values()))
    html: dict[int, str] = {}
    for index in plain:
        draft = drafts[index]
        try:
            _check_body(draft, author=authors.get(draft.author.pk, draft.author))
        except ChatError as refusal:
            results[index] = refusal
            continue
        html[index] = formatting.render(draft.body, people=names[index] & active)
    return html


def _check_body(draft: MessageDraft, *, author: AbstractBaseUser) -> None:
    """Refuse a draft no message may be, or one saying @room/@here that its author may not."""
    message_validate_body(draft.body, with_files=bool(draft.attachments))
    if len(draft.attachments) > settings.CHAT_UPLOAD_MAX_FILES:
        raise ChatError(
            ErrorCode.BAD_REQUEST,
            f"A message can carry at most {settings.CHAT_UPLOAD_MAX_FILES} files.",
        )
    everyone = everyone_mentions(draft.body)
    if everyone and not access.may_notify_everyone(author, draft.room):
        words = " or ".join(f"@{word}" for word in sorted(everyone))
        raise ChatError(
            ErrorCode.FORBIDDEN,
            f"Only the room's owners may notify everyone with {words} in a room of"
            f" {settings.CHAT_EVERYONE_MENTION_MEMBERS} or more members.",
        )


class SeqCounter(NamedTuple):
    """A room's counter after a bump, and what was read under its lock with it."""

    last_seq: int
    archived: bool
    allowed: dict[int, bool]  # by actor id: whether they may still write in the room
    hear_all: list[int]  # who hears every message of the room (`access.notifiable_sql`)


def _counters_bumped(
    counts: Mapping[int, int], actors: Mapping[int, Sequence[int]], *, lock: Sequence[int]
) -> dict[int, SeqCounter]:
    """Add counts[room] to the counter of each room of `counts`, checking under its lock, as
    `_next_seq` does, whether each of actors[room] may still write there, and reading who
    hears every message of the room. A room deleted meanwhile has no counter in the result.

    On PostgreSQL this is one statement for the whole batch, which first locks every room of
    `lock` (the batch's, plain or not) in the order of their ids, so that two batches never
    wait for each other in a cycle. SQLite has one writer at a time: one UPDATE per room,
    then one query for the listeners."""
    if not counts:
        return {}
    qn = connection.ops.quote_name
    room_table = qn(Room._meta.db_table)
    memberships = qn(Membership._meta.db_table)
    notifiable = access.notifiable_sql(membership="hm")
    counters: dict[int, SeqCounter] = {}
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            for room_id, count in counts.items():
                ids = list(dict.fromkeys(actors[room_id]))
                checks = [access.may_write_sql(actor_id=actor_id) for actor_id in ids]
                cursor.execute(
                    f"UPDATE {room_table} SET last_seq = last_seq + %s WHERE id = %s"
                    f" RETURNING last_seq, is_archived, {', '.join(sql for sql, _ in checks)}",
                    [count, room_id, *(param for _, params in checks for param in params)],
                )
                row = cursor.fetchone()
                if row is not None:  # None: the room is gone
                    last_seq, archived, *allowed = row
                    counters[room_id] = SeqCounter(
                        last_seq, bool(archived), dict(zip(ids, allowed, strict=True)), []
                    )
            if counters:
                cursor.execute(
                    f"SELECT hm.room_id, hm.user_id FROM {memberships} hm"
                    f" WHERE hm.room_id IN ({', '.join(['%s'] * len(counters))})"
                    f" AND hm.notify = %s AND {notifiable}",
                    [*counters, Membership.Notify.ALL],
                )
                for room_id, user_id in cursor.fetchall():
                    counters[room_id].hear_all.append(user_id)
            return counters
        pairs = sorted({(room_id, actor) for room_id in counts for actor in actors[room_id]})
        may_write, _ = access.may_write_sql(actor_column="actors.actor_id")
        # Arrays rather than a placeholder per value: the statement's text is the same for
        # every batch, so psycopg converts it once (it caches up to 50 parameters).
        cursor.execute(
            f"WITH locked AS MATERIALIZED ("
            f"SELECT id FROM {room_table} WHERE id = ANY(%s::bigint[])"
            f" ORDER BY id FOR UPDATE),"
            f" counts (room_id, n) AS (SELECT * FROM unnest(%s::bigint[], %s::bigint[])),"
            # The uncorrelated count is a one-time filter: every lock is taken, in order,
            # before the first row is updated.
            f" bumped AS (UPDATE {room_table} SET last_seq = {room_table}.last_seq + counts.n"
            f" FROM counts WHERE {room_table}.id = counts.room_id"
            f" AND (SELECT count(*) FROM locked) > 0"
            f" RETURNING {room_table}.id, {room_table}.last_seq, {room_table}.is_archived),"
            f" actors (room_id, actor_id) AS (SELECT * FROM unnest(%s::bigint[], %s::bigint[]))"
            # One row per room: its actors and whether each may write, in two arrays, and
            # the members who hear every message (a round trip fewer than asking apart).
            f" SELECT bumped.id, bumped.last_seq, bumped.is_archived,"
            f" array_agg(actors.actor_id ORDER BY actors.actor_id),"
            f" array_agg({may_write} ORDER BY actors.actor_id),"
            f" ARRAY(SELECT hm.user_id FROM {memberships} hm WHERE hm.room_id = bumped.id"
            f" AND hm.notify = %s AND {notifiable})"
            f" FROM bumped JOIN {room_table} ON {room_table}.id = bumped.id"
            f" JOIN actors ON actors.room_id = bumped.id"
            f" GROUP BY bumped.id, bumped.last_seq, bumped.is_archived, {room_table}.id",
            [
                list(lock),
                list(counts),
                list(counts.values()),
                [room_id for room_id, _ in pairs],
                [actor for _, actor in pairs],
                Membership.Notify.ALL,
            ],
        )
        for room_id, last_seq, archived, actor_ids, allowed, hear_all in cursor.fetchall():
            counters[room_id] = SeqCounter(
                last_seq, archived, dict(zip(actor_ids, allowed, strict=True)), hear_all
            )
    return counters


def _plain_messages(
    drafts: Sequence[MessageDraft],
    indexes: Sequence[int],
    *,
    counter: SeqCounter,
    authors: Mapping[int, AbstractBaseUser],
    html: Mapping[int, str],
    results: list,
) -> list[tuple[int, Message]]:
    """The unsaved messages of one room's plain drafts at `indexes`, numbered in order from
    the room's counter just bumped by their number. The drafts of authors who may not write
    there are refused, and their numbers given back (the room is still locked, so nobody
    took the next ones)."""
    last_seq, archived, allowed = counter.last_seq, counter.archived, counter.allowed
    refused = {index for index in indexes if archived or not allowed[drafts[index].author.pk]}
    if refused:
        room_table = connection.ops.quote_name(Room._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {room_table} SET last_seq = last_seq - %s WHERE id = %s",
                [len(refused), drafts[indexes[0]].room.pk],
            )
    seq = last_seq - len(indexes)
    messages: list[tuple[int, Message]] = []
    for index in indexes:
        draft = drafts[index]
        if index in refused:
            results[index] = (
                ChatError(ErrorCode.ROOM_ARCHIVED, "This room is archived.")
                if archived
                else ChatError(ErrorCode.FORBIDDEN, "You may not post in this room.")
            )
            continue
        seq += 1
        message = Message(
            room=draft.room,
            author=authors.get(draft.author.pk, draft.author),
            body=draft.body,
            body_html=html[index],
            seq=seq,
            rev=seq,
            client_id=draft.client_id,
        )
        messages.append((index, message))
    return messages


def _insert_plain(
    plain: Sequence[tuple[int, Message]],
    *,
    drafts: Sequence[MessageDraft],
    counters: Mapping[int, SeqCounter],
    results: list,
) -> None:
    """Insert the plain drafts' messages in one statement (their ids come back: INSERT …
    RETURNING), and schedule their broadcasts and notifications, to the members who hear
    every message of each room as read with its counter. A client_id already stored raises
    IntegrityError (messages_create starts over the savepoint way)."""
    if not plain:
        return
    if connection.vendor == "postgresql":
        _insert_in_one_statement([message for _, message in plain])
    else:
        Message.objects.bulk_create([message for _, message in plain])
    for index, message in plain:
        events.broadcast_on_commit(message.room_id, events.message_frame(message))
        hear_all = counters[message.room_id].hear_all
        _notify(message, here=drafts[index].here, hear_all=hear_all)
        results[index] = (message, True)


# What sets one plain message apart from another; the rest of its row is the time of the
# batch (created_at) and the other fields' defaults (`_one_statement_insert`).
ROW_FIELDS = ("room", "author", "body", "body_html", "seq", "rev", "client_id")


def _insert_in_one_statement(messages: Sequence[Message]) -> None:
    """On PostgreSQL, what `bulk_create` does for plain messages, in one statement whose
    text never changes: the rows go as one JSON parameter (json_to_recordset). bulk_create
    (an UNNEST of arrays since Django 5.2) prepares each value of each row through its field
    and psycopg quotes each array element, in Python: a third of a batch's time in the
    database thread (py-spy), where json.dumps takes a fiftieth. The ids come back by
    (room, seq), not by the order of RETURNING."""
    sql, fields, defaults = _one_statement_insert()
    now = timezone.now()  # created_at is auto_now_add: bulk_create's pre_save sets it so
    rows = [
        {field.column: getattr(message, field.attname) for field in fields} for message in messages
    ]
    with connection.cursor() as cursor:
        # The text as it is, not as \u escapes: PostgreSQL refuses those above U+007F unless
        # its encoding is UTF8.
        cursor.execute(sql, [now, *defaults, json.dumps(rows, ensure_ascii=False)])
        ids = {(room_id, seq): pk for pk, room_id, seq in cursor.fetchall()}
    for message in messages:
        message.created_at = now
        message.pk = ids[message.room_id, message.seq]
        message._state.adding = False
        message._state.db = connection.alias


@functools.cache
def _one_statement_insert() -> tuple[str, list[Field], list[object]]:
    """The statement `_insert_in_one_statement` runs, the fields each row gives
    (ROW_FIELDS), and the values of every other column but created_at. A field added to
    Message that needs a value and has no default would make every plain send fail: it is
    refused here, at the first."""
    qn = connection.ops.quote_name
    meta = Message._meta
    fields = [meta.get_field(name) for name in ROW_FIELDS]
    created_at = meta.get_field("created_at")
    rest = [field for field in meta.concrete_fields if field not in [*fields, created_at]]
    rest = [field for field in rest if not (field.primary_key or field.generated)]
    for field in rest:
        if not (field.has_default() or field.null or field.has_db_default()):
            raise ImproperlyConfigured(f"Message.{field.name} has no default to insert.")
    defaults = [field.get_db_prep_save(field.get_default(), connection) for field in rest]
    columns = [qn(field.column) for field in [*fields, created_at, *rest]]
    row_type = ", ".join(f"{qn(field.column)} {field.db_type(connection)}" for field in fields)
    sql = (
        f"INSERT INTO {qn(meta.db_table)} ({', '.join(columns)})"
        f" SELECT {', '.join(f'rows.{qn(field.column)}' for field in fields)}, %s"
        f"{''.join(', %s' for _ in rest)}"
        f" FROM json_to_recordset(%s) AS rows ({row_type})"
        f" RETURNING {qn(meta.pk.column)}, {qn(meta.get_field('room').column)},"
        f" {qn(meta.get_field('seq').column)}"
    )
    return sql, fields, defaults


def _store(draft: MessageDraft, *, author: AbstractBaseUser) -> tuple[Message, bool]:
    """Store one draft in its own savepoint; `author` is the draft's author with their
    profile loaded."""
    _check_body(draft, author=author)
    body_html = message_render(draft.body)
    reply_to = _live_message(draft.room, draft.reply_to, "reply to")
    root = _live_message(draft.room, draft.thread, "reply in the thread of")
    if root is not None and root.thread_root_id is not None:
        root = _live_message(draft.room, root.thread_root_id, "reply in the thread of")
    try:
        with transaction.atomic():
            seq = _next_seq(draft.room, actor_id=draft.author.pk)
            message = Message.objects.create(
                room=draft.room,
                author=author,
                body=draft.body,
                body_html=body_html,
                seq=seq,
                rev=seq,
                client_id=draft.client_id,
                reply_to=reply_to,
                thread_root=root,
                also_in_room=root is not None and draft.also_in_room,
            )
            if draft.attachments:
                _attach(message, ids=draft.attachments)
            events.broadcast_on_commit(draft.room.pk, events.message_frame(message))
            if root is not None:
                if not _thread_changed(draft.room, root.pk, actor_id=draft.author.pk):
                    raise ChatError(
                        ErrorCode.NOT_FOUND, f"No message {root.pk} in this room to reply to."
                    )
                _thread_read_set(user=author, room=draft.room, root_id=root.pk, seq=seq)
            _notify(message, here=draft.here)
    except IntegrityError:
        if draft.client_id is None:
            raise
        original = _message_by_client_id(
            room=draft.room, author=draft.author, client_id=draft.client_id
        )
        return original, False
    return message, True


def _attach(message: Message, *, ids: Sequence[int]) -> None:
    """Tie the author's own uploads of `ids` to their new message, in the order given, and
    write the message's `files`. Any id that is not an upload of theirs into this room still
    waiting for a message (another's, another room's, one already sent, or swept) refuses
    the whole message: the caller's savepoint undoes it, seq included."""
    wanted = list(dict.fromkeys(ids))
    found = Attachment.objects.select_for_update().filter(
        pk__in=wanted, room=message.room_id, uploader=message.author_id, message__isnull=True
    )
    by_id = {attachment.pk: attachment for attachment in found}
    if len(by_id) != len(wanted):
        raise ChatError(
            ErrorCode.BAD_REQUEST, "A file of this message is not one you uploaded here."
        )
    Attachment.objects.filter(pk__in=wanted).update(message=message)
    message.files = [events.attachment_dict(by_id[pk]) for pk in wanted]
    Message.objects.filter(pk=message.pk).update(files=message.files)


def attachment_upload(*, room: Room, uploader: AbstractBaseUser, upload: File) -> Attachment:
    """Store a file uploaded into `room` for a message of the uploader's to carry (`send`
    with `attachments`): only by someone who may post there, at most CHAT_UPLOAD_MAX_BYTES,
    its type decided from its bytes (chat/attachments.py), under a random name. Refusals
    store nothing."""
    if not access.can_post(uploader, room):
        raise ChatError(ErrorCode.FORBIDDEN, "You may not post in this room.")
    limit = settings.CHAT_UPLOAD_MAX_BYTES
    if upload.size is None or upload.size > limit:
        raise ChatError(ErrorCode.TOO_LONG, f"A file can be at most {_size_text(limit)}.")
    data = upload.read(limit + 1)
    if len(data) > limit:
        raise ChatError(ErrorCode.TOO_LONG, f"A file can be at most {_size_text(limit)}.")
    if not data:
        raise ChatError(ErrorCode.BAD_REQUEST, "The file is empty.")
    sniffed = attachments.sniff(data)
    attachment = Attachment(
        room=room,
        uploader=uploader,
        name=attachments.display_name(upload.name or ""),
        content_type=sniffed.content_type,
        size=len(data),
        width=sniffed.width,
        height=sniffed.height,
    )
    attachment.file.save(attachments.stored_name(sniffed.content_type), ContentFile(data), False)
    try:
        if sniffed.thumbnail is not None:
            attachment.thumbnail.save(sniffed.thumbnail.name, sniffed.thumbnail, save=False)
        attachment.save()
    except BaseException:
        for stored in (attachment.file, attachment.thumbnail):
            if stored.name:
                stored.storage.delete(stored.name)
        raise
    return attachment


def _size_text(size: int) -> str:
    """A byte count as people read it: "10 MiB", "512 KiB", "100 bytes"."""
    for unit, scale in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size} bytes"


def attachment_files_delete_on_commit(attachment: Attachment) -> None:
    """Delete an attachment's stored file and thumbnail once the current transaction (that
    deleted its row) commits; nothing if it rolls back (chat/signals.py calls this)."""
    names = [name for name in (attachment.file.name, attachment.thumbnail.name) if name]
    storage = attachment.file.storage

    def delete() -> None:
        for name in names:
            storage.delete(name)

    transaction.on_commit(delete)


def attachments_sweep(*, older_than: timedelta = timedelta(days=1)) -> int:
    """Delete uploads never tied to a message that are older than `older_than`, and their
    files (the `sweep_uploads` command); returns how many."""
    cutoff = timezone.now() - older_than
    swept = 0
    for attachment in Attachment.objects.filter(message__isnull=True, created_at__lt=cutoff):
        with transaction.atomic():
            # Tied since it was read? Then it is a message's now: leave it.
            # (chat/signals.py deletes the files once the row's deletion commits.)
            if Attachment.objects.filter(pk=attachment.pk, message__isnull=True).delete()[0]:
                swept += 1
    return swept


def _live_message(room: Room, message_id: int | None, what: str) -> Message | None:
    """The live message `message_id` of `room` a new one refers to (None for no id), or a
    clear not_found: deleted, in another room, or never posted look the same."""
    if message_id is None:
        return None
    message = (
        Message.objects.select_related("author")
        .filter(pk=message_id, room=room, deleted_at__isnull=True)
        .first()
    )
    if message is None:
        raise ChatError(ErrorCode.NOT_FOUND, f"No message {message_id} in this room to {what}.")
    return message


def _thread_changed(room: Room, root_id: int, *, actor_id: int | None) -> bool:
    """A reply of the thread of `root_id` was added or deleted: recount its live replies
    into the root's summary, which takes the room's next seq (the root's new rev, as an
    edit does), and tell the room `message_thread` after commit; so a replay converges on
    the same summary. False (nothing changed) if the root is deleted."""
    seq = _next_seq(room, actor_id=actor_id)
    replies = Message.objects.filter(thread_root_id=root_id, deleted_at__isnull=True)
    summary = replies.aggregate(count=Count("pk"), last_seq=Max("seq"), last_at=Max("created_at"))
    count, last_seq, last_at = summary["count"], summary["last_seq"] or 0, summary["last_at"]
    if not Message.objects.filter(pk=root_id, deleted_at__isnull=True).update(
        thread_count=count, thread_last_seq=last_seq, thread_last_at=last_at, rev=seq
    ):
        return False
    events.broadcast_on_commit(
        room.pk,
        events.message_thread_frame(
            room_slug=room.slug,
            root_id=root_id,
            seq=seq,
            summary=events.thread_summary(count=count, last_seq=last_seq, last_at=last_at),
        ),
    )
    return True


def _mark_forward(
    model: type[ReadState] | type[ThreadRead], *, seq: int, **key: object
) -> tuple[int, bool]:
    """Move a read mark (the one row of `model` for `key`, made at `seq` if missing) forward to
    `seq`, never back, with a conditional UPDATE so two tabs racing cannot move it backwards.
    Returns (the stored mark, whether it moved: the caller then tells the user's tabs)."""
    mark, created = model.objects.get_or_create(**key, defaults={"seq": seq})
    if created:
        return seq, True
    if mark.seq >= seq:
        return mark.seq, False
    if not model.objects.filter(pk=mark.pk, seq__lt=seq).update(seq=seq):
        return model.objects.values_list("seq", flat=True).get(pk=mark.pk), False
    return seq, True


def _thread_read_set(*, user: AbstractBaseUser, room: Room, root_id: int, seq: int) -> int:
    """Move the user's read mark of a thread forward to `seq` (never back) and return it;
    a mark that moved is sent to all the user's sockets after commit (`thread_read`)."""
    stored, moved = _mark_forward(ThreadRead, seq=seq, user=user, root_id=root_id)
    if not moved:
        return stored
    events.send_on_commit(
        *events.user_broadcast(
            user.pk, events.thread_read_frame(room_slug=room.slug, root_id=root_id, seq=seq)
        )
    )
    return seq


def thread_mark_read(
    *, room: Room, root_id: int, user: AbstractBaseUser, seq: int
) -> tuple[int, int]:
    """Record that `user` has read the thread of `root_id` (a live message of `room`; a
    thread reply's id stands for its root) up to `seq`, never past the room's counter nor
    backwards; returns (the root's id, the stored mark)."""
    root = _live_message(room, root_id, "read the thread of")
    if root.thread_root_id is not None:
        root = _live_message(room, root.thread_root_id, "read the thread of")
    with transaction.atomic():
        last = Room.objects.values_list("last_seq", flat=True).get(pk=room.pk)
        return root.pk, _thread_read_set(user=user, room=room, root_id=root.pk, seq=min(seq, last))


def _message_for_change(*, room: Room, message_id: int) -> Message:
    """A live message of `room`, or not_found (deleted, elsewhere, or never posted)."""
    message = (
        Message.objects.select_related(*selectors.MESSAGE_RELATED)
        .filter(pk=message_id, room=room, deleted_at__isnull=True)
        .first()
    )
    if message is None:
        raise ChatError(ErrorCode.NOT_FOUND, f"No message {message_id} in this room.")
    return message


def message_edit(*, room: Room, message_id: int, editor: AbstractBaseUser, body: str) -> Message:
    """Change the body of the editor's own message, within CHAT_EDIT_WINDOW_SECONDS of posting.

    The edit takes the room's next seq (the message's new `rev`), so a client that missed
    the live `message_edited` finds it in its next `since` replay. Sending the body the
    message already has changes nothing (a retried edit is safe)."""
    message = _message_for_change(room=room, message_id=message_id)
    message_validate_body(body, with_files=bool(message.files))
    refusal = access.edit_refusal(editor, message)
    if refusal is not None:
        raise ChatError(ErrorCode.FORBIDDEN, refusal)
    if message.body == body:
        return message
    body_html = message_render(body)
    with transaction.atomic():
        seq = _next_seq(room, actor_id=editor.pk)
        now = timezone.now()
        # Under the room's lock: the message may have been deleted since it was read above.
        if not Message.objects.filter(pk=message.pk, deleted_at__isnull=True).update(
            body=body, body_html=body_html, edited_at=now, rev=seq
        ):
            raise ChatError(ErrorCode.NOT_FOUND, f"No message {message_id} in this room.")
        message.body, message.body_html = body, body_html
        message.edited_at, message.rev = now, seq
        events.broadcast_on_commit(room.pk, events.message_edited_frame(message))
    return message


def reaction_set(
    *, room: Room, message_id: int, user: AbstractBaseUser, emoji: str, on: bool
) -> Message:
    """Put the user's `emoji` on a live message of `room` (`on`), or take it back.

    A change takes the room's next seq (the message's new `rev`), as an edit does, and the
    room hears `message_reactions` with the message's whole summary after commit; so a
    client that missed it finds the message in its next `since` replay. Asking for what
    already holds changes nothing and takes no seq (a retried request is safe), though it
    is checked like a change: who may not write in the room (`_next_seq`) is refused.
    An emoji outside the palette (chat/reactions.py) is refused."""
    canonical = reactions.canonical(emoji)
    if canonical is None:
        raise ChatError(ErrorCode.BAD_REQUEST, "That emoji is not one of the reactions.")
    message = _message_for_change(room=room, message_id=message_id)
    with transaction.atomic():
        seq = _next_seq(room, actor_id=user.pk)
        # Under the room's lock: the message may have been deleted since it was read above.
        if not Message.objects.filter(pk=message.pk, deleted_at__isnull=True).exists():
            raise ChatError(ErrorCode.NOT_FOUND, f"No message {message_id} in this room.")
        mine = Reaction.objects.filter(message=message, user=user, emoji=canonical)
        if on and not mine.exists():
            Reaction.objects.create(message=message, user=user, emoji=canonical)
        elif on or not mine.delete()[0]:
            transaction.set_rollback(True)  # give the seq back: nothing changed
            return message
        Message.objects.filter(pk=message.pk).update(rev=seq)
        message.rev = seq
        events.broadcast_on_commit(room.pk, events.message_reactions_frame(message))
    return message


def message_delete_as(*, room: Room, message_id: int, user: AbstractBaseUser) -> Message:
    """Delete a message of `room` as `user` (from the socket): its author may, any time; so
    may staff (moderators); others get forbidden. Raises not_found for a message already
    deleted."""
    message = _message_for_change(room=room, message_id=message_id)
    if not access.can_delete(user, message):
        raise ChatError(ErrorCode.FORBIDDEN, "You can only delete your own messages.")
    if not _delete(message, actor_id=user.pk):
        raise ChatError(ErrorCode.NOT_FOUND, f"No message {message_id} in this room.")
    return message


# @room notifies every member of the room, @here every member connected now; no account may
# take these names (chat/web/forms.py), and an older account that has one is not mentioned
# by them. The words and the @name pattern are formatting's, which marks the same mentions.
EVERYONE_WORDS = formatting.EVERYONE_WORDS


def mentioned_usernames(body: str) -> set[str]:
    """The usernames a body mentions as @name (a trailing full stop is punctuation)."""
    return formatting.mentioned_names(body)


def everyone_mentions(body: str) -> set[str]:
    """Which of @room and @here (in any letter case) a body says, as {"room", "here"}."""
    return {name.lower() for name in mentioned_usernames(body)} & EVERYONE_WORDS


def here_wanted(body: str) -> bool:
    """Whether storing this body needs the users connected now (it says @here, not @room)."""
    return everyone_mentions(body) == {"here"}


def _notify(
    message: Message, *, here: frozenset[int] = frozenset(), hear_all: Sequence[int] | None = None
) -> None:
    """After commit, tell the people a message is for, on every tab of theirs, once each,
    with the strongest reason that applies:
    - "mention": it @mentions them;
    - "room" / "here": it says @room (every member) or @here (every member connected now);
    - "dm" / "message": they asked for every message of this direct message / room (a
      reply only in a room's thread is not one).
    Only members who `may_be_notified` hear anything (access.notifiable_memberships), and a
    member who muted the room hears nothing, not even a mention. The author is never told.
    `hear_all`: the user ids of those members who hear every message of the room, when the
    caller looked them up already (a group commit, once for all its messages)."""
    room = message.room
    names = mentioned_usernames(message.body)
    # Built only when needed: building the query costs more than the rest of a plain send.
    ids = None
    if names or hear_all is None:
        members = access.notifiable_memberships(room).exclude(notify=Membership.Notify.MUTE)
        ids = members.values_list("user_id", flat=True)
    reasons: dict[int, str] = {}
    # A reply only in a thread of a room is not a room message: only its mentions notify.
    thread_only = message.thread_root_id is not None and not message.also_in_room
    if room.is_direct or not thread_only:
        every = ids.filter(notify=Membership.Notify.ALL) if hear_all is None else hear_all
        reasons.update(dict.fromkeys(every, "dm" if room.is_direct else "message"))
    everyone = {name.lower() for name in names} & EVERYONE_WORDS
    if "room" in everyone:
        reasons.update(dict.fromkeys(ids, "room"))
    elif "here" in everyone and here:
        reasons.update(dict.fromkeys(ids.filter(user_id__in=here), "here"))
    names = {name for name in names if name.lower() not in EVERYONE_WORDS}
    if names:
        reasons.update(dict.fromkeys(ids.filter(user__username__in=names), "mention"))
    reasons.pop(message.author_id, None)
    by_reason: dict[str, list[int]] = {}
    for user_id, reason in reasons.items():
        by_reason.setdefault(reason, []).append(user_id)
    for reason, user_ids in by_reason.items():  # one frame per reason, encoded once
        frame = events.notification_frame(reason=reason, message=message)
        for group, event in events.users_broadcast(user_ids, frame):
            events.send_on_commit(group, event)


DIRECT_MAX_PEOPLE = 8  # people in a group direct message, its starter included


def direct_room_get_or_create(*, user: AbstractBaseUser, other: AbstractBaseUser) -> Room:
    """The direct-message room of two users (made on first use): `direct_group_get_or_create`
    with one other."""
    if user.pk == other.pk:
        raise ChatError(ErrorCode.BAD_REQUEST, "A direct message needs another user.")
    return direct_group_get_or_create(user=user, others=[other])


def direct_group_get_or_create(
    *, user: AbstractBaseUser, others: Sequence[AbstractBaseUser]
) -> Room:
    """The direct-message room of `user` and `others` (made on first use): private, exactly
    those members (two to DIRECT_MAX_PEOPLE), one per set of people whoever opens it first
    and in whatever order they are named. When it is made, every tab of each member hears
    `membership` after commit, so it appears in their sidebars at once.

    Found by `is_direct` and its set of users, never by slug: a slug is a name anyone may
    learn, and the unique `direct_key` keeps two first opens at once from making two DMs.
    Its slug is random, in the namespace no other room may take (`slug_is_reserved`)."""
    people = sorted({u.pk: u for u in [user, *others]}.values(), key=lambda u: u.pk)
    if len(people) < 2:
        raise ChatError(ErrorCode.BAD_REQUEST, "A direct message needs another user.")
    if len(people) > DIRECT_MAX_PEOPLE:
        raise ChatError(
            ErrorCode.BAD_REQUEST, f"A direct message holds at most {DIRECT_MAX_PEOPLE} people."
        )
    key = ":".join(str(u.pk) for u in people)
    room = Room.objects.filter(is_direct=True, direct_key=key).first()
    if room is not None:
        return room
    try:
        with transaction.atomic():
            room = Room.objects.create(
                slug=f"dm-{secrets.token_hex(8)}",
                name=_direct_name([u.get_username() for u in people]),
                is_private=True,
                is_direct=True,
                direct_key=key,
            )
            # A direct message notifies its members of every message until they say otherwise.
            room.members.add(*people, through_defaults={"notify": Membership.Notify.ALL})
            # Read up to nothing yet: what comes is unread (a room never read counts nothing).
            ReadState.objects.bulk_create(ReadState(user=u, room=room, seq=0) for u in people)
            for membership in Membership.objects.filter(room=room).select_related("user"):
                _membership_announce(membership, member=True)
    except IntegrityError:  # another of them opened it at the same moment
        room = Room.objects.get(is_direct=True, direct_key=key)
    return room


def _direct_name(names: list[str]) -> str:
    """ "alice & bob", "alice, bob & carol", cut to what Room.name holds."""
    name = f"{', '.join(names[:-1])} & {names[-1]}"
    limit = Room._meta.get_field("name").max_length
    return name if len(name) <= limit else name[: limit - 1] + "…"


def announcement_create(*, body: str, by: AbstractBaseUser | None) -> Announcement:
    """Store a site-wide announcement; after commit every connected socket hears it once."""
    body = body.strip()
    if visible_text.shows_nothing(body):
        raise ChatError(ErrorCode.BAD_REQUEST, "An announcement cannot be empty.")
    with transaction.atomic():
        announcement = Announcement.objects.create(body=body, created_by=by)
        frame = events.announcement_frame(
            announcement_id=announcement.pk,
            body=announcement.body,
            created=announcement.created_at.isoformat(),
        )
        events.send_on_commit(
            events.SITE_GROUP, events.broadcast_event(group=events.SITE_GROUP, frame=frame)
        )
    return announcement


def message_delete(*, message: Message) -> bool:
    """Soft-delete a message (moderation, from the admin) and tell the room; False if it was
    already deleted. Works in archived rooms too."""
    return _delete(message, actor_id=None)


def _delete(message: Message, *, actor_id: int | None) -> bool:
    """The deletion takes the room's next seq (the message's new `rev`), like an edit."""
    room = Room.objects.only("pk", "slug").get(pk=message.room_id)
    with transaction.atomic():
        seq = _next_seq(room, actor_id=actor_id)
        now = timezone.now()
        updated = Message.objects.filter(pk=message.pk, deleted_at__isnull=True).update(
            deleted_at=now, rev=seq
        )
        if not updated:
            transaction.set_rollback(True)  # give the seq back: nothing happened
            return False
        Reaction.objects.filter(message=message).delete()  # a deleted message shows none
        message.deleted_at, message.rev = now, seq
        _delete_files_of(message)
        events.broadcast_on_commit(
            room.pk,
            events.message_deleted_frame(room_slug=room.slug, message_id=message.pk, seq=seq),
        )
        root_id = message.thread_root_id
        if root_id and Message.objects.filter(pk=root_id, deleted_at__isnull=True).exists():
            _thread_changed(room, root_id, actor_id=actor_id)  # one reply fewer
    return True


def _delete_files_of(message: Message) -> None:
    """A deleted message takes its files along: their rows now (nobody may fetch them from
    this moment), their stored bytes once the deletion commits (chat/signals.py)."""
    if Attachment.objects.filter(message=message).delete()[0]:
        Message.objects.filter(pk=message.pk).update(files=[])
        message.files = []


def room_mark_read(*, room: Room, user: AbstractBaseUser, seq: int) -> int:
    """Record that `user` has read `room` up to `seq` (never past the room's counter, never
    backwards) and return the stored mark. A mark that moved is sent to all the user's
    sockets after commit, so every tab clears its unread count."""
    with transaction.atomic():
        last = Room.objects.values_list("last_seq", flat=True).get(pk=room.pk)
        seq = min(seq, last)
        stored, moved = _mark_forward(ReadState, seq=seq, user=user, room=room)
        if not moved:
            return stored
        events.send_on_commit(
            *events.user_broadcast(user.pk, events.read_frame(room_slug=room.slug, seq=seq))
        )
    return seq


def user_ban(
    *, room: Room, user: AbstractBaseUser, by: AbstractBaseUser | None = None, reason: str = ""
) -> bool:
    """Ban `user` from `room`: every socket of theirs leaves the room at once, hearing
    `removed` with the reason, and they cannot see, join or post in it again until unbanned.
    False if they were banned already."""
    with transaction.atomic():
        _, created = Ban.objects.get_or_create(
            room=room, user=user, defaults={"created_by": by, "reason": reason.strip()}
        )
        if created:
            event = events.removed_event(
                user_id=user.pk, room_slug=room.slug, reason=reason.strip() or BAN_REASON
            )
            events.send_on_commit(event["group"], event)
    return created


MEMBERSHIP_REASON = "You are no longer a member of this room."


def room_members_removed(*, room: Room, user_ids: Sequence[int]) -> None:
    """Users left a private room's members: after commit, every socket of theirs leaves the
    room, hearing `removed` (a public room is open to all, so nothing changes there)."""
    if not room.is_private:
        return
    for user_id in user_ids:
        event = events.removed_event(user_id=user_id, room_slug=room.slug, reason=MEMBERSHIP_REASON)
        events.send_on_commit(event["group"], event)


DEFAULT_ROOM_SLUG = "general"  # made by chat/migrations/0002_general_room.py


def user_welcome(*, user: AbstractBaseUser) -> None:
    """A new account joins the default room, so its sidebar starts with somewhere to talk
    (nothing if that room is gone, archived or private)."""
    room = Room.objects.filter(slug=DEFAULT_ROOM_SLUG, is_private=False, is_archived=False).first()
    if room is not None:
        membership_join(room=room, user=user)


def membership_join(*, room: Room, user: AbstractBaseUser) -> Membership:
    """Put `room` in the user's rooms (sidebar, unread counts, mentions); joining again
    changes nothing. A user who never read the room has read it up to now: what comes
    after joining is unread. Only public rooms are joined this way (a private room's members are
    added by others); the banned may not, nor may anyone join an archived room. Every tab
    of the user hears `membership` after commit."""
    if room.is_private and not room.members.filter(pk=user.pk).exists():
        raise ChatError(ErrorCode.NOT_FOUND, f"No room {room.slug!r}.")
    if access.is_banned(user, room):
        raise ChatError(ErrorCode.FORBIDDEN, BAN_REASON)
    if room.is_archived:
        raise ChatError(ErrorCode.ROOM_ARCHIVED, "This room is archived.")
    return _membership_add(room=room, user=user)


def membership_leave(*, room: Room, user: AbstractBaseUser) -> bool:
    """Take `room` out of the user's rooms; False if it was not in them. Leaving a private
    room gives up access to it (its sockets hear `removed`: chat/signals.py); a room's last
    owner cannot leave it. Every tab of the user hears `membership` after commit.

    A group direct message of three or more can be left (`_direct_left`: the people who
    stay keep it); one of two cannot (DIRECT_PAIR_LEAVES)."""
    with transaction.atomic():
        _lock(room)
        membership = Membership.objects.filter(room=room, user=user).first()
        if membership is None:
            return False
        if room.is_direct and selectors.room_member_count(room=room) < 3:
            raise ChatError(ErrorCode.BAD_REQUEST, DIRECT_PAIR_LEAVES)
        _refuse_last_owner(membership, LAST_OWNER_LEAVES)
        membership.delete()
        _membership_announce(membership, member=False)
        if room.is_direct:
            _direct_left(room)
    return True


DIRECT_PAIR_LEAVES = (
    "A conversation between two people cannot be left: it is where each of you finds the other."
)


def _direct_left(room: Room) -> None:
    """Someone left a group DM (its row locked): it becomes the DM of the people who stay,
    named after them, unless they have one already; then it keeps going without a key
    (NULL), so "Message" to those people finds their one keyed DM and this one lives on
    only in their sidebars. Either way its history stays with the people who saw it. The
    room's sockets hear `room_updated` (the new name) and each member's tabs `membership`
    (how many people it now holds)."""
    people = list(room.members.order_by("pk"))
    key = ":".join(str(u.pk) for u in people)
    room.name = _direct_name([u.get_username() for u in people])
    room.direct_key = key
    if Room.objects.filter(direct_key=key).exclude(pk=room.pk).exists():
        room.direct_key = None
    try:
        with transaction.atomic():
            Room.objects.filter(pk=room.pk).update(name=room.name, direct_key=room.direct_key)
    except IntegrityError:  # that DM was made at this moment: it is theirs, this goes unkeyed
        room.direct_key = None
        Room.objects.filter(pk=room.pk).update(name=room.name, direct_key=None)
    frame = events.room_updated_frame(room_slug=room.slug, name=room.name, topic=room.topic)
    events.broadcast_on_commit(room.pk, frame)
    for membership in Membership.objects.filter(room=room):
        _membership_announce(membership, member=True)


def direct_people_add(*, room: Room, by: AbstractBaseUser, usernames: Sequence[str]) -> Room:
    """From a direct message, "Add people": the DM of its people and the active users
    `usernames`, up to DIRECT_MAX_PEOPLE (`direct_group_get_or_create`: made on first use,
    or the one those people have already). A new conversation, not this one grown: what was
    said here stays with the people who were here. Only a member may; others are told the
    room does not exist."""
    if not room.is_direct or not room.members.filter(pk=by.pk).exists():
        raise ChatError(ErrorCode.NOT_FOUND, f"No room {room.slug!r}.")
    names = {name.strip().lstrip("@") for name in usernames} - {""}
    if not names:
        raise ChatError(ErrorCode.BAD_REQUEST, "Name someone to add.")
    people = list(room.members.all())
    known = {u.get_username() for u in people}
    added = []
    for name in sorted(names - known):
        user = selectors.user_get_active(username=name)
        if user is None:
            raise ChatError(ErrorCode.BAD_REQUEST, f"No user called {name!r}.")
        added.append(user)
    if not added:
        raise ChatError(ErrorCode.BAD_REQUEST, "They are in this conversation already.")
    if len(people) + len(added) > DIRECT_MAX_PEOPLE:
        raise ChatError(
            ErrorCode.BAD_REQUEST, f"A direct message holds at most {DIRECT_MAX_PEOPLE} people."
        )
    return direct_group_get_or_create(user=by, others=[*people, *added])


LAST_OWNER_LEAVES = "You are this room's last owner: make another member owner before you leave."
LAST_OWNER_STEPS_DOWN = (
    "You are this room's last owner: make another member owner before you step down."
)
OWNERS_STEP_DOWN = "Owners step down themselves; only staff may remove an owner."
LAST_OWNER_REMOVED = "The room's last owner cannot be removed: make another member owner first."


def _lock(room: Room) -> None:
    """Lock the room's row (PostgreSQL; SQLite locks the database for the transaction), so
    that two owners stepping down at once cannot both see the other one stay."""
    Room.objects.select_for_update().filter(pk=room.pk).values_list("pk", flat=True).first()


def _refuse_last_owner(membership: Membership, message: str) -> None:
    """A room someone owns keeps an owner: its last one cannot leave, step down or go."""
    if membership.role != Membership.Role.OWNER:
        return
    owners = Membership.objects.filter(room_id=membership.room_id, role=Membership.Role.OWNER)
    if not owners.exclude(pk=membership.pk).exists():
        raise ChatError(ErrorCode.BAD_REQUEST, message)


def _manage(room: Room, by: AbstractBaseUser) -> None:
    """Raise unless `by` may manage the room (`access.manage_refusal`: owners and staff)."""
    refusal = access.manage_refusal(by, room)
    if refusal is not None:
        raise refusal


def _member_named(room: Room, username: str) -> Membership:
    membership = (
        Membership.objects.select_related("user").filter(room=room, user__username=username).first()
    )
    if membership is None:
        raise ChatError(ErrorCode.BAD_REQUEST, f"{username!r} is not a member of this room.")
    return membership


def membership_invite(*, room: Room, by: AbstractBaseUser, username: str) -> Membership:
    """An owner (or staff) adds the active user `username` to the room's members, as a
    member: a private room becomes visible to them, and every tab of theirs gets it in its
    sidebar at once (`membership`). Inviting a member again changes nothing; the banned
    cannot be invited."""
    _manage(room, by)
    user = selectors.user_get_active(username=username.strip())
    if user is None:
        raise ChatError(ErrorCode.BAD_REQUEST, f"No user called {username.strip()!r}.")
    if access.is_banned(user, room):
        raise ChatError(ErrorCode.BAD_REQUEST, f"{user.get_username()} is banned from this room.")
    return _membership_add(room=room, user=user)


def membership_remove(*, room: Room, by: AbstractBaseUser, username: str) -> None:
    """An owner (or staff) takes a member out of the room: out of their sidebar on every
    tab (`membership`), and out of a private room altogether (`removed`: chat/signals.py).
    Owners are not removed by other owners (they step down), only by staff, and never the
    last one; one leaves oneself with *Leave room*."""
    _manage(room, by)
    with transaction.atomic():
        _lock(room)
        membership = _member_named(room, username)
        if membership.user_id == by.pk:
            raise ChatError(ErrorCode.BAD_REQUEST, "Use “Leave room” to leave the room yourself.")
        if membership.role == Membership.Role.OWNER and not access.is_moderator(by):
            raise ChatError(ErrorCode.FORBIDDEN, OWNERS_STEP_DOWN)
        _refuse_last_owner(membership, LAST_OWNER_REMOVED)
        membership.delete()
        _membership_announce(membership, member=False)


def membership_make_owner(*, room: Room, by: AbstractBaseUser, username: str) -> Membership:
    """An owner (or staff) makes a member an owner too (handing over: then step down);
    every tab of theirs hears `membership` (`owner`), so their sidebar marks the room."""
    _manage(room, by)
    with transaction.atomic():
        membership = _member_named(room, username)
        if membership.role != Membership.Role.OWNER:
            membership.role = Membership.Role.OWNER
            membership.save(update_fields=["role"])
            _membership_announce(membership, member=True)
    return membership


def membership_step_down(*, room: Room, user: AbstractBaseUser) -> Membership:
    """An owner becomes a plain member (every tab of theirs hears `membership`); the last
    owner cannot (hand over first)."""
    _manage(room, user)
    with transaction.atomic():
        _lock(room)
        membership = Membership.objects.filter(room=room, user=user).first()
        if membership is None or membership.role != Membership.Role.OWNER:
            raise ChatError(ErrorCode.BAD_REQUEST, "You are not an owner of this room.")
        _refuse_last_owner(membership, LAST_OWNER_STEPS_DOWN)
        membership.role = Membership.Role.MEMBER
        membership.save(update_fields=["role"])
        _membership_announce(membership, member=True)
    return membership


def room_update(*, room: Room, by: AbstractBaseUser, name: str, topic: str) -> Room:
    """An owner (or staff) renames the room or changes its topic (its slug, its address,
    stays); everyone in it hears `room_updated` after commit, so headers and sidebars
    follow. A name another room they can see holds is refused, as when creating one."""
    _manage(room, by)
    name, topic = name.strip(), topic.strip()
    if not name or visible_text.shows_nothing(name):
        raise ChatError(ErrorCode.BAD_REQUEST, "A room needs a name.")
    if len(name) > 80 or len(topic) > 200:
        raise ChatError(ErrorCode.BAD_REQUEST, "A name has at most 80 characters, a topic 200.")
    if name.lower() != room.name.lower() and selectors.room_name_taken(name=name, user=by):
        raise ChatError(ErrorCode.BAD_REQUEST, f"A room called {name!r} already exists.")
    if (name, topic) == (room.name, room.topic):
        return room
    with transaction.atomic():
        Room.objects.filter(pk=room.pk).update(name=name, topic=topic)
        room.name, room.topic = name, topic
        frame = events.room_updated_frame(room_slug=room.slug, name=name, topic=topic)
        events.broadcast_on_commit(room.pk, frame)
    return room


def room_archive_as(*, room: Room, by: AbstractBaseUser) -> bool:
    """An owner (or staff) archives the room: `room_archive`, after the permission check."""
    _manage(room, by)
    return room_archive(room=room)


def room_unarchive_as(*, room: Room, by: AbstractBaseUser) -> bool:
    """An owner (or staff) un-archives the room: `room_unarchive`, after the permission
    check (`access.unarchive_refusal`); a room not archived is refused (bad_request)."""
    refusal = access.unarchive_refusal(by, room)
    if refusal is not None:
        raise refusal
    if not room_unarchive(room=room):
        raise ChatError(ErrorCode.BAD_REQUEST, "This room is not archived.")
    return True


def membership_star(*, room: Room, user: AbstractBaseUser, starred: bool) -> Membership:
    """Star (list first) or unstar one of the user's rooms; every tab of theirs hears it."""
    return _membership_set(
        room=room, user=user, refusal="Join the room to star it.", starred=starred
    )


def membership_notify(*, room: Room, user: AbstractBaseUser, notify: str) -> Membership:
    """Set which of the room's messages notify the user (`Membership.Notify`: "all",
    "mentions" or "mute"); every tab of theirs hears it. Anything else is refused and
    changes nothing."""
    if notify not in Membership.Notify.values:
        choices = ", ".join(Membership.Notify.values)
        raise ChatError(ErrorCode.BAD_REQUEST, f"Notify must be one of: {choices}.")
    refusal = "Join the room to choose its notifications."
    return _membership_set(room=room, user=user, refusal=refusal, notify=notify)


def _membership_set(
    *, room: Room, user: AbstractBaseUser, refusal: str, **fields: object
) -> Membership:
    """Change the user's own settings of one of their rooms (`fields` of their Membership),
    under its row lock; every tab of theirs hears it if anything changed. Not a member:
    bad_request, saying `refusal`."""
    with transaction.atomic():
        membership = Membership.objects.select_for_update().filter(room=room, user=user).first()
        if membership is None:
            raise ChatError(ErrorCode.BAD_REQUEST, refusal)
        changed = [name for name, value in fields.items() if getattr(membership, name) != value]
        if changed:
            for name in changed:
                setattr(membership, name, fields[name])
            membership.save(update_fields=changed)
            _membership_announce(membership, member=True)
    return membership


def memberships_notify(*, user: AbstractBaseUser, levels: Mapping[Room, str]) -> None:
    """Set several of the user's rooms' notifications at once (the account page): all of
    them, or, if any level or room is refused (`membership_notify`), none. Each change
    reaches every tab of theirs after commit."""
    with transaction.atomic():
        for room, notify in levels.items():
            membership_notify(room=room, user=user, notify=notify)


def _membership_add(*, room: Room, user: AbstractBaseUser) -> Membership:
    """Make `user` a member (joined or invited): their read mark starts at the room's last
    message (a room just joined counts only what follows as unread), and their tabs hear
    `membership` after commit. Idempotent."""
    with transaction.atomic():
        membership, created = Membership.objects.get_or_create(room=room, user=user)
        if created:
            last_seq = Room.objects.values_list("last_seq", flat=True).get(pk=room.pk)
            ReadState.objects.get_or_create(user=user, room=room, defaults={"seq": last_seq})
            _membership_announce(membership, member=True)
    return membership


def _membership_announce(membership: Membership, *, member: bool) -> None:
    """After commit, tell every tab of the member what their sidebar now holds of the room."""
    room = selectors.rooms_with_unread(
        rooms=Room.objects.filter(pk=membership.room_id), user=membership.user
    ).get()
    frame = events.membership_frame(
        room_slug=room.slug,
        name=room.name,
        member=member,
        starred=membership.starred,
        notify=membership.notify,
        owner=member and membership.role == Membership.Role.OWNER,
        private=room.is_private,
        direct=room.is_direct,
        people=selectors.room_member_count(room=room) if room.is_direct else None,
        last_seq=room.last_seq,
        read=room.read_mark,
        unread=room.unread if member else 0,
    )
    events.send_on_commit(*events.user_broadcast(membership.user_id, frame))


def user_unban(*, room: Room, user: AbstractBaseUser) -> bool:
    """Lift a ban; False if there was none."""
    deleted, _ = Ban.objects.filter(room=room, user=user).delete()
    return bool(deleted)


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
    """Open an archived room again, the inverse of `room_archive`; False if it was not
    archived. Archiving took every socket out of the room; nobody is put back: whoever may
    see it hears `room_opened` after commit, and their pages join it again by themselves
    (as any join, checked then)."""
    with transaction.atomic():
        updated = Room.objects.filter(pk=room.pk, is_archived=True).update(is_archived=False)
        if updated:
            _room_opened_announce(room)
    room.is_archived = False
    return bool(updated)


def _room_opened_announce(room: Room) -> None:
    """After commit, tell whoever may see the room that it is open (made, or un-archived):
    every socket, signed in or not, for a public room, whose name and topic the lobby shows
    anyone; only its members' sockets for a private one (nobody else may know it exists)."""
    fresh = Room.objects.get(pk=room.pk)
    member_ids = list(Membership.objects.filter(room=room).values_list("user_id", flat=True))
    frame = events.room_opened_frame(
        room_slug=fresh.slug,
        name=fresh.name,
        topic=fresh.topic,
        private=fresh.is_private,
        direct=fresh.is_direct,
        members=len(member_ids),
        last_seq=fresh.last_seq,
    )
    if not fresh.is_private:
        group = events.SITE_GROUP
        events.send_on_commit(group, events.broadcast_event(group=group, frame=frame))
        return
    for user_id in member_ids:
        events.send_on_commit(*events.user_broadcast(user_id, frame))


PRIVATE_REASON = "This room is now private."


def room_made_private(*, room: Room) -> None:
    """A public room became private: after commit, every socket in it asks again whether its
    user may read it (`selectors.rooms_joinable`, as a join does); those who may not
    (anonymous readers, non-members) leave it, hearing `removed`."""
    event = events.room_recheck_event(room_id=room.pk, room_slug=room.slug, reason=PRIVATE_REASON)
    events.send_on_commit(event["group"], event)


PASSWORD_REASON = "The password of this account was changed."


def user_sockets_close(*, user_id: int, reason: str) -> None:
    """Close every open socket of a user, on every worker, saying why (after commit)."""
    event = events.session_ended_event(user_id=user_id, reason=reason)
    events.send_on_commit(event["group"], event)


@transaction.atomic
def profile_update(
    *,
    user: AbstractBaseUser,
    display_name: str,
    status: str,
    time_zone: str,
    email: str,
    avatar: ContentFile | None = None,
    remove_avatar: bool = False,
) -> Profile:
    """Save a user's profile (made on first save) and email. A new avatar (already made safe
    by chat/avatars.py) replaces the old one; the old file is deleted once the change commits.
    If what others see of them changed, every socket hears `profile` after commit."""
    profile, _ = Profile.objects.select_for_update().get_or_create(user=user)
    old_avatar = profile.avatar.name if profile.avatar else ""
    shown_before = (profile.display_name, profile.status, profile.time_zone, old_avatar)
    profile.display_name = display_name
    profile.status = status
    profile.time_zone = time_zone
    if avatar is not None:
        profile.avatar.save(avatar.name, avatar, save=False)
    elif remove_avatar:
        profile.avatar = ""
    profile.save()
    if user.email != email:
        user.email = email
        user.save(update_fields=["email"])
    if old_avatar and old_avatar != profile.avatar.name:
        storage = profile.avatar.storage
        transaction.on_commit(lambda: storage.delete(old_avatar))
    shown = (profile.display_name, profile.status, profile.time_zone, profile.avatar.name or "")
    if shown != shown_before:
        frame = events.profile_frame(username=user.get_username())
        events.send_on_commit(
            events.SITE_GROUP, events.broadcast_event(group=events.SITE_GROUP, frame=frame)
        )
    return profile
