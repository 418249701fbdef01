"""Who may do what: every role, every kind of room and every action, against the real ASGI
application and the real pages, from one table (docs/security.md).

Roles: anonymous; member (in the room's member list); owner (a member who runs the room:
chat.services.membership_* and room_update need one, and change nothing here); invited (made
a member by an owner: chat.services.membership_invite); non_member (signed in, not listed);
left (a member who left: chat.services.membership_leave);
banned (a member, banned from the room); staff (a moderator, not a member). Rooms: public,
private, archived (public, read-only), group_dm (a direct message of three: the author, a
third person and the role's user if a member or left; a member of it who leaves is `left`,
chat.services.membership_leave). Each role owns a message posted earlier in the room
(anonymous can't), so "own" and "other's" edits and deletions are both tried; a reaction is
put on the other's message (anyone who may post may react).

"ok" means the server did it; anything else is the error code the socket answered with.
Private rooms answer 404 / not_found to whoever may not see them, exactly as if they did
not exist; a ban is told as 403 / forbidden to the banned user, who knows the room.
"""

import itertools
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.db import connection
from django.test import Client

from chat import services
from chat.models import Ban, Membership, Message, Reaction, ReadState, Room, ThreadRead
from tests.support.outcomes import ARCHIVED, AUTH, FORBIDDEN, NOT_FOUND, NOT_JOINED, OK
from tests.support.sockets import Socket

pytestmark = pytest.mark.django_db(transaction=True)

ACTIONS = (
    "join",
    "send",
    "typing",
    "history",
    "read",
    "react",
    "reply",
    "thread",
    "thread_send",
    "thread_read",
    "edit_own",
    "delete_own",
    "edit_other",
    "delete_other",
)
NONE = None  # anonymous owns no message

ALLOWED = dict.fromkeys(ACTIONS, OK) | {"edit_other": FORBIDDEN, "delete_other": FORBIDDEN}
READER = {  # anonymous in a room it may read
    "join": OK,
    "send": AUTH,
    "typing": AUTH,
    "history": OK,
    "read": AUTH,
    "react": AUTH,
    "reply": AUTH,
    "thread": OK,
    "thread_send": AUTH,
    "thread_read": AUTH,
    "edit_own": NONE,
    "delete_own": NONE,
    "edit_other": AUTH,
    "delete_other": AUTH,
}


def shut_out(join: str, *, anonymous: bool = False) -> dict[str, Any]:
    """A role whose join is refused with `join`: everything after it finds no joined room
    (anonymous is asked to log in first for what needs an account)."""
    after = {a: NOT_JOINED for a in ACTIONS}
    if anonymous:
        after |= {"send": AUTH, "typing": AUTH, "read": AUTH, "react": AUTH, "edit_other": AUTH}
        after |= {"reply": AUTH, "thread_send": AUTH, "thread_read": AUTH}
        after |= {"delete_other": AUTH, "edit_own": NONE, "delete_own": NONE}
    return after | {"join": join}


# (role, room) → (page status, {action: outcome})
EXPECTED: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {
    ("anonymous", "public"): (200, READER),
    ("member", "public"): (200, ALLOWED),
    ("non_member", "public"): (200, ALLOWED),
    ("banned", "public"): (403, shut_out(FORBIDDEN)),
    # A left member is a non-member again: a public room stays open to read and post in
    # (membership is "your rooms", not a right), a private one is gone.
    ("left", "public"): (200, ALLOWED),
    ("staff", "public"): (200, ALLOWED | {"delete_other": OK}),
    # Owning a room is running it (settings: tests/unit/test_room_owners.py), not moderating
    # it: an owner deletes only their own messages, like any member.
    ("owner", "public"): (200, ALLOWED),
    ("owner", "private"): (200, ALLOWED),
    ("owner", "archived"): (200, shut_out(ARCHIVED)),
    ("invited", "public"): (200, ALLOWED),
    ("invited", "private"): (200, ALLOWED),
    ("anonymous", "private"): (404, shut_out(NOT_FOUND, anonymous=True)),
    ("member", "private"): (200, ALLOWED),
    ("non_member", "private"): (404, shut_out(NOT_FOUND)),
    ("left", "private"): (404, shut_out(NOT_FOUND)),
    ("banned", "private"): (403, shut_out(FORBIDDEN)),
    ("staff", "private"): (404, shut_out(NOT_FOUND)),  # staff read private rooms in the admin
    ("anonymous", "archived"): (200, shut_out(ARCHIVED, anonymous=True)),
    ("member", "archived"): (200, shut_out(ARCHIVED)),
    ("non_member", "archived"): (200, shut_out(ARCHIVED)),
    ("left", "archived"): (200, shut_out(ARCHIVED)),
    ("banned", "archived"): (403, shut_out(FORBIDDEN)),
    ("staff", "archived"): (200, shut_out(ARCHIVED)),
    # A group DM is a private room of its people: who left it is nobody to it, as is every
    # non-member (staff read it in the admin); it goes on for the two who stay.
    ("member", "group_dm"): (200, ALLOWED),
    ("left", "group_dm"): (404, shut_out(NOT_FOUND)),
    ("non_member", "group_dm"): (404, shut_out(NOT_FOUND)),
    ("anonymous", "group_dm"): (404, shut_out(NOT_FOUND, anonymous=True)),
    ("staff", "group_dm"): (404, shut_out(NOT_FOUND)),
}


def arrange(role: str, kind: str, make_user) -> dict[str, Any]:
    """The room, the role's user (None: anonymous), and the role's and someone else's message."""
    author = make_user("author")
    user = None
    if role != "anonymous":
        user = make_user(role, is_staff=role == "staff")
    if kind == "group_dm":
        others = [make_user("third"), user if role in {"member", "left"} else make_user("fourth")]
        room = services.direct_group_get_or_create(user=author, others=others)
    else:
        room = Room.objects.create(
            slug=f"{kind}-room",
            name=f"{kind} room",
            is_private=kind == "private",
            is_archived=kind == "archived",
        )
    room.members.add(author)
    if role in {"member", "left", "banned"}:
        room.members.add(user)
    if role == "owner":
        Membership.objects.create(room=room, user=user, role=Membership.Role.OWNER)
    if role == "invited":
        Membership.objects.filter(room=room, user=author).update(role=Membership.Role.OWNER)
        services.membership_invite(room=room, by=author, username=user.get_username())
    if role == "left":
        services.membership_leave(room=room, user=user)
    seqs = itertools.count(1)
    other = post(room, author, next(seqs))
    own = post(room, user, next(seqs)) if user else None  # posted before any ban
    if role == "banned":
        Ban.objects.create(room=room, user=user)
    return {"room": room, "user": user, "own": own, "other": other}


def post(room: Room, author, seq: int) -> Message:
    Room.objects.filter(pk=room.pk).update(last_seq=seq)
    return Message.objects.create(room=room, author=author, body=f"by {author}", seq=seq, rev=seq)


def snapshot(room: Room) -> tuple:
    """Everything an action may change: messages (bodies, deletions, reactions), read marks,
    counter."""
    return (
        list(Message.objects.filter(room=room).order_by("pk").values_list("body", "deleted_at")),
        list(Reaction.objects.filter(message__room=room).values_list("user_id", "emoji")),
        list(ReadState.objects.filter(room=room).values_list("user_id", "seq")),
        list(ThreadRead.objects.filter(root__room=room).values_list("user_id", "seq")),
        list(Message.objects.filter(room=room).values_list("thread_count", "reply_to_id")),
        Room.objects.get(pk=room.pk).last_seq,
    )


def page_status(user, slug: str) -> int:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client.get(f"/chat/{slug}/").status_code


async def attempt(socket: Socket, frame: dict[str, Any]) -> str:
    """ "ok", or the error code the request got. A ping after it marks the end of its
    replies (typing has no reply when it succeeds)."""
    await socket.send({**frame, "ref": "act"})
    await socket.send({"type": "ping", "ref": "end"})
    outcome = OK
    while (reply := await socket.recv())["type"] != "pong":
        if reply.get("ref") == "act" and reply["type"] == "error":
            outcome = reply["code"]
    return outcome


def frames_for(slug: str, world: dict[str, Any]) -> dict[str, dict[str, Any] | None]:
    own, other = world["own"], world["other"]
    return {
        "join": {"type": "join", "room": slug},
        "send": {"type": "send", "room": slug, "body": "hello", "client_id": "perm-1"},
        "typing": {"type": "typing", "room": slug},
        "history": {"type": "history", "room": slug},
        "read": {"type": "read", "room": slug, "seq": 2},
        "react": {"type": "react", "room": slug, "id": other.pk, "emoji": "👍", "on": True},
        "reply": {"type": "send", "room": slug, "body": "re", "client_id": "p-2"}
        | {"reply_to": other.pk},
        "thread": {"type": "thread", "room": slug, "id": other.pk},
        "thread_send": {"type": "send", "room": slug, "body": "in", "client_id": "p-3"}
        | {"thread": other.pk, "also_in_room": True},
        "thread_read": {"type": "thread_read", "room": slug, "id": other.pk, "seq": 2},
        "edit_own": own and {"type": "edit", "room": slug, "id": own.pk, "body": "edited"},
        "delete_own": own and {"type": "delete", "room": slug, "id": own.pk},
        "edit_other": {"type": "edit", "room": slug, "id": other.pk, "body": "edited"},
        "delete_other": {"type": "delete", "room": slug, "id": other.pk},
    }


@pytest.mark.parametrize("transport", ["websocket", "http", "poll"])
@pytest.mark.parametrize(("role", "kind"), list(EXPECTED), ids=[f"{r}-{k}" for r, k in EXPECTED])
async def test_who_may_do_what(connect, make_user, role, kind):
    world = await database_sync_to_async(arrange)(role, kind, make_user)
    slug = world["room"].slug
    expected_status, expected = EXPECTED[(role, kind)]
    socket = await connect(world["user"])

    outcomes: dict[str, Any] = {}
    refusals_changed_nothing = True
    for action, frame in frames_for(slug, world).items():
        if frame is None:
            outcomes[action] = NONE
            continue
        before = await database_sync_to_async(snapshot)(world["room"])
        outcomes[action] = await attempt(socket, frame)
        after = await database_sync_to_async(snapshot)(world["room"])
        if outcomes[action] != OK and before != after:
            refusals_changed_nothing = False
    status = await database_sync_to_async(page_status)(world["user"], slug)

    assert (status, outcomes) == (expected_status, expected)
    assert refusals_changed_nothing


# What was allowed at join time and stopped being so is refused when written, even on a
# socket that never heard of the change (its live event lost): the write itself re-checks,
# under the room's row lock. (role, change) → outcome of send, react, edit_own, delete_own.
REVOKED = {
    "banned": FORBIDDEN,
    "archived": ARCHIVED,
    "removed_from_private": FORBIDDEN,
    "deactivated": FORBIDDEN,
}


def revoke(change: str, room: Room, user) -> None:
    """Make the change straight in the database: no event reaches the socket."""
    if change == "banned":
        Ban.objects.create(room=room, user=user)
    elif change == "archived":
        Room.objects.filter(pk=room.pk).update(is_archived=True)
    elif change == "deactivated":  # update(), not save(): no signal closes the socket
        type(user).objects.filter(pk=user.pk).update(is_active=False)
    else:  # the membership row, in SQL: any ORM delete of it sends the live event
        table = connection.ops.quote_name(Membership._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {table} WHERE room_id = %s AND user_id = %s", [room.pk, user.pk]
            )


NO_SESSION = {("deactivated", "http"), ("deactivated", "poll")}


@pytest.mark.parametrize(
    ("change", "transport"),
    # A deactivated user's session no longer signs anyone in, so over HTTP their POSTs are
    # refused before any frame is read (tests/asgi/test_fallback.py); the socket keeps its user.
    [(c, t) for c in REVOKED for t in ("websocket", "http", "poll") if (c, t) not in NO_SESSION],
)
async def test_writes_recheck_what_the_socket_was_allowed_when_it_joined(
    connect, make_user, change
):
    kind = "private" if change == "removed_from_private" else "public"
    world = await database_sync_to_async(arrange)("member", kind, make_user)
    slug = world["room"].slug
    socket = await connect(world["user"])
    assert await attempt(socket, {"type": "join", "room": slug}) == OK
    await database_sync_to_async(revoke)(change, world["room"], world["user"])
    before = await database_sync_to_async(snapshot)(world["room"])

    frames = frames_for(slug, world)
    actions = ("send", "reply", "thread_send", "react", "edit_own", "delete_own")
    outcomes = {a: await attempt(socket, frames[a]) for a in actions}

    assert outcomes == dict.fromkeys(outcomes, REVOKED[change])
    assert await database_sync_to_async(snapshot)(world["room"]) == before


# Who may un-archive a room, from its settings page (the only door but the admin), and who
# hears of it: (role, kind) → (the form's status, whether the room is open again). Only its
# owners and staff who may see it; the others are refused as the settings page refuses them
# (404 for a private room they may not see, 403 otherwise; anonymous to the login page), and
# nothing changes, nor does any open tab hear of it.
UNARCHIVE = {
    ("owner", "public"): (302, True),
    ("owner", "private"): (302, True),
    ("staff", "public"): (302, True),
    ("staff", "private"): (404, False),
    ("member", "public"): (403, False),
    ("member", "private"): (403, False),
    ("non_member", "public"): (403, False),
    ("non_member", "private"): (404, False),
    ("banned", "public"): (403, False),
    ("banned", "private"): (403, False),
    ("anonymous", "public"): (302, False),  # to the login page
    ("anonymous", "private"): (302, False),
}


def archived_room(role: str, kind: str, make_user) -> tuple[Room, Any, Any]:
    """An archived room of `kind` owned by `owner`, with `watcher` a member; and the role's
    user (None: anonymous)."""
    owner, watcher = make_user("owner"), make_user("watcher")
    room = Room.objects.create(slug=f"{kind}-room", name=kind, is_private=kind == "private")
    Membership.objects.create(room=room, user=owner, role=Membership.Role.OWNER)
    room.members.add(watcher)
    user = {"owner": owner, "anonymous": None}.get(role)
    if user is None and role != "anonymous":
        user = make_user(role, is_staff=role == "staff")
        if role in {"member", "banned"}:
            room.members.add(user)
        if role == "banned":
            Ban.objects.create(room=room, user=user)
    services.room_archive(room=room)
    return room, user, watcher


def post_unarchive(user, slug: str) -> int:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client.post(f"/chat/{slug}/settings/unarchive/").status_code


@pytest.mark.parametrize(("role", "kind"), list(UNARCHIVE), ids=[f"{r}-{k}" for r, k in UNARCHIVE])
async def test_who_may_unarchive_a_room(connect, make_user, role, kind):
    room, user, watcher = await database_sync_to_async(archived_room)(role, kind, make_user)
    tab = await connect(watcher)

    status = await database_sync_to_async(post_unarchive)(user, room.slug)

    fresh = await database_sync_to_async(Room.objects.get)(pk=room.pk)
    assert (status, not fresh.is_archived) == UNARCHIVE[(role, kind)]
    if not fresh.is_archived:
        assert (await tab.recv_until("room_opened"))["room"] == room.slug
    await tab.request({"type": "ping"})
    assert all(frame["type"] != "room_opened" for frame in tab.unread)
