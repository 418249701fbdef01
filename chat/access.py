"""Who may see, read, post, edit, delete and be notified: the one place these rules live.

Pages, sockets, the write-time check in SQL and the mention filter all ask here. Each rule
that must also run inside a query has its forms side by side (a Python test on one room, a
`Q` on rooms or users, and for writing and being notified an SQL predicate), and
`tests/unit/test_access.py` checks that the forms agree on every role and kind of room.

The rules:
- A signed-in user is an authenticated, active account; a deactivated one counts as nobody.
- A room is *visible* to everyone if public, else to its (signed-in) members. Others are
  told it does not exist.
- A visible room is *readable* (page, join) unless the user is banned from it; the banned
  are told so (they know the room).
- A user may *write* (post, edit, delete) in a room that is readable to them, signed in,
  and not archived. Checked again under the room's lock when the write is numbered.
- One may *edit* one's own message within CHAT_EDIT_WINDOW_SECONDS; *delete* one's own
  message any time, and staff (moderators) anyone's.
- A user *may be notified* of a room's messages if they may read it and are its member
  (a public room they left, or never joined, stays quiet for them).
- A user *may manage* a room (invite, remove members, name owners, rename, change the
  topic, archive) if they may read it and are one of its owners, or staff; nobody manages a
  direct message. Whoever may not see the room is told it does not exist. An archived room
  is managed no more, but those who may manage it may *un-archive* it.
"""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from .models import Ban, Membership, Message, Room
from .protocol.errors import ChatError, ErrorCode

AnyUser = AbstractBaseUser | AnonymousUser


def signed_in(user: AnyUser) -> bool:
    """An authenticated, active account (as this user object has it)."""
    return bool(user.is_authenticated and user.is_active)


# Seeing and reading -------------------------------------------------------------------------


def visible_rooms(user: AnyUser) -> Q:
    """Rooms the user may know exist (a Q on Room): public ones, and those they are a member
    of. Banned users still see the room (they are told of the ban): see `can_read`."""
    visible = Q(is_private=False)
    if signed_in(user):
        members = Room.members.through.objects.filter(room=OuterRef("pk"), user=user.pk)
        visible |= Q(Exists(members))
    return visible


def can_see(user: AnyUser, room: Room) -> bool:
    """`visible_rooms` for one room: whether the user may know it exists."""
    if not room.is_private:
        return True
    return signed_in(user) and room.members.filter(pk=user.pk).exists()


def is_banned(user: AnyUser, room: Room) -> bool:
    return signed_in(user) and Ban.objects.filter(room=room, user=user.pk).exists()


def can_read(user: AnyUser, room: Room) -> bool:
    """Whether the user may open the room's page, and join it while it is not archived."""
    return can_see(user, room) and not is_banned(user, room)


def readable_rooms(user: AnyUser) -> Q:
    """`can_read` as a Q on Room, asked of the database now: visible to the user and no ban
    of theirs (search: a removed member or a new ban finds nothing more at once)."""
    if not signed_in(user):
        return visible_rooms(user)
    banned = Ban.objects.filter(room=OuterRef("pk"), user=user.pk)
    return visible_rooms(user) & ~Q(Exists(banned))


def may_be_notified(user: AnyUser, room: Room) -> bool:
    """Whether the user may hear of the room's messages (a mention, a direct message)."""
    if not signed_in(user) or not can_read(user, room):
        return False
    return room.members.filter(pk=user.pk).exists()


def notifiable_members(room: Room) -> QuerySet[AbstractBaseUser]:
    """The users `may_be_notified` of `room`'s messages, in one query: the same rule as a
    query on users (active; a member; not banned). Every notification (a mention, a direct
    message) is sent only to users in it."""
    users = get_user_model().objects.filter(is_active=True, chat_rooms=room)
    return users.exclude(chat_bans__room=room)


def notifiable_memberships(room: Room) -> QuerySet[Membership]:
    """The memberships of the users `may_be_notified` of `room`'s messages (the same rule as
    `notifiable_members`), with each one's `notify` setting: who hears what (services._notify)."""
    memberships = Membership.objects.filter(room=room, user__is_active=True)
    return memberships.exclude(user__chat_bans__room=room)


def notifiable_sql(*, membership: str) -> str:
    """`notifiable_memberships` as an SQL predicate on a row of the membership table named
    `membership` in the query, for the statement that numbers a group commit's messages
    (`services._counters_bumped`): it reads who hears every message of each room in the
    same trip to the database."""
    users = connection.ops.quote_name(get_user_model()._meta.db_table)
    bans = connection.ops.quote_name(Ban._meta.db_table)
    return (
        f"(EXISTS (SELECT 1 FROM {users} nu WHERE nu.id = {membership}.user_id"
        f" AND nu.is_active)"
        f" AND NOT EXISTS (SELECT 1 FROM {bans} nb WHERE nb.room_id = {membership}.room_id"
        f" AND nb.user_id = {membership}.user_id))"
    )


def notifiable_users(room: Room, usernames: set[str]) -> QuerySet[AbstractBaseUser]:
    """Of `usernames`, the users `may_be_notified` of `room`'s messages (`notifiable_members`)."""
    return notifiable_members(room).filter(username__in=usernames)


def may_notify_everyone(user: AnyUser, room: Room) -> bool:
    """Whether a message of the user's may say @room or @here (notify every member, or every
    member online): anyone may in a direct message or a room of fewer than
    CHAT_EVERYONE_MENTION_MEMBERS members; in a larger room only its owners and staff."""
    if not signed_in(user):
        return False
    if room.is_direct or is_moderator(user):
        return True
    members = Membership.objects.filter(room=room).count()
    return members < settings.CHAT_EVERYONE_MENTION_MEMBERS or is_owner(user, room)


# Running a room -----------------------------------------------------------------------------


def is_owner(user: AnyUser, room: Room) -> bool:
    """Whether the user is one of the room's owners (signed in, an owner's membership)."""
    if not signed_in(user):
        return False
    return Membership.objects.filter(room=room, user=user.pk, role=Membership.Role.OWNER).exists()


def _running_refusal(user: AnyUser, room: Room) -> ChatError | None:
    """Why the user may not run the room, whatever its state (None: they may): anonymous →
    auth_required; a room they may not see → not_found; a direct message, a ban, or neither
    owner nor staff → forbidden."""
    if not signed_in(user):
        return ChatError(ErrorCode.AUTH_REQUIRED, "Log in to manage a room.")
    if not can_see(user, room):
        return ChatError(ErrorCode.NOT_FOUND, f"No room {room.slug!r}.")
    if room.is_direct:
        return ChatError(ErrorCode.FORBIDDEN, "A direct message has no owners.")
    if is_banned(user, room):
        return ChatError(ErrorCode.FORBIDDEN, "You have been banned from this room.")
    if not (is_moderator(user) or is_owner(user, room)):
        return ChatError(ErrorCode.FORBIDDEN, "Only the room's owners may do that.")
    return None


def manage_refusal(user: AnyUser, room: Room) -> ChatError | None:
    """Why the user may not manage the room (None: they may), as the error to raise:
    anonymous → auth_required; a room they may not see → not_found; a direct message, a
    ban, or neither owner nor staff → forbidden; an archived room → room_archived."""
    refusal = _running_refusal(user, room)
    if refusal is None and room.is_archived:
        return ChatError(ErrorCode.ROOM_ARCHIVED, "This room is archived.")
    return refusal


def unarchive_refusal(user: AnyUser, room: Room) -> ChatError | None:
    """Why the user may not un-archive the room (None: they may): whoever may manage it
    while open (`manage_refusal`'s refusals, in its order), and only while it is archived
    (bad_request otherwise)."""
    refusal = _running_refusal(user, room)
    if refusal is None and not room.is_archived:
        return ChatError(ErrorCode.BAD_REQUEST, "This room is not archived.")
    return refusal


def can_manage(user: AnyUser, room: Room) -> bool:
    """`manage_refusal` as a yes or no."""
    return manage_refusal(user, room) is None


def can_manage_open(user: AnyUser, room: Room, membership: Membership | None) -> bool:
    """`can_manage` for a room already found open to the user (visible, not banned:
    `selectors.room_get_open_to`), given their membership of it: no query more."""
    return not room.is_archived and may_run_open(user, room, membership)


def may_run_open(user: AnyUser, room: Room, membership: Membership | None) -> bool:
    """Whether the user runs the room (owner or staff), archived or not, for a room already
    found open to them, given their membership: the room page's settings link, which leads
    an archived room's owners to *Un-archive*."""
    if not signed_in(user) or room.is_direct:
        return False
    return is_moderator(user) or (
        membership is not None and membership.role == Membership.Role.OWNER
    )


# Writing ------------------------------------------------------------------------------------


def writable_rooms(user: AnyUser) -> Q:
    """Rooms the user may post, edit and delete in (a Q on Room), asking the database about
    the account, as `may_write_sql` does: readable to them, the account active now, and
    the room not archived. `may_write_sql` is this rule in SQL; keep the two together."""
    if not user.is_authenticated:
        return Q(pk__in=[])
    active = get_user_model().objects.filter(pk=user.pk, is_active=True)
    members = Room.members.through.objects.filter(room=OuterRef("pk"), user=user.pk)
    banned = Ban.objects.filter(room=OuterRef("pk"), user=user.pk)
    return (
        Q(Exists(active))
        & ~Q(Exists(banned))
        & (Q(is_private=False) | Q(Exists(members)))
        & Q(is_archived=False)
    )


def can_post(user: AnyUser, room: Room) -> bool:
    """`writable_rooms` for one room."""
    return Room.objects.filter(writable_rooms(user), pk=room.pk).exists()


def may_write_sql(*, actor_id: int | None = None, actor_column: str = "") -> tuple[str, list[int]]:
    """`writable_rooms` as an SQL predicate on a row of the room table (named as in
    `Room._meta.db_table`), for the write-time check inside `UPDATE … RETURNING`
    (`services._next_seq`), where the ORM cannot go. Returns (fragment, params). The actor
    is `actor_id`, or the value of the SQL column `actor_column` (one per row of a query
    checking several: `services._take_seqs_at_once`)."""
    qn = connection.ops.quote_name
    rooms = qn(Room._meta.db_table)
    users = qn(get_user_model()._meta.db_table)
    members = qn(Room.members.through._meta.db_table)
    bans = qn(Ban._meta.db_table)
    actor = actor_column or "%s"
    fragment = (
        f"(EXISTS (SELECT 1 FROM {users} u WHERE u.id = {actor} AND u.is_active)"
        f" AND NOT EXISTS (SELECT 1 FROM {bans} b WHERE b.room_id = {rooms}.id"
        f" AND b.user_id = {actor})"
        f" AND (NOT {rooms}.is_private OR EXISTS (SELECT 1 FROM {members} m"
        f" WHERE m.room_id = {rooms}.id AND m.user_id = {actor}))"
        f" AND NOT {rooms}.is_archived)"
    )
    return fragment, [] if actor_column else [actor_id, actor_id, actor_id]


def edit_refusal(user: AnyUser, message: Message) -> str | None:
    """Why the user may not edit the message (None: they may): only its author may, within
    CHAT_EDIT_WINDOW_SECONDS of posting. Where they may write is `writable_rooms`."""
    if not user.is_authenticated or message.author_id != user.pk:
        return "You can only edit your own messages."
    window = settings.CHAT_EDIT_WINDOW_SECONDS
    if timezone.now() - message.created_at > timedelta(seconds=window):
        return f"Messages can be edited for {window // 60} minutes after posting."
    return None


def can_edit(user: AnyUser, message: Message) -> bool:
    return edit_refusal(user, message) is None


def is_moderator(user: AnyUser) -> bool:
    """Active staff, as this user object has it (a page's user was loaded for the request)."""
    return signed_in(user) and user.is_staff


def can_delete(user: AnyUser, message: Message) -> bool:
    """Its author may delete a message; so may a moderator, as the database says now (a
    socket keeps the user it saw at its handshake). Where they may write is
    `writable_rooms`."""
    if not user.is_authenticated:
        return False
    if message.author_id == user.pk:
        return True
    return get_user_model().objects.filter(pk=user.pk, is_staff=True, is_active=True).exists()
