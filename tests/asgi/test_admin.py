"""The admin: room management and moderation, and their live effect on connected sockets."""

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from chat import services
from chat.models import Message, Room
from tests.support.factories import post_messages
from tests.support.sockets import joined_with_presence

pytestmark = pytest.mark.django_db(transaction=True)


def run_action(client: Client, url: str, action: str, pks: list[int]) -> int:
    response = client.post(url, {"action": action, "_selected_action": [str(pk) for pk in pks]})
    return response.status_code


def test_room_list_shows_member_and_message_counts(
    admin_client_for, alice, bob, make_room, general
):
    room = make_room("busy", members=(alice, bob))
    post_messages(room, alice, 3)
    Message.objects.filter(room=room, seq=3).update(deleted_at="2026-01-01T00:00Z")

    response = admin_client_for.get("/admin/chat/room/")

    listed = {r.slug: r for r in response.context["cl"].result_list}
    assert (listed["busy"].member_count, listed["busy"].message_count) == (2, 2)
    assert (listed["general"].member_count, listed["general"].message_count) == (0, 0)


def test_room_list_searches_and_filters(admin_client_for, make_room, general):
    make_room("django-help", topic="ask anything")
    make_room("hidden", is_private=True)
    make_room("old", is_archived=True)

    def slugs(query: str) -> set[str]:
        response = admin_client_for.get(f"/admin/chat/room/{query}")
        return {r.slug for r in response.context["cl"].result_list}

    assert slugs("?q=anything") == {"django-help"}
    assert slugs("?is_private__exact=1") == {"hidden"}
    assert slugs("?is_archived__exact=1") == {"old"}


# The room form's membership inline, submitted with no row changed.
NO_MEMBERSHIP_CHANGES = {"memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0"}


def test_room_form_prepopulates_the_slug_and_edits_members(admin_client_for, general):
    add = admin_client_for.get("/admin/chat/room/add/").content.decode()
    change = admin_client_for.get(f"/admin/chat/room/{general.pk}/change/").content.decode()

    assert "&quot;#id_slug&quot;, &quot;name&quot;: &quot;slug&quot;" in add
    assert "&quot;dependency_ids&quot;: [&quot;#id_name&quot;]" in add
    # Members are edited as memberships (an inline: who, owner or member, starred, since).
    assert 'name="memberships-TOTAL_FORMS"' in change
    assert 'name="memberships-__prefix__-role"' in change
    assert '<option value="owner">owner</option>' in change


@pytest.mark.parametrize("slug", ["dm-3-5", "DM-3-5", "dm_x", "dm"])
def test_the_admin_cannot_put_a_room_in_the_direct_message_namespace(admin_client_for, slug):
    response = admin_client_for.post("/admin/chat/room/add/", {"name": "Sneaky", "slug": slug})

    assert response.status_code == 200  # the form again, with the error
    assert "kept for direct messages" in response.content.decode()
    assert not Room.objects.filter(name="Sneaky").exists()


def test_the_admin_still_edits_a_direct_message_room(admin_client_for, alice, bob):
    room = services.direct_room_get_or_create(user=alice, other=bob)
    form = {"name": room.name, "slug": room.slug, "is_private": "on", **NO_MEMBERSHIP_CHANGES}

    response = admin_client_for.post(f"/admin/chat/room/{room.pk}/change/", {**form, "topic": "hi"})

    assert response.status_code == 302
    assert Room.objects.get(pk=room.pk).topic == "hi"
    assert set(room.members.all()) == {alice, bob}


def test_message_list_searches_by_body_and_author_and_filters_by_room(
    admin_client_for, alice, bob, make_room, general
):
    other = make_room("other")
    Message.objects.create(room=general, author=alice, body="about pickles", seq=1, rev=1)
    Message.objects.create(room=general, author=bob, body="about cheese", seq=2, rev=2)
    Message.objects.create(room=other, author=bob, body="elsewhere", seq=1, rev=1)

    def bodies(query: str) -> set[str]:
        response = admin_client_for.get(f"/admin/chat/message/{query}")
        return {m.body for m in response.context["cl"].result_list}

    assert bodies("?q=pickles") == {"about pickles"}
    assert bodies("?q=bob") == {"about cheese", "elsewhere"}
    assert bodies(f"?room__id__exact={other.pk}") == {"elsewhere"}


def test_messages_cannot_be_hard_deleted_or_added_in_the_admin(admin_client_for, alice, general):
    message = Message.objects.create(room=general, author=alice, body="x", seq=1, rev=1)

    assert admin_client_for.get(f"/admin/chat/message/{message.pk}/delete/").status_code == 403
    assert admin_client_for.get("/admin/chat/message/add/").status_code == 403


def test_non_staff_cannot_reach_the_admin(client, alice):
    client.force_login(alice)

    response = client.get("/admin/chat/room/")

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


async def test_archive_action_closes_the_room_for_connected_sockets(
    connect, admin_client_for, alice, bob, general
):
    talker = await connect(alice)
    reader = await connect()
    await joined_with_presence(talker, "general")
    await reader.join("general")

    status = await database_sync_to_async(run_action)(
        admin_client_for, "/admin/chat/room/", "archive", [general.pk]
    )

    assert status == 302
    for socket in (talker, reader):
        closed = await socket.expect("room_closed")
        assert closed["room"] == "general"
        assert closed["reason"]
    refused = await talker.request(
        {"type": "send", "room": "general", "body": "hello?", "client_id": "z"}
    )
    assert refused["code"] == "not_joined"
    rejoin = await talker.request({"type": "join", "room": "general"})
    assert rejoin["code"] == "room_archived"
    newcomer = await connect(bob)
    assert (await newcomer.request({"type": "join", "room": "general"}))["code"] == (
        "room_archived"
    )
    for socket in (talker, reader, newcomer):
        await socket.close()


async def test_delete_action_removes_the_message_live_and_from_history(
    connect, admin_client_for, alice, general
):
    await database_sync_to_async(post_messages)(general, alice, 3)
    doomed = await database_sync_to_async(Message.objects.get)(room=general, seq=2)
    reader = await connect()
    await reader.join("general")

    status = await database_sync_to_async(run_action)(
        admin_client_for, "/admin/chat/message/", "soft_delete", [doomed.pk]
    )

    assert status == 302
    assert await reader.expect("message_deleted") == {
        "type": "message_deleted",
        "room": "general",
        "id": doomed.pk,
        "seq": 4,  # the deletion's own place in the room's sequence
    }
    history = await reader.request({"type": "history", "room": "general"})
    assert [m["seq"] for m in history["messages"]] == [1, 3]
    replay = await reader.join("general", since=0)
    assert [(m["seq"], m["deleted"], m["body"]) for m in replay["messages"]] == [
        (1, False, "message 1"),
        (3, False, "message 3"),
        (2, True, ""),  # the replay tells of the deletion, never the deleted text
    ]
    page = await database_sync_to_async(Client().get)("/chat/general/")
    assert "message 2<" not in page.content.decode()
    assert "message 3<" in page.content.decode()
    await reader.close()


async def test_unarchive_action_reopens_a_room_on_open_pages(connect, admin_client_for, make_room):
    room = await database_sync_to_async(make_room)("old", is_archived=True)
    page = await connect()

    await database_sync_to_async(run_action)(
        admin_client_for, "/admin/chat/room/", "unarchive", [room.pk]
    )

    assert not (await database_sync_to_async(Room.objects.get)(pk=room.pk)).is_archived
    assert (await page.recv_until("room_opened"))["room"] == "old"
    assert (await page.join("old"))["room"] == "old"
