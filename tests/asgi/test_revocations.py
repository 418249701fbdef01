"""Rights taken away while a socket is open, from one table (docs/security.md, "Rights taken
away").

A socket keeps the user it saw at its handshake and the rooms it joined. Every way a right
can be lost is one row: the change is made the way the site makes it (a logout or password
change over HTTP, an admin-style save, a service), and then the socket must stop receiving
the room's broadcasts and be refused what it may no longer do. A socket that was closed is
replaced by a new one with the same cookie, as the client's reload would do.
"""

from dataclasses import dataclass, field
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from chat import services
from chat.models import Message, Room
from chat.protocol import events
from chat.realtime.publisher import publish
from tests.support.factories import PASSWORD
from tests.support.outcomes import ARCHIVED, AUTH, FORBIDDEN, NOT_FOUND, NOT_JOINED, OK
from tests.support.sockets import RECEIVE_TIMEOUT, Socket

pytestmark = pytest.mark.django_db(transaction=True)

ACTIONS = ("join", "send", "history", "delete_other")


def refused(join: str) -> dict[str, str]:
    """Out of the room on an open, signed-in socket: the join is refused, the rest is not_joined."""
    return {"join": join} | dict.fromkeys(("send", "history", "delete_other"), NOT_JOINED)


# A closed socket's successor (same cookie, now anonymous) in a private room.
SIGNED_OUT = {"join": NOT_FOUND, "send": AUTH, "history": NOT_JOINED, "delete_other": AUTH}


@dataclass(frozen=True)
class Revocation:
    role: str  # the socket's user: member, non_member, staff or anonymous
    room: str  # the room it is in when the right goes: public or private
    hears: str | None  # the frame that tells it (session_ended then closes the socket)
    receives: bool  # whether the room's next broadcast still reaches it
    acts: dict[str, str] = field(default_factory=dict)  # action → "ok" or the error code


REVOCATIONS = {
    "logout": Revocation("member", "private", "session_ended", False, SIGNED_OUT),
    "deactivated": Revocation("member", "private", "session_ended", False, SIGNED_OUT),
    "password_changed": Revocation("member", "private", "session_ended", False, SIGNED_OUT),
    "deleted": Revocation("member", "private", "session_ended", False, SIGNED_OUT),
    # Staff may read what members read: the socket stays, only the moderator's right goes.
    "staff_removed": Revocation(
        "staff", "public", None, True, dict.fromkeys(ACTIONS, OK) | {"delete_other": FORBIDDEN}
    ),
    "made_private": Revocation("non_member", "public", "removed", False, refused(NOT_FOUND)),
    "made_private_anonymous": Revocation(
        "anonymous",
        "public",
        "removed",
        False,
        {"join": NOT_FOUND, "send": AUTH, "history": NOT_JOINED, "delete_other": AUTH},
    ),
    "banned": Revocation("member", "public", "removed", False, refused(FORBIDDEN)),
    "removed_from_private": Revocation("member", "private", "removed", False, refused(NOT_FOUND)),
    "archived": Revocation("member", "public", "room_closed", False, refused(ARCHIVED)),
}
# Not a revocation: members of a room made private keep it (the recheck removes no one else).
KEPT = {
    "made_private_member_stays": Revocation(
        "member", "public", None, True, dict.fromkeys(ACTIONS, OK) | {"delete_other": FORBIDDEN}
    ),
}


def arrange(row: Revocation, make_user) -> dict[str, Any]:
    """The room, its author's message, and the role's user with a signed-in Client."""
    author = make_user("author")
    room = Room.objects.create(slug="room", name="Room", is_private=row.room == "private")
    room.members.add(author)
    Room.objects.filter(pk=room.pk).update(last_seq=1)
    created = Message.objects.create(room=room, author=author, body="by author", seq=1, rev=1)
    # As the selectors load it, so the test can build its frame on the event loop.
    other = Message.objects.select_related("room", "author__profile").get(pk=created.pk)
    user, client = None, None
    if row.role != "anonymous":
        user = make_user(row.role, is_staff=row.role == "staff")
        if row.role == "member":
            room.members.add(user)
        client = Client()
        client.force_login(user)
    return {"room": room, "user": user, "client": client, "other": other}


def revoke(change: str, world: dict[str, Any]) -> None:
    """Take the right away the way the site does it."""
    room, user, client = world["room"], world["user"], world["client"]
    if change == "logout":
        client.post("/accounts/logout/")
    elif change == "deactivated":
        user.is_active = False
        user.save()  # as the admin's user form does
    elif change == "password_changed":  # in another session of the user's, over HTTP
        elsewhere = Client()
        elsewhere.force_login(user)
        new = "another-horse-battery-7"
        response = elsewhere.post(
            "/accounts/password_change/",
            {"old_password": PASSWORD, "new_password1": new, "new_password2": new},
        )
        assert response.status_code == 302, response
    elif change == "deleted":
        user.delete()
    elif change == "staff_removed":
        user.is_staff = False
        user.save()
    elif change.startswith("made_private"):
        room = Room.objects.get(pk=room.pk)  # loaded and saved, as the admin's form does
        room.is_private = True
        room.save()
    elif change == "banned":
        services.user_ban(room=room, user=user)
    elif change == "removed_from_private":
        room.members.remove(user)
    elif change == "archived":
        services.room_archive(room=room)
    else:
        raise AssertionError(change)


async def attempt(socket: Socket, frame: dict[str, Any]) -> str:
    """ "ok", or the error code the request got."""
    reply = await socket.request(frame)
    return reply["code"] if reply["type"] == "error" else OK


async def still_receives(socket: Socket, room: Room, other: Message) -> bool:
    """Broadcast to the room, then to the whole site: whether the room's frame came first.
    One process channel carries both, in order, so the site frame marks the end."""
    publish(*events.room_broadcast(room.pk, events.message_frame(other)))
    frame = events.announcement_frame(
        announcement_id=1, body="marker", created="2026-01-01T00:00:00+00:00"
    )
    publish(events.SITE_GROUP, events.broadcast_event(group=events.SITE_GROUP, frame=frame))
    received = False
    while (frame := await socket.recv())["type"] != "announcement":
        received = received or (frame["type"] == "message" and frame["room"] == room.slug)
    return received


@pytest.mark.parametrize("change", [*REVOCATIONS, *KEPT])
async def test_a_right_taken_away_stops_receiving_and_acting_on_open_sockets(
    connect, make_user, change
):
    row = REVOCATIONS.get(change) or KEPT[change]
    world = await database_sync_to_async(arrange)(row, make_user)
    room, other = world["room"], world["other"]
    cookie = world["client"].cookies["sessionid"].value if world["client"] else None
    socket = await connect(cookie=cookie)
    await socket.join(room.slug)

    await database_sync_to_async(revoke)(change, world)

    heard = None
    if row.hears == "session_ended":
        heard = await socket.recv_until("session_ended")
        closed = await socket.communicator.receive_output(RECEIVE_TIMEOUT)
        assert closed == {"type": "websocket.close", "code": 4001}
        await socket.close()  # the server's websocket.disconnect, as daphne sends it
        # Nothing reaches a closed socket; its successor is who the cookie says now.
        publish(*events.room_broadcast(room.pk, events.message_frame(other)))
        receives = not await socket.communicator.receive_nothing(timeout=0.2)
        socket = await connect(cookie=cookie)
    else:
        if row.hears is not None:
            heard = await socket.recv_until(row.hears)
            assert heard["room"] == room.slug
        receives = await still_receives(socket, room, other)
    frames = {
        "join": {"type": "join", "room": room.slug},
        "send": {"type": "send", "room": room.slug, "body": "still?", "client_id": "r1"},
        "history": {"type": "history", "room": room.slug},
        "delete_other": {"type": "delete", "room": room.slug, "id": other.pk},
    }
    acts = {action: await attempt(socket, frames[action]) for action in ACTIONS}

    assert (heard and heard["type"], receives, acts) == (row.hears, row.receives, row.acts)
