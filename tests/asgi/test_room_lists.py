"""Lists of rooms, live: a room made or un-archived reaches whoever may see it (`room_opened`:
every socket for a public room, only its members' for a private one), so open lobbies list
it and pages that showed it closed open it again; and a change of owners reaches the
affected user's tabs (`membership` with `owner`), so their sidebars mark the room."""

import json

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from chat import services
from tests.support.factories import post_messages
from tests.support.sockets import Socket, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


async def heard(socket: Socket, kind: str) -> list[dict]:
    """The frames of type `kind` the socket got before the answer to a ping."""
    await socket.request({"type": "ping"})
    frames = [frame for frame in socket.unread if frame["type"] == kind]
    socket.unread.clear()
    return frames


async def test_a_new_public_room_reaches_every_socket_signed_in_or_not(connect, alice, bob):
    cookie = await database_sync_to_async(session_cookie)(alice)
    others = [await connect(bob), await connect(None)]
    creators = [await connect(alice, cookie=cookie), await connect(alice, cookie=cookie)]

    room = await database_sync_to_async(services.room_create)(
        name="Agora", created_by=alice, topic="Talk of the town"
    )

    opened = {
        "type": "room_opened",
        "room": room.slug,
        "name": "Agora",
        "topic": "Talk of the town",
        "private": False,
        "direct": False,
        "members": 1,
        "last_seq": 0,
    }
    for socket in creators:  # the room in their rooms, as its owner; then, as everyone, opened
        assert await socket.recv_until("membership") == {
            "type": "membership",
            "room": room.slug,
            "name": "Agora",
            "member": True,
            "starred": False,
            "notify": "mentions",
            "owner": True,
            "people": None,
            "private": False,
            "direct": False,
            "last_seq": 0,
            "read": 0,
            "unread": 0,
        }
        assert await socket.recv_until("room_opened") == opened
    for socket in others:
        assert await socket.recv_until("room_opened") == opened
        assert await heard(socket, "membership") == []


async def test_a_new_private_room_reaches_its_creator_alone(connect, alice, bob):
    creator = await connect(alice)
    outsiders = [await connect(bob), await connect(None)]

    room = await database_sync_to_async(services.room_create)(
        name="Plans", created_by=alice, is_private=True
    )

    opened = await creator.recv_until("room_opened")
    assert (opened["room"], opened["private"], opened["members"]) == (room.slug, True, 1)
    for socket in outsiders:  # nothing at all names it
        await socket.request({"type": "ping"})
        assert all(room.slug not in json.dumps(frame) for frame in socket.unread)


async def test_a_refused_room_sends_nothing(connect, alice, bob, general):
    socket = await connect(bob)

    with pytest.raises(services.ChatError):
        await database_sync_to_async(services.room_create)(name="general", created_by=alice)

    assert await heard(socket, "room_opened") == []


async def test_un_archiving_a_public_room_reopens_it_for_everyone(connect, alice, bob):
    room = await database_sync_to_async(services.room_create)(name="Agora", created_by=alice)
    await database_sync_to_async(post_messages)(room, alice, 2)
    reader, anonymous = await connect(bob), await connect(None)
    await reader.join(room.slug)
    await database_sync_to_async(services.room_archive_as)(room=room, by=alice)
    assert (await reader.recv_until("room_closed"))["room"] == room.slug

    reopened = await database_sync_to_async(services.room_unarchive_as)(room=room, by=alice)

    assert reopened is True
    for socket in (reader, anonymous):
        frame = await socket.recv_until("room_opened")
        assert (frame["room"], frame["members"], frame["last_seq"]) == (room.slug, 1, 2)
    # Nobody was put back in the room: the page joins again, as any join.
    assert (await reader.join(room.slug, since=1))["last_seq"] == 2
    sent = {"type": "send", "room": room.slug, "body": "back again", "client_id": "c1"}
    assert (await reader.request(sent))["type"] == "ack"


async def test_un_archiving_a_private_room_reaches_its_members_alone(
    connect, alice, bob, make_user
):
    room = await database_sync_to_async(services.room_create)(
        name="Plans", created_by=alice, is_private=True
    )
    await database_sync_to_async(services.membership_invite)(room=room, by=alice, username="bob")
    await database_sync_to_async(services.room_archive)(room=room)
    carol = await database_sync_to_async(make_user)("carol")
    member, outsider, anonymous = await connect(bob), await connect(carol), await connect(None)

    await database_sync_to_async(services.room_unarchive)(room=room)

    frame = await member.recv_until("room_opened")
    assert (frame["room"], frame["private"], frame["members"]) == (room.slug, True, 2)
    assert (await member.join(room.slug))["room"] == room.slug
    for socket in (outsider, anonymous):
        assert await heard(socket, "room_opened") == []


async def test_un_archiving_a_room_not_archived_sends_nothing(connect, alice, bob):
    room = await database_sync_to_async(services.room_create)(name="Agora", created_by=alice)
    socket = await connect(bob)

    assert await database_sync_to_async(services.room_unarchive)(room=room) is False

    assert await heard(socket, "room_opened") == []


async def test_the_un_archive_form_reopens_the_room_on_open_tabs(connect, alice, bob):
    room = await database_sync_to_async(services.room_create)(
        name="Plans", created_by=alice, is_private=True
    )
    await database_sync_to_async(services.room_archive)(room=room)
    tab = await connect(alice)
    client = Client()
    await database_sync_to_async(client.force_login)(alice)

    response = await database_sync_to_async(client.post)(f"/chat/{room.slug}/settings/unarchive/")

    assert (response.status_code, response["Location"]) == (302, f"/chat/{room.slug}/")
    assert (await tab.recv_until("room_opened"))["room"] == room.slug


async def test_a_new_owner_and_one_who_steps_down_see_it_on_every_tab(connect, alice, bob):
    room = await database_sync_to_async(services.room_create)(
        name="Plans", created_by=alice, is_private=True
    )
    await database_sync_to_async(services.membership_invite)(room=room, by=alice, username="bob")
    alice_cookie = await database_sync_to_async(session_cookie)(alice)
    bob_cookie = await database_sync_to_async(session_cookie)(bob)
    alice_tabs = [await connect(alice, cookie=alice_cookie) for _ in range(2)]
    bob_tabs = [await connect(bob, cookie=bob_cookie) for _ in range(2)]

    await database_sync_to_async(services.membership_make_owner)(
        room=room, by=alice, username="bob"
    )
    for tab in bob_tabs:
        frame = await tab.recv_until("membership")
        assert (frame["room"], frame["member"], frame["owner"]) == (room.slug, True, True)
    await database_sync_to_async(services.membership_step_down)(room=room, user=alice)
    for tab in alice_tabs:
        frame = await tab.recv_until("membership")
        assert (frame["room"], frame["member"], frame["owner"]) == (room.slug, True, False)
        assert await heard(tab, "membership") == []  # nothing of bob's promotion
    # Making an owner of an owner changes nothing, and says nothing.
    await database_sync_to_async(services.membership_make_owner)(room=room, by=bob, username="bob")
    for tab in bob_tabs:
        assert await heard(tab, "membership") == []


async def test_an_owner_who_leaves_loses_the_room_and_its_mark_on_every_tab(
    connect, alice, bob, general
):
    room = await database_sync_to_async(services.room_create)(name="Agora", created_by=alice)
    await database_sync_to_async(services.membership_join)(room=room, user=bob)
    await database_sync_to_async(services.membership_make_owner)(
        room=room, by=alice, username="bob"
    )
    cookie = await database_sync_to_async(session_cookie)(alice)
    tabs = [await connect(alice, cookie=cookie) for _ in range(2)]

    await database_sync_to_async(services.membership_leave)(room=room, user=alice)

    for tab in tabs:
        frame = await tab.recv_until("membership")
        assert (frame["room"], frame["member"], frame["owner"]) == (room.slug, False, False)
