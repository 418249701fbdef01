"""Reads. Every door (pages, socket, admin) asks these, so they all agree on who sees what."""

import copy
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    FilteredRelation,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils.safestring import SafeString

from . import access, fulltext
from .access import AnyUser
from .models import Attachment, Membership, Message, Profile, Reaction, Room, ThreadRead
from .protocol.errors import ChatError, ErrorCode
from .search_query import SearchQuery

# What events.message_dict reads of a message besides its own row: load it in the same query.
MESSAGE_RELATED = ("room", "author", "author__profile", "reply_to", "reply_to__author")

SLUG_RE = re.compile(r"^[-a-zA-Z0-9_]{1,80}$")  # what SlugField(max_length=80) can hold


@dataclass(frozen=True)
class MessagePage:
    """Messages oldest first, and whether more lie beyond them in the direction asked."""

    messages: list[Message]
    has_more: bool


def rooms_visible_to(*, user: AnyUser, direct: bool = False) -> QuerySet[Room]:
    """Rooms listed in the lobby: those the user may see (`access.visible_rooms`) and that
    are not archived; with `direct`, the user's direct-message rooms instead, each annotated
    with how many `people` it holds."""
    rooms = Room.objects.filter(access.visible_rooms(user), is_archived=False, is_direct=direct)
    if direct:
        rooms = rooms.annotate(people=_member_count())
    return rooms.order_by("name")


def _member_count() -> Coalesce:
    """A room's number of members, as a subquery (no join to multiply other counts)."""
    counted = (
        Membership.objects.filter(room=OuterRef("pk"))
        .order_by()
        .values("room")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def rooms_of(*, user: AnyUser) -> QuerySet[Room]:
    """The user's rooms (the sidebar, "your rooms"): the rooms they are a member of, not
    archived and not direct messages, each annotated with `starred`, `is_owner`, `notify` and
    the user's `read_mark` and `unread` (as `rooms_with_unread` counts them); starred first,
    then by name. Anonymous visitors have none. A private room one is a member of is
    visible.

    One query, with the membership and the read mark joined (each unique per user and
    room, so a room is one row): a user in 200 rooms asked an EXISTS per room and column."""
    if not user.is_authenticated:
        return Room.objects.none()
    rooms = Room.objects.annotate(
        mine=FilteredRelation("memberships", condition=Q(memberships__user=user)),
        my_read=_my_read(user),
    )
    rooms = rooms.filter(mine__isnull=False, is_archived=False, is_direct=False)
    rooms = rooms.exclude(bans__user=user.pk)
    owner = ExpressionWrapper(Q(mine__role=Membership.Role.OWNER), output_field=BooleanField())
    return rooms.annotate(
        starred=F("mine__starred"),
        is_owner=owner,
        notify=F("mine__notify"),
        read_mark=F("my_read__seq"),
        unread=_unread_after(OuterRef("my_read__seq"), user=user),
    ).order_by("-starred", "name")


def rooms_in_lobby(*, user: AnyUser, query: str = "") -> QuerySet[Room]:
    """The lobby's list: every room the user may see (all public ones, and private ones they
    are a member of), not archived, no direct messages, whose name contains `query` (any
    letter case); each annotated with `member_count` and `is_member`, by name."""
    rooms = rooms_visible_to(user=user)
    if query.strip():
        rooms = rooms.filter(name__icontains=query.strip())
    member: Exists | Value = Value(False, output_field=BooleanField())
    if user.is_authenticated:
        member = Exists(Membership.objects.filter(room=OuterRef("pk"), user=user.pk))
    return rooms.annotate(
        member_count=_member_count(),
        is_member=member,
    )


def room_membership(*, room: Room, user: AnyUser) -> Membership | None:
    """The user's membership of the room, or None (anonymous, or not a member)."""
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(room=room, user=user).first()


def room_member_count(*, room: Room) -> int:
    """How many members the room has (a direct message: how many people it holds)."""
    return Membership.objects.filter(room=room).count()


def room_name_taken(*, name: str, user: AnyUser) -> bool:
    """Whether a room the user can see (archived ones too, DMs aside) is called `name`, in
    any letter case. Rooms they cannot see never count: the answer must not reveal them."""
    rooms = Room.objects.filter(access.visible_rooms(user), is_direct=False)
    return rooms.filter(name__iexact=name.strip()).exists()


def room_get_visible(*, slug: str, user: AnyUser) -> Room:
    """The room at `slug` if the user may see it; not_found otherwise (never leak existence).
    A `slug` that cannot be one (client text) is not looked up."""
    return _visible(_room_at(slug), slug=slug, user=user)


def room_get_open_to(*, slug: str, user: AnyUser) -> Room:
    """The room at `slug` if the user may read it (`access.can_read`, its two halves asked
    apart): not_found for what they may not see, forbidden (they know the room) for a ban."""
    return _open_to(_room_at(slug), slug=slug, user=user)


def rooms_joinable(requests: Sequence[tuple[str, AnyUser]]) -> list[Room | ChatError]:
    """For each (slug, user) of the checks that arrive together (chat/realtime/join_reads.py),
    the room a socket may join: open to the user (`room_get_open_to`) and not archived;
    or why not. The rooms are looked up in one query, then each user's right to each is
    asked as alone. Every answer is a room object of its own."""
    slugs = {slug for slug, _ in requests if SLUG_RE.match(slug)}
    found = {room.slug: room for room in Room.objects.filter(slug__in=slugs)} if slugs else {}
    answers: list[Room | ChatError] = []
    for slug, user in requests:
        room = found.get(slug)
        try:
            answers.append(_joinable(copy.copy(room), slug=slug, user=user))
        except ChatError as error:
            answers.append(error)
    return answers


def _room_at(slug: str) -> Room | None:
    return Room.objects.filter(slug=slug).first() if SLUG_RE.match(slug) else None


def _visible(room: Room | None, *, slug: str, user: AnyUser) -> Room:
    if room is None or not access.can_see(user, room):
        raise ChatError(ErrorCode.NOT_FOUND, f"No room {slug!r}.")
    return room


def _open_to(room: Room | None, *, slug: str, user: AnyUser) -> Room:
    room = _visible(room, slug=slug, user=user)
    if access.is_banned(user, room):
        raise ChatError(ErrorCode.FORBIDDEN, "You have been banned from this room.")
    return room


def _joinable(room: Room | None, *, slug: str, user: AnyUser) -> Room:
    room = _open_to(room, slug=slug, user=user)
    if room.is_archived:
        raise ChatError(ErrorCode.ROOM_ARCHIVED, f"Room {slug!r} is archived.")
    return room


def _live_messages(room: Room) -> QuerySet[Message]:
    """The room's main log: its live messages but the thread replies kept to their thread."""
    return (
        Message.objects.filter(room=room, deleted_at__isnull=True)
        .filter(Q(thread_root__isnull=True) | Q(also_in_room=True))
        .select_related(*MESSAGE_RELATED)
    )


def with_reactions(messages: list[Message]) -> list[Message]:
    """Load the reactions of a page of messages, in one query, as each one's
    `reaction_rows` (what events.reaction_summary reads); none when no message of the page
    can have any (each reaction takes a seq: a message never changed has none), which is
    most pages."""
    ids = [m.pk for m in messages if m.rev != m.seq and m.deleted_at is None]
    if not ids:
        return messages
    rows: dict[int, list[Reaction]] = {pk: [] for pk in ids}
    for reaction in (
        Reaction.objects.filter(message_id__in=ids).select_related("user").order_by("pk")
    ):
        rows[reaction.message_id].append(reaction)
    for message in messages:
        if message.pk in rows:
            message.reaction_rows = rows[message.pk]
    return messages


def messages_latest(*, room: Room, limit: int) -> MessagePage:
    """The newest `limit` messages; has_more says older ones exist."""
    rows = list(_live_messages(room).order_by("-seq")[: limit + 1])
    return MessagePage(messages=with_reactions(rows[:limit][::-1]), has_more=len(rows) > limit)


def messages_since(*, room: Room, seq: int, limit: int) -> MessagePage:
    """Everything that happened in the room after `seq`, at most `limit` messages, in the
    order of their latest change (`rev`): new messages, and edited or deleted ones (deleted
    ones without their body); has_more says more changes remain."""
    rows = list(
        Message.objects.filter(room=room, rev__gt=seq)
        .select_related(*MESSAGE_RELATED)
        .order_by("rev")[: limit + 1]
    )
    return MessagePage(messages=with_reactions(rows[:limit]), has_more=len(rows) > limit)


def messages_before(*, room: Room, seq: int | None, limit: int) -> MessagePage:
    """The newest `limit` messages with seq < `seq` (all if None); has_more says older exist."""
    rows = _live_messages(room)
    if seq is not None:
        rows = rows.filter(seq__lt=seq)
    found = list(rows.order_by("-seq")[: limit + 1])
    return MessagePage(messages=with_reactions(found[:limit][::-1]), has_more=len(found) > limit)


@dataclass(frozen=True)
class AroundPage(MessagePage):
    """A page of messages around one seq; `has_newer` says newer ones exist beyond it."""

    has_newer: bool = False


def messages_around(*, room: Room, seq: int, limit: int) -> AroundPage:
    """About `limit` live messages around `seq` (a search result opened in its room): half
    up to and with it, half after; has_more says older ones exist, has_newer newer ones."""
    before_count = limit // 2 + 1
    after_count = limit - before_count
    older = list(_live_messages(room).filter(seq__lte=seq).order_by("-seq")[: before_count + 1])
    newer = list(_live_messages(room).filter(seq__gt=seq).order_by("seq")[: after_count + 1])
    return AroundPage(
        messages=with_reactions(older[:before_count][::-1] + newer[:after_count]),
        has_more=len(older) > before_count,
        has_newer=len(newer) > after_count,
    )


@dataclass(frozen=True)
class ThreadPage(MessagePage):
    """A thread: its root, its newest replies oldest first (has_more: older ones were left
    out) and the user's read mark of it (None: never read, or anonymous)."""

    root: Message | None = None
    read: int | None = None


def thread_page(*, room: Room, root_id: int, user: AnyUser, limit: int) -> ThreadPage:
    """The thread of a live message of `room` (a thread reply's id stands for its root),
    for whoever may read the room (the door checks); not_found for any other id."""
    root = _thread_root(room=room, message_id=root_id)
    replies = list(
        Message.objects.filter(thread_root=root, deleted_at__isnull=True)
        .select_related(*MESSAGE_RELATED)
        .order_by("-seq")[: limit + 1]
    )
    read = None
    if user.is_authenticated:
        read = ThreadRead.objects.filter(user=user, root=root).values_list("seq", flat=True).first()
    return ThreadPage(
        messages=with_reactions(replies[:limit][::-1]),
        has_more=len(replies) > limit,
        root=with_reactions([root])[0],
        read=read,
    )


def _thread_root(*, room: Room, message_id: int) -> Message:
    message = (
        Message.objects.filter(pk=message_id, room=room, deleted_at__isnull=True)
        .select_related(*MESSAGE_RELATED)
        .first()
    )
    if message is not None and message.thread_root_id is not None:
        return _thread_root(room=room, message_id=message.thread_root_id)
    if message is None:
        raise ChatError(ErrorCode.NOT_FOUND, f"No message {message_id} in this room.")
    return message


# How many thread read marks a `joined` reply carries: those of the newest threads.
THREAD_READS_LIMIT = 500


def thread_reads(*, room: Room, user: AnyUser) -> dict[int, int]:
    """The user's read mark of each thread of the room they have read: root id → seq."""
    if not user.is_authenticated:
        return {}
    marks = ThreadRead.objects.filter(user=user, root__room=room).order_by("-root_id")
    return dict(marks.values_list("root_id", "seq")[:THREAD_READS_LIMIT])


@dataclass(frozen=True)
class JoinPage(MessagePage):
    """What a `joined` reply says of the room: its messages; last_seq, the room's counter
    read before them; and the user's read mark (None: never read) and unread count."""

    last_seq: int
    read: int | None = None
    unread: int = 0
    thread_reads: dict[int, int] | None = None


JoinRequest = tuple[Room, AnyUser, int | None]  # (room, user, since) of one join


LatestPage = Callable[[Room, int], MessagePage]  # (room, its counter) → its latest page


def room_latest_page(room: Room, counter: int) -> MessagePage:
    """The room's latest page, read now (`counter`: the room's, read before it)."""
    return messages_latest(room=room, limit=settings.CHAT_PAGE_SIZE)


def room_join_pages(
    requests: Sequence[JoinRequest], *, latest: LatestPage = room_latest_page
) -> list[JoinPage | ChatError]:
    """What each join's `joined` reply says of its room: the latest page without `since`;
    with it, what the client lacks (has_more: newer); and where the user left off. For the
    joins that arrive together (chat/realtime/join_reads.py), each answered as if alone,
    in one trip to the database thread. The rooms' counters are read first, in one
    query: every message up to a counter is then in (or after) its page. Joins of one
    room share its latest page, or its replay from one `since`; each user's read marks
    are their own, read once for all their tabs joining that room. A room gone meanwhile
    is that join's NOT_FOUND alone. `latest(room, counter)` gives a room's latest page
    (join_reads.LatestPages keeps it while the counter stands still)."""
    counters = rooms_last_seq(room_ids=sorted({room.pk for room, _, _ in requests}))
    pages: dict[tuple[int, int | None], MessagePage] = {}
    marks: dict[tuple[int, int | None], tuple[tuple[int | None, int], dict[int, int]]] = {}
    answers: list[JoinPage | ChatError] = []
    for room, user, since in requests:
        if room.pk not in counters:
            answers.append(ChatError(ErrorCode.NOT_FOUND, f"No room {room.slug!r}."))
            continue
        page = pages.get((room.pk, since))
        if page is None:
            if since is None:
                page = latest(room, counters[room.pk])
            else:
                page = messages_since(room=room, seq=since, limit=settings.CHAT_REPLAY_LIMIT)
            pages[room.pk, since] = page
        if (room.pk, user.pk) not in marks:  # (anonymous readers have none: pk None)
            marks[room.pk, user.pk] = (
                room_unread(room=room, user=user),
                thread_reads(room=room, user=user),
            )
        (read, unread), threads = marks[room.pk, user.pk]
        answers.append(
            JoinPage(
                messages=page.messages,
                has_more=page.has_more,
                last_seq=counters[room.pk],
                read=read,
                unread=unread,
                thread_reads=threads,
            )
        )
    return answers


def rooms_last_seq(*, room_ids: list[int]) -> dict[int, int]:
    """Each room's counter: what a client must have shown to be up to date."""
    return dict(Room.objects.filter(pk__in=room_ids).values_list("pk", "last_seq"))


def rooms_with_counts() -> QuerySet[Room]:
    """Rooms annotated with member_count and message_count (live messages), for the admin."""

    def count_of(model_qs: QuerySet) -> Coalesce:
        counted = model_qs.order_by().values("room").annotate(n=Count("pk")).values("n")
        return Coalesce(Subquery(counted, output_field=IntegerField()), 0)

    members = Room.members.through.objects.filter(room=OuterRef("pk"))
    messages = Message.objects.filter(room=OuterRef("pk"), deleted_at__isnull=True)
    return Room.objects.annotate(member_count=count_of(members), message_count=count_of(messages))


def room_unread(*, room: Room, user: AnyUser) -> tuple[int | None, int]:
    """(the user's read mark, messages by others after it). A room the user never marked
    read has no mark and nothing unread: it is not theirs yet."""
    if not user.is_authenticated:
        return None, 0
    counted = rooms_with_unread(rooms=Room.objects.filter(pk=room.pk), user=user)
    return counted.values_list("read_mark", "unread").get()


def room_members(*, room: Room) -> QuerySet[Membership]:
    """The room's memberships with their users, for its settings page: owners first, then
    by username."""
    order = Case(When(role=Membership.Role.OWNER, then=Value(0)), default=Value(1))
    return (
        Membership.objects.filter(room=room)
        .select_related("user")
        .order_by(order, "user__username")
    )


USERNAME_SUGGESTIONS = 10


def usernames_starting(
    *,
    prefix: str,
    room: Room | None = None,
    asker: AnyUser | None = None,
    limit: int = USERNAME_SUGGESTIONS,
) -> list[str]:
    """At most `limit` active users' names that start with `prefix` (any letter case), by
    name: the invite field's suggestions, where an empty prefix suggests nobody. With
    `room`, only its members who may hear a mention (`access.notifiable_members`), but not
    the `asker` (the composer's @ suggestions), an empty prefix suggesting the first."""
    prefix = prefix.strip()
    if room is not None:
        users = access.notifiable_members(room).exclude(pk=getattr(asker, "pk", None))
    elif prefix:
        users = get_user_model().objects.filter(is_active=True)
    else:
        return []
    users = users.filter(username__istartswith=prefix)
    return list(users.order_by("username").values_list("username", flat=True)[:limit])


def user_get_active(*, username: str) -> AbstractBaseUser | None:
    """The active user with this username, or None."""
    return get_user_model().objects.filter(username=username, is_active=True).first()


def usernames_active(*, names: Collection[str]) -> set[str]:
    """Which of `names` are the usernames of active accounts: the @mentions a body links."""
    if not names:
        return set()
    users = get_user_model().objects.filter(username__in=names, is_active=True)
    return set(users.values_list("username", flat=True))


def people_search(*, query: str = "") -> QuerySet[AbstractBaseUser]:
    """The people directory: active accounts whose username contains `query` (any letter
    case), by username. Deactivated accounts are nobody (`access.signed_in`)."""
    people = get_user_model().objects.filter(is_active=True).select_related("profile")
    if query.strip():
        people = people.filter(username__icontains=query.strip())
    return people.order_by("username")


PROFILES_AT_ONCE = 50


def profiles_by_username(*, usernames: list[str]) -> dict[str, Profile]:
    """The profiles of the active users among the first PROFILES_AT_ONCE of `usernames`, by
    username (an unsaved default one for whoever never saved theirs); others are left out."""
    users = get_user_model().objects.filter(
        is_active=True, username__in=usernames[:PROFILES_AT_ONCE]
    )
    found = {}
    for user in users.select_related("profile"):
        try:
            found[user.get_username()] = user.profile
        except Profile.DoesNotExist:
            found[user.get_username()] = Profile(user=user)
    return found


def rooms_with_unread(*, rooms: QuerySet[Room], user: AnyUser) -> QuerySet[Room]:
    """`rooms`, each annotated with the user's `read_mark` (None: never read), `unread`
    (0 where they never read it, or are not a member: only one's own rooms count) and
    `notify` (what of it notifies them, `Membership.Notify`; None: not a member), in one
    query."""
    if not user.is_authenticated:
        return rooms.annotate(
            unread=Value(0, output_field=IntegerField()),
            read_mark=Value(None, output_field=IntegerField()),
            notify=Value(None, output_field=CharField()),
        )
    mine = Membership.objects.filter(room=OuterRef("pk"), user=user)
    counted = _unread_after(OuterRef("my_read__seq"), user=user)
    return rooms.annotate(my_read=_my_read(user)).annotate(
        unread=Case(
            When(Exists(mine), then=counted), default=Value(0), output_field=IntegerField()
        ),
        read_mark=F("my_read__seq"),
        notify=Subquery(mine.values("notify")[:1]),
    )


def _my_read(user: AnyUser) -> FilteredRelation:
    """The user's read mark of each room, joined (at most one: unique per user and room)."""
    return FilteredRelation("reads", condition=Q(reads__user=user))


def _unread_after(mark: OuterRef, *, user: AnyUser) -> Coalesce:
    """How many messages of the outer query's room, by others, not deleted and in its main
    log (not a reply only in a thread), come after the read mark `mark`; 0 without a mark.

    Every message is at or below the room's counter, so `seq <= last_seq` changes nothing
    but the plan: PostgreSQL guesses that a third of a room's messages follow a mark it
    cannot know in advance, and over a sidebar of 200 rooms that guess priced the query
    high enough to JIT-compile it (~30 ms); a range bounded on both sides it guesses small."""
    unread = (
        Message.objects.filter(
            room=OuterRef("pk"),
            deleted_at__isnull=True,
            seq__gt=mark,
            seq__lte=OuterRef("last_seq"),
        )
        .exclude(author=user)
        # A reply only in its thread is the thread's news (its dot), not the room's.
        .exclude(thread_root__isnull=False, also_in_room=False)
        .order_by()
        .values("room")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(unread, output_field=IntegerField()), 0)


def notifiable_member_ids(*, room: Room) -> list[int]:
    """The ids of the members `access.may_be_notified` of the room's messages, muted or not."""
    return list(access.notifiable_memberships(room).values_list("user_id", flat=True))


def users_with_profiles(*, ids: set[int]) -> dict[int, AbstractBaseUser]:
    """Users by id with their profiles loaded (None where they have none), fresh from the
    database: what a message frame shows of its author is never a socket's stale copy."""
    users = get_user_model().objects.select_related("profile").filter(pk__in=ids)
    return {user.pk: user for user in users}


def memberships_of(*, user: AnyUser) -> QuerySet[Membership]:
    """The user's memberships of rooms open to them (not archived, no ban), with their
    rooms: rooms by name, then direct messages by name (the account page's notifications)."""
    if not user.is_authenticated:
        return Membership.objects.none()
    mine = Membership.objects.filter(user=user, room__is_archived=False)
    mine = mine.exclude(room__bans__user=user.pk).select_related("room")
    return mine.order_by("room__is_direct", "room__name", "room__pk")


def profile_of(*, user: AbstractBaseUser) -> Profile:
    """The user's profile; an unsaved one with the defaults until they first save theirs."""
    try:
        return Profile.objects.get(user=user)
    except Profile.DoesNotExist:
        return Profile(user=user)


# Search -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchFound:
    """What a search found: message ids, best match first (newest first for filters alone),
    of its newest CHAT_SEARCH_MAX_MATCHES matches at most; `more`: older ones matched too
    and were left out."""

    ids: list[int]
    more: bool


def messages_search(*, user: AnyUser, query: SearchQuery) -> SearchFound:
    """Live messages of the rooms the user may read now (`access.readable_rooms`: a removed
    member or a new ban finds nothing more at once) that match `query`: its words (full-text,
    chat/fulltext.py, by the database's engine), its room (`in:`, a slug), its author
    (`from:`, a username in any letter case) and days (`after:`, `before:`, UTC, exclusive).
    Signed-in users only; an empty query finds nothing.

    Two queries whatever the number of matches: the ids of the newest CHAT_SEARCH_MAX_MATCHES
    (and one more, to tell whether there are more), then those ranked; no count of them all.
    A word in a third of 200,000 messages took 170 ms to rank and count every match."""
    if not access.signed_in(user) or query.is_empty():
        return SearchFound(ids=[], more=False)
    rooms = Room.objects.filter(access.readable_rooms(user))
    if query.room:
        rooms = rooms.filter(slug=query.room)
    messages = Message.objects.filter(room__in=rooms, deleted_at__isnull=True)
    if query.author:
        messages = messages.filter(author__username__iexact=query.author)
    if query.after:
        messages = messages.filter(created_at__gte=_day_start(query.after + timedelta(days=1)))
    if query.before:
        messages = messages.filter(created_at__lt=_day_start(query.before))
    if query.text:
        messages = fulltext.matching(messages, query.text)
    limit = settings.CHAT_SEARCH_MAX_MATCHES
    newest = messages.order_by("-created_at", "-pk").values_list("pk", flat=True)
    ids = list(newest[: limit + 1])
    more = len(ids) > limit
    ids = ids[:limit]
    if query.text:
        ids = fulltext.ranked(ids, query.text)
    return SearchFound(ids=ids, more=more)


@dataclass(frozen=True)
class SearchHit:
    """A result: the message, and its snippet as HTML (text escaped, the hits in <mark>)."""

    message: Message
    snippet: SafeString


def search_hits(*, ids: list[int], text: str) -> list[SearchHit]:
    """The messages of `ids` (a page of `messages_search`), in that order, with their room,
    author and profile, and their snippets: the hits of `text` in context, or the body's
    start for a message found by its filters alone. One deleted since is left out."""
    messages = Message.objects.filter(pk__in=ids, deleted_at__isnull=True)
    loaded = messages.select_related(*MESSAGE_RELATED).in_bulk()
    shown = [loaded[pk] for pk in ids if pk in loaded]
    marked = fulltext.snippets([message.pk for message in shown], text)
    return [
        SearchHit(
            message=message,
            snippet=fulltext.highlight(marked[message.pk])
            if message.pk in marked
            else fulltext.plain(message.body),
        )
        for message in shown
    ]


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def attachment_for_reader(*, file_id: int, user: AnyUser) -> Attachment | None:
    """The attachment `file_id` if `user` may fetch it now, else None (the caller answers
    404 either way, so nobody learns that a file exists): a file of a message of a room the
    user may read (`access.can_read`, asked of the database on every fetch, so a removed
    member or a new ban is refused at once), or an upload of their own not sent yet."""
    attachment = Attachment.objects.select_related("room").filter(pk=file_id).first()
    if attachment is None or not access.can_read(user, attachment.room):
        return None
    if attachment.message_id is None and attachment.uploader_id != user.pk:
        return None
    return attachment
