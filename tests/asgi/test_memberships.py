"""Membership ("your rooms"): joining, leaving and starring reach every tab of the user at
once as `membership` frames, through the same services as the pages' forms; leaving a
private room takes the user out of it on every tab."""

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from chat import services
from chat.models import Membership
from tests.support.factories import post_messages
from tests.support.sockets import session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


def membership(
    room: str, *, member: bool, starred: bool = False, notify: str = "mentions", **counts
) -> dict:
    frame = {"type": "membership", "room": room, "member": member, "starred": starred}
    frame["notify"] = notify
    frame["owner"] = False
    frame |= {
        "private": False,
        "direct": False,
        "people": None,
        "last_seq": 0,
        "read": None,
        "unread": 0,
    } | counts
    return frame


async def test_joining_starring_and_leaving_reach_every_tab_of_the_user_and_no_one_else(
    connect, alice, bob, general
):
    await database_sync_to_async(post_messages)(general, bob, 3)
    cookie = await database_sync_to_async(session_cookie)(alice)
    tabs = [await connect(alice, cookie=cookie), await connect(alice, cookie=cookie)]
    someone_else = await connect(bob)

    await database_sync_to_async(services.membership_join)(room=general, user=alice)
    await database_sync_to_async(services.membership_star)(room=general, user=alice, starred=True)
    await database_sync_to_async(services.membership_notify)(
        room=general, user=alice, notify="mute"
    )
    await database_sync_to_async(services.membership_leave)(room=general, user=alice)

    for tab in tabs:
        frames = [await tab.recv_until("membership") for _ in range(4)]
        keys = ("member", "starred", "notify", "last_seq")
        assert [{k: f[k] for k in keys} for f in frames] == [
            {"member": True, "starred": False, "notify": "mentions", "last_seq": 3},
            {"member": True, "starred": True, "notify": "mentions", "last_seq": 3},
            {"member": True, "starred": True, "notify": "mute", "last_seq": 3},
            {"member": False, "starred": True, "notify": "mute", "last_seq": 3},
        ]
        # Joining marks the room read up to now: what follows is unread.
        assert frames[0] == membership("general", member=True, name="General", last_seq=3, read=3)
    await someone_else.request({"type": "ping"})
    assert all(frame["type"] != "membership" for frame in someone_else.unread)


async def test_joining_starring_or_choosing_notifications_as_before_sends_nothing(
    connect, alice, general
):
    await database_sync_to_async(services.membership_join)(room=general, user=alice)
    tab = await connect(alice)

    await database_sync_to_async(services.membership_join)(room=general, user=alice)
    await database_sync_to_async(services.membership_star)(room=general, user=alice, starred=False)
    await database_sync_to_async(services.membership_notify)(
        room=general, user=alice, notify="mentions"
    )

    await tab.request({"type": "ping"})
    assert all(frame["type"] != "membership" for frame in tab.unread)


async def test_leaving_a_private_room_takes_every_tab_out_of_it(connect, alice, bob, make_room):
    team = await database_sync_to_async(make_room)("team", is_private=True, members=(alice, bob))
    cookie = await database_sync_to_async(session_cookie)(alice)
    tabs = [await connect(alice, cookie=cookie), await connect(alice, cookie=cookie)]
    for tab in tabs:
        await tab.join("team")

    left = await database_sync_to_async(services.membership_leave)(room=team, user=alice)

    assert left is True
    for tab in tabs:
        removed = await tab.recv_until("removed")
        assert removed["room"] == "team"
        frame = await tab.recv_until("membership")
        assert (frame["member"], frame["private"]) == (False, True)
        assert (await tab.request({"type": "join", "room": "team"}))["code"] == "not_found"
    assert not await database_sync_to_async(
        Membership.objects.filter(room=team, user=alice).exists
    )()


async def test_the_join_form_tells_the_users_open_tabs(connect, alice, general):
    tab = await connect(alice)
    client = Client()
    await database_sync_to_async(client.force_login)(alice)

    response = await database_sync_to_async(client.post)("/chat/general/join/")

    assert response.status_code == 302
    frame = await tab.recv_until("membership")
    assert (frame["room"], frame["member"]) == ("general", True)


async def test_leaving_a_group_dm_takes_it_off_every_tab_and_renames_it_for_who_stays(
    connect, alice, bob, make_user
):
    """The leaver's tabs lose the conversation (`removed`, then `membership` with member
    false), the path of any private room; the others hear its new name and that it holds
    two people now (their "Leave conversation" goes away)."""
    carol = await database_sync_to_async(make_user)("carol")
    group = await database_sync_to_async(services.direct_group_get_or_create)(
        user=alice, others=[bob, carol]
    )
    cookie = await database_sync_to_async(session_cookie)(carol)
    carol_tabs = [await connect(carol, cookie=cookie), await connect(carol, cookie=cookie)]
    alice_tab = await connect(alice)
    for tab in [*carol_tabs, alice_tab]:
        await tab.join(group.slug)

    await database_sync_to_async(services.membership_leave)(room=group, user=carol)

    for tab in carol_tabs:
        assert (await tab.recv_until("removed"))["reason"] == services.MEMBERSHIP_REASON
        frame = await tab.recv_until("membership")
        assert (frame["room"], frame["member"], frame["direct"]) == (group.slug, False, True)
        assert (await tab.request({"type": "join", "room": group.slug}))["code"] == "not_found"
    renamed = await alice_tab.recv_until("room_updated")
    assert (renamed["room"], renamed["name"]) == (group.slug, "alice & bob")
    frame = await alice_tab.recv_until("membership")
    assert (frame["room"], frame["name"], frame["member"], frame["people"]) == (
        group.slug,
        "alice & bob",
        True,
        2,
    )
    sent = await alice_tab.request(
        {"type": "send", "room": group.slug, "body": "still here", "client_id": "c1"}
    )
    assert sent["type"] == "ack"
