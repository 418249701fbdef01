"""What is addressed to people rather than rooms: direct messages, @mentions and site-wide
announcements, over the real ASGI application (docs/protocol.md)."""

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from chat import access, services
from chat.models import Announcement, Ban, Room
from tests.support.sockets import frames_of, frames_until_pong, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


def open_direct(user, path: str):
    client = Client()
    client.force_login(user)
    return client.get(path)


# Direct messages ------------------------------------------------------------------------------


def test_a_direct_room_is_made_on_first_use_for_exactly_the_two_users(alice, bob, make_user):
    carol = make_user("carol")

    first = open_direct(alice, "/chat/@bob/")
    again = open_direct(bob, "/chat/@alice/")

    assert first.status_code == again.status_code == 200
    (room,) = Room.objects.filter(is_direct=True)
    assert room.is_private
    assert set(room.members.values_list("username", flat=True)) == {"alice", "bob"}
    assert open_direct(carol, f"/chat/{room.slug}/").status_code == 404
    assert open_direct(alice, "/chat/@nobody/").status_code == 404
    assert open_direct(alice, "/chat/@alice/").status_code == 404  # not a room of two
    assert Client().get("/chat/@bob/").status_code == 302  # log in first
    lobby = Client()
    lobby.force_login(alice)
    page = lobby.get("/").content.decode()
    assert 'id="direct-list"' in page
    assert "alice &amp; bob" in page


async def test_a_direct_message_notifies_every_tab_of_the_recipient_only(
    connect, alice, bob, make_user
):
    carol = await database_sync_to_async(make_user)("carol")
    room = await database_sync_to_async(services.direct_room_get_or_create)(user=alice, other=bob)
    sender = await connect(alice)
    await sender.join(room.slug)
    cookie = await database_sync_to_async(session_cookie)(bob)
    bob_tabs = [await connect(bob, cookie=cookie), await connect(bob, cookie=cookie)]
    bystander = await connect(carol)

    await sender.request({"type": "send", "room": room.slug, "body": "psst", "client_id": "d1"})

    for tab in bob_tabs:  # in no room at all, and still told
        note = await tab.recv_until("notification")
        assert (note["reason"], note["room"]) == ("dm", room.slug)
        assert (note["message"]["author"], note["message"]["body"]) == ("alice", "psst")
    assert all(f["type"] != "notification" for f in await frames_until_pong(bystander))
    assert all(f["type"] != "notification" for f in await frames_until_pong(sender))


# Mentions -------------------------------------------------------------------------------------


def test_mentions_are_read_from_the_body():
    found = services.mentioned_usernames("hi @bob and @carol. mail me at a@b.example, @@x")
    assert found == {"bob", "carol"}


async def test_a_mention_notifies_the_mentioned_user_who_may_read_the_room_and_is_its_member(
    connect, alice, bob, make_user, make_room, general
):
    carol = await database_sync_to_async(make_user)("carol")
    dave = await database_sync_to_async(make_user)("dave")  # reads general, never joined it
    await database_sync_to_async(general.members.add)(bob, carol)
    team = await database_sync_to_async(make_room)("team", is_private=True, members=(alice, bob))
    sender = await connect(alice)
    await sender.join("general")
    await sender.join("team")
    bob_tab = await connect(bob)
    carol_tab = await connect(carol)
    dave_tab = await connect(dave)

    await sender.request(
        {"type": "send", "room": "general", "body": "@bob @carol @dave look", "client_id": "m1"}
    )
    await sender.request(
        {"type": "send", "room": "team", "body": "@bob @carol @alice secret", "client_id": "m2"}
    )

    bob_notes = await frames_of(bob_tab, "notification", 2)
    assert [(n["reason"], n["room"]) for n in bob_notes] == [
        ("mention", "general"),
        ("mention", team.slug),
    ]
    # carol may not read the private room: she hears of general only, and nothing leaks.
    carol_notes = await frames_of(carol_tab, "notification", 1)
    assert [(n["reason"], n["room"]) for n in carol_notes] == [("mention", "general")]
    # dave is no member of general: "your rooms" alone notify (leaving stops mentions).
    assert all(f["type"] != "notification" for f in await frames_until_pong(dave_tab))
    # Mentioning oneself notifies nobody.
    assert all(f["type"] != "notification" for f in await frames_until_pong(sender))


# Announcements --------------------------------------------------------------------------------


async def test_an_announcement_reaches_every_socket_once_however_many_rooms_it_is_in(
    connect, alice, staff, general, make_room
):
    for slug in ("one", "two"):
        await database_sync_to_async(make_room)(slug)
    everywhere = await connect(alice)
    for slug in ("general", "one", "two"):
        await everywhere.join(slug)
    nowhere = await connect()  # anonymous, in no room

    announcement = await database_sync_to_async(services.announcement_create)(
        body="Maintenance at 22:00 UTC.", by=staff
    )

    for socket in (everywhere, nowhere):
        frames = await frames_of(socket, "announcement", 1)
        assert len(frames) == 1
        assert frames[0]["id"] == announcement.pk
        assert frames[0]["body"] == "Maintenance at 22:00 UTC."


async def test_staff_announce_from_the_admin(connect, admin_client_for):
    socket = await connect()

    response = await database_sync_to_async(admin_client_for.post)(
        "/admin/chat/announcement/add/", {"body": "Welcome, everyone!"}
    )

    assert response.status_code == 302
    heard = await socket.recv_until("announcement")
    assert heard["body"] == "Welcome, everyone!"
    saved = await database_sync_to_async(Announcement.objects.select_related("created_by").get)()
    assert saved.created_by.username == "moderator"


def test_an_empty_announcement_is_refused(staff):
    with pytest.raises(services.ChatError):
        services.announcement_create(body="   ", by=staff)
    assert Announcement.objects.count() == 0


# A first direct message reaches the sidebars ---------------------------------------------------


async def test_a_new_direct_message_appears_in_both_users_sidebars_on_every_tab(
    connect, alice, bob, make_user
):
    carol = await database_sync_to_async(make_user)("carol")
    cookie = await database_sync_to_async(session_cookie)(bob)
    bob_tabs = [await connect(bob, cookie=cookie), await connect(bob, cookie=cookie)]
    alice_tab = await connect(alice)
    bystander = await connect(carol)

    room = await database_sync_to_async(services.direct_room_get_or_create)(user=alice, other=bob)
    await database_sync_to_async(services.direct_room_get_or_create)(user=bob, other=alice)

    expected = {
        "type": "membership",
        "room": room.slug,
        "name": "alice & bob",
        "member": True,
        "starred": False,
        "notify": "all",  # a direct message notifies of every message until they say otherwise
        "owner": False,
        "private": True,
        "direct": True,
        "people": 2,
        "last_seq": 0,
        "read": 0,  # read up to nothing: what comes counts as unread
        "unread": 0,
    }
    for tab in [*bob_tabs, alice_tab]:
        assert await tab.recv_until("membership") == expected
        # Opening it again (bob's side) made nothing new: one frame only.
        assert all(f["type"] != "membership" for f in await frames_until_pong(tab))
    assert all(f["type"] != "membership" for f in await frames_until_pong(bystander))


async def test_the_recipient_of_a_first_direct_message_may_follow_it_and_counts_it_unread(
    connect, alice, bob
):
    bob_tab = await connect(bob)
    room = await database_sync_to_async(services.direct_room_get_or_create)(user=alice, other=bob)
    added = await bob_tab.recv_until("membership")
    await bob_tab.join(added["room"], since=added["last_seq"], quiet=True)
    sender = await connect(alice)
    await sender.join(room.slug)

    await sender.request({"type": "send", "room": room.slug, "body": "hi", "client_id": "f1"})

    assert (await bob_tab.recv_until("message"))["message"]["body"] == "hi"
    assert (await bob_tab.recv_until("notification"))["room"] == room.slug


# Who may be notified: every path asks access.may_be_notified ----------------------------------


@pytest.mark.parametrize("shut_out", ["banned", "deactivated"])
async def test_no_notification_reaches_a_user_who_may_not_be_notified(
    connect, alice, bob, make_room, shut_out
):
    team = await database_sync_to_async(make_room)("team", members=(alice, bob))
    room = await database_sync_to_async(services.direct_room_get_or_create)(user=alice, other=bob)
    bob_tab = await connect(bob)
    sender = await connect(alice)
    await sender.join(room.slug)
    await sender.join("team")

    def shut_bob_out() -> None:
        if shut_out == "banned":
            for where in (room, team):
                Ban.objects.create(room=where, user=bob)
        else:
            type(bob).objects.filter(pk=bob.pk).update(is_active=False)

    await database_sync_to_async(shut_bob_out)()
    await sender.request({"type": "send", "room": room.slug, "body": "psst", "client_id": "n1"})
    await sender.request({"type": "send", "room": "team", "body": "@bob hi", "client_id": "n2"})

    assert all(f["type"] != "notification" for f in await frames_until_pong(bob_tab))


async def test_notifications_go_exactly_to_the_users_access_says_may_be_notified(
    connect, alice, bob, make_user, make_room, general
):
    """The family, in one table: for each way a message can be for someone (a DM, a
    mention), the set notified equals the set `access.may_be_notified` allows."""
    people = {
        name: await database_sync_to_async(make_user)(name)
        for name in ("member", "outsider", "banned", "inactive")
    }
    team = await database_sync_to_async(make_room)(
        "team", members=(alice, people["member"], people["banned"], people["inactive"])
    )

    def shut_out() -> None:
        Ban.objects.create(room=team, user=people["banned"])
        type(alice).objects.filter(username="inactive").update(is_active=False)

    await database_sync_to_async(shut_out)()
    tabs = {name: await connect(user) for name, user in people.items() if name != "inactive"}
    sender = await connect(alice)
    await sender.join("team")

    body = " ".join(f"@{name}" for name in people)
    await sender.request({"type": "send", "room": "team", "body": body, "client_id": "t1"})

    fresh = {
        name: await database_sync_to_async(type(alice).objects.get)(pk=user.pk)
        for name, user in people.items()
    }
    allowed = {
        name
        for name, user in fresh.items()
        if await database_sync_to_async(access.may_be_notified)(user, team)
    }
    assert allowed == {"member"}
    # Those notified first (frames_of waits for theirs), then the rest.
    for name in sorted(tabs, key=lambda name: name not in allowed):
        expected = 1 if name in allowed else 0
        assert len(await frames_of(tabs[name], "notification", expected)) == expected, name


async def test_a_group_direct_message_reaches_every_other_member_live(
    connect, alice, bob, make_user
):
    carol = await database_sync_to_async(make_user)("carol")
    bob_tab, carol_tab = await connect(bob), await connect(carol)
    room = await database_sync_to_async(services.direct_group_get_or_create)(
        user=alice, others=[bob, carol]
    )
    for tab in (bob_tab, carol_tab):
        added = await tab.recv_until("membership")
        assert (added["room"], added["direct"], added["name"]) == (
            room.slug,
            True,
            "alice, bob & carol",
        )
    sender = await connect(alice)
    await sender.join(room.slug)

    await sender.request({"type": "send", "room": room.slug, "body": "all", "client_id": "g1"})

    for tab in (bob_tab, carol_tab):
        note = await tab.recv_until("notification")
        assert (note["reason"], note["room"]) == ("dm", room.slug)
    assert all(f["type"] != "notification" for f in await frames_until_pong(sender))


# Profiles -------------------------------------------------------------------------------------


async def test_a_profile_change_is_named_to_every_socket_once_and_an_email_change_is_not(
    connect, alice, bob, general
):
    """Whoever shows alice's status or card asks again; the frame carries only her name."""
    watcher = await connect(bob)
    await watcher.join("general")
    nowhere = await connect()  # anonymous, in no room

    def save(**changes) -> None:
        fields = {"display_name": "", "status": "", "time_zone": "", "email": ""} | changes
        services.profile_update(user=alice, **fields)

    await database_sync_to_async(save)(status="in a meeting")
    for socket in (watcher, nowhere):
        frames = await frames_of(socket, "profile", 1)
        assert frames == [{"type": "profile", "user": "alice"}]

    await database_sync_to_async(save)(status="in a meeting", email="alice@example.com")
    await database_sync_to_async(save)(status="in a meeting", email="alice@example.com")
    assert all(f["type"] != "profile" for f in await frames_until_pong(watcher))

    await database_sync_to_async(save)(status="in a meeting", time_zone="Europe/Paris")
    heard = await watcher.recv_until("profile")  # this one, not a late one of the email's:
    assert heard == {"type": "profile", "user": "alice"}
    assert all(f["type"] != "profile" for f in await frames_until_pong(watcher))
