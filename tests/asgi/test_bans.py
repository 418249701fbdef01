"""Bans: a banned user is taken out of the room on every tab at once, told why, and kept out
(page, join, send), even by a socket that still thinks it is in the room."""

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from chat import services
from chat.models import Ban, Message
from tests.support.sockets import joined_with_presence, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


def page_status(user, path: str = "/chat/general/") -> int:
    client = Client()
    client.force_login(user)
    return client.get(path).status_code


async def test_a_ban_removes_every_tab_of_the_user_from_the_room_and_keeps_them_out(
    connect, alice, bob, staff, general
):
    cookie = await database_sync_to_async(session_cookie)(bob)
    tabs = [await connect(bob, cookie=cookie), await connect(bob, cookie=cookie)]
    witness = await connect(alice)
    await joined_with_presence(witness, "general")
    await joined_with_presence(tabs[0], "general")
    await tabs[1].join("general")
    await witness.recv_until("presence")  # bob came online

    created = await database_sync_to_async(services.user_ban)(
        room=general, user=bob, by=staff, reason="Spamming links."
    )

    assert created is True
    for tab in tabs:
        removed = await tab.recv_until("removed")
        assert removed == {"type": "removed", "room": "general", "reason": "Spamming links."}
    gone = await witness.recv_until("presence")
    assert (gone["user"], gone["online"]) == ("bob", False)
    send = {"type": "send", "room": "general", "body": "let me in", "client_id": "b1"}
    assert (await tabs[0].request(send))["code"] == "not_joined"
    rejoin = await tabs[1].request({"type": "join", "room": "general"})
    assert rejoin["code"] == "forbidden"
    assert await database_sync_to_async(page_status)(bob) == 403
    assert await database_sync_to_async(page_status)(alice) == 200
    assert await database_sync_to_async(Message.objects.count)() == 0


async def test_a_socket_that_missed_its_ban_still_cannot_post_edit_or_delete(
    connect, alice, bob, general
):
    tab = await connect(bob)
    await tab.join("general")
    ack = await tab.request(
        {"type": "send", "room": "general", "body": "before", "client_id": "b1"}
    )
    # The ban is written without its live event: the socket still believes it is in.
    await database_sync_to_async(Ban.objects.create)(room=general, user=bob)

    send = await tab.request({"type": "send", "room": "general", "body": "x", "client_id": "b2"})
    edit = await tab.request({"type": "edit", "room": "general", "id": ack["id"], "body": "y"})

    assert send["code"] == edit["code"] == "forbidden"
    bodies = await database_sync_to_async(
        lambda: list(Message.objects.values_list("body", flat=True))
    )()
    assert bodies == ["before"]


async def test_an_unbanned_user_may_come_back(connect, bob, general):
    await database_sync_to_async(services.user_ban)(room=general, user=bob)
    assert await database_sync_to_async(services.user_unban)(room=general, user=bob) is True
    assert await database_sync_to_async(services.user_unban)(room=general, user=bob) is False

    tab = await connect(bob)
    await tab.join("general")
    ack = await tab.request({"type": "send", "room": "general", "body": "hi", "client_id": "b1"})
    assert ack["type"] == "ack"


async def test_a_ban_from_the_admin_takes_effect_live_and_deleting_it_lifts_it(
    connect,
    admin_client_for,
    bob,
    general,
):
    tab = await connect(bob)
    await tab.join("general")

    response = await database_sync_to_async(admin_client_for.post)(
        "/admin/chat/ban/add/", {"room": general.pk, "user": bob.pk, "reason": "Be nice."}
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    removed = await tab.recv_until("removed")
    assert removed["reason"] == "Be nice."
    ban = await database_sync_to_async(Ban.objects.select_related("created_by").get)()
    assert ban.created_by.username == "moderator"
    response = await database_sync_to_async(admin_client_for.post)(
        f"/admin/chat/ban/{ban.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302
    assert (await tab.join("general"))["type"] == "joined"


async def test_a_ban_from_a_private_room_says_forbidden_to_a_member_and_nothing_to_others(
    connect, alice, bob, make_room
):
    room = await database_sync_to_async(make_room)("team", is_private=True, members=(alice, bob))
    await database_sync_to_async(services.user_ban)(room=room, user=bob)

    tab = await connect(bob)
    assert (await tab.request({"type": "join", "room": "team"}))["code"] == "forbidden"
    assert await database_sync_to_async(page_status)(bob, "/chat/team/") == 403
    assert await database_sync_to_async(page_status)(alice, "/chat/team/") == 200


@pytest.mark.parametrize("how", ["remove", "remove_from_the_user_side", "clear"])
async def test_a_member_taken_off_a_private_room_leaves_it_on_every_tab(
    connect, alice, bob, make_room, how
):
    room = await database_sync_to_async(make_room)("team", is_private=True, members=(alice, bob))
    cookie = await database_sync_to_async(session_cookie)(bob)
    tabs = [await connect(bob, cookie=cookie), await connect(bob, cookie=cookie)]
    for tab in tabs:
        await tab.join("team")

    def take_bob_off() -> None:
        if how == "remove":
            room.members.remove(bob)
        elif how == "remove_from_the_user_side":
            bob.chat_rooms.remove(room)
        else:
            room.members.clear()

    await database_sync_to_async(take_bob_off)()

    for tab in tabs:
        removed = await tab.recv_until("removed")
        assert removed == {
            "type": "removed",
            "room": "team",
            "reason": "You are no longer a member of this room.",
        }
    send = {"type": "send", "room": "team", "body": "still here?", "client_id": "t1"}
    assert (await tabs[0].request(send))["code"] == "not_joined"
    assert (await tabs[1].request({"type": "join", "room": "team"}))["code"] == "not_found"


async def test_leaving_a_public_rooms_member_list_changes_nothing_live(connect, bob, general):
    await database_sync_to_async(general.members.add)(bob)
    tab = await connect(bob)
    await tab.join("general")

    await database_sync_to_async(general.members.remove)(bob)

    reply = await tab.request({"type": "send", "room": "general", "body": "hi", "client_id": "p"})
    assert reply["type"] == "ack"
    assert all(frame["type"] != "removed" for frame in tab.unread)
