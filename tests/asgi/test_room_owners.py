"""Rooms run by their owners, live: an invitation puts the room in the invited user's
sidebar on every tab, a removal takes it out of every tab at once, a rename or a new topic
reaches everyone in the room, and archiving closes it; through the same services as the
settings page's forms."""

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from chat import services
from tests.support.factories import post_messages
from tests.support.sockets import session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def plans(alice):
    """Alice's private room (she owns it)."""
    return services.room_create(name="Plans", created_by=alice, is_private=True)


async def test_an_invitation_puts_the_room_in_every_tab_of_the_invited_and_no_one_elses(
    connect, alice, bob, make_user, plans
):
    await database_sync_to_async(post_messages)(plans, alice, 2)
    cookie = await database_sync_to_async(session_cookie)(bob)
    tabs = [await connect(bob, cookie=cookie), await connect(bob, cookie=cookie)]
    bystander = await connect(await database_sync_to_async(make_user)("carol"))
    assert (await tabs[0].request({"type": "join", "room": plans.slug}))["code"] == "not_found"

    await database_sync_to_async(services.membership_invite)(room=plans, by=alice, username="bob")

    for tab in tabs:
        frame = await tab.recv_until("membership")
        assert frame == {
            "type": "membership",
            "room": plans.slug,
            "name": "Plans",
            "member": True,
            "starred": False,
            "notify": "mentions",
            "owner": False,
            "private": True,
            "direct": False,
            "people": None,
            "last_seq": 2,
            "read": 2,
            "unread": 0,
        }
        assert (await tab.join(plans.slug))["last_seq"] == 2
    await bystander.request({"type": "ping"})
    assert all(frame["type"] != "membership" for frame in bystander.unread)


async def test_a_removed_member_loses_the_room_on_every_tab_at_once(connect, alice, bob, plans):
    await database_sync_to_async(services.membership_invite)(room=plans, by=alice, username="bob")
    cookie = await database_sync_to_async(session_cookie)(bob)
    tabs = [await connect(bob, cookie=cookie), await connect(bob, cookie=cookie)]
    for tab in tabs:
        await tab.join(plans.slug)
    owner = await connect(alice)
    await owner.join(plans.slug)

    await database_sync_to_async(services.membership_remove)(room=plans, by=alice, username="bob")

    for tab in tabs:
        removed = await tab.recv_until("removed")
        assert removed["room"] == plans.slug
        frame = await tab.recv_until("membership")
        assert (frame["room"], frame["member"]) == (plans.slug, False)
        assert (await tab.request({"type": "join", "room": plans.slug}))["code"] == "not_found"
        sent = {"type": "send", "room": plans.slug, "body": "still here?", "client_id": "c1"}
        assert (await tab.request(sent))["code"] == "not_joined"
    while (gone := await owner.recv_until("presence"))["user"] != "bob" or gone["online"]:
        pass  # the owner's own arrival, and bob's, come first


async def test_a_rename_reaches_everyone_in_the_room_and_only_them(connect, alice, bob, general):
    room = await database_sync_to_async(services.room_create)(name="Open", created_by=alice)
    inside = [await connect(alice), await connect(bob)]
    for socket in inside:
        await socket.join(room.slug, quiet=True)
    elsewhere = await connect(bob)
    await elsewhere.join("general")

    await database_sync_to_async(services.room_update)(
        room=room, by=alice, name="Agora", topic="Talk of the town"
    )

    for socket in inside:
        frame = await socket.recv_until("room_updated")
        assert frame == {
            "type": "room_updated",
            "room": room.slug,
            "name": "Agora",
            "topic": "Talk of the town",
        }
    await elsewhere.request({"type": "ping"})
    assert all(frame["type"] != "room_updated" for frame in elsewhere.unread)
    rejoined = await inside[1].join(room.slug)
    assert (rejoined["name"], rejoined["topic"]) == ("Agora", "Talk of the town")


async def test_saving_the_same_name_and_topic_sends_nothing(connect, alice, plans):
    socket = await connect(alice)
    await socket.join(plans.slug)

    await database_sync_to_async(services.room_update)(room=plans, by=alice, name="Plans", topic="")

    await socket.request({"type": "ping"})
    assert all(frame["type"] != "room_updated" for frame in socket.unread)


async def test_an_owner_archiving_the_room_closes_it_for_everyone_in_it(connect, alice, bob, plans):
    await database_sync_to_async(services.membership_invite)(room=plans, by=alice, username="bob")
    member = await connect(bob)
    await member.join(plans.slug)

    await database_sync_to_async(services.room_archive_as)(room=plans, by=alice)

    closed = await member.recv_until("room_closed")
    assert closed["room"] == plans.slug
    assert (await member.request({"type": "join", "room": plans.slug}))["code"] == "room_archived"


async def test_the_invite_form_tells_the_invited_users_open_tabs(connect, alice, bob, plans):
    tab = await connect(bob)
    client = Client()
    await database_sync_to_async(client.force_login)(alice)

    response = await database_sync_to_async(client.post)(
        f"/chat/{plans.slug}/settings/invite/", {"username": "bob"}
    )

    assert response.status_code == 302
    frame = await tab.recv_until("membership")
    assert (frame["room"], frame["member"], frame["private"]) == (plans.slug, True, True)
