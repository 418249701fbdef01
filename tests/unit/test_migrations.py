"""Data migrations, run forwards on rows made with the models of the migration before."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE, AFTER = ("chat", "0004_direct_rooms_announcements"), ("chat", "0005_direct_key")


def test_existing_dms_are_keyed_by_their_pair_and_a_squatter_is_not_a_dm(make_user):
    alice, carol, mallory = make_user("alice"), make_user("carol"), make_user("mallory")
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE])
    Room = executor.loader.project_state([BEFORE]).apps.get_model("chat", "Room")
    dm = Room.objects.create(name="a & m", slug=f"dm-{alice.pk}-{mallory.pk}", is_direct=True)
    dm.is_private = True
    dm.save()
    dm.members.add(alice.pk, mallory.pk)
    squat = Room.objects.create(name="Dm", slug=f"dm-{alice.pk}-{carol.pk}")
    squat.members.add(mallory.pk)

    executor = MigrationExecutor(connection)
    executor.migrate([AFTER])

    Room = executor.loader.project_state([AFTER]).apps.get_model("chat", "Room")
    assert Room.objects.get(pk=dm.pk).direct_key == f"{alice.pk}:{mallory.pk}"
    squat = Room.objects.get(pk=squat.pk)
    assert (squat.is_direct, squat.direct_key) == (False, None)
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_members_move_to_memberships_and_every_active_user_keeps_every_open_public_room(
    make_user,
):
    alice, bob = make_user("alice"), make_user("bob")
    gone = make_user("gone", is_active=False)
    before, after = ("chat", "0005_direct_key"), ("chat", "0006_membership")
    executor = MigrationExecutor(connection)
    executor.migrate([before])
    Room = executor.loader.project_state([before]).apps.get_model("chat", "Room")
    Room.objects.all().delete()
    lounge = Room.objects.create(name="Lounge", slug="lounge")
    old = Room.objects.create(name="Old", slug="old", is_archived=True)
    team = Room.objects.create(name="Team", slug="team", is_private=True)
    team.members.add(bob.pk, gone.pk)
    dm = Room.objects.create(
        name="a & b", slug="dm-x", is_private=True, is_direct=True, direct_key="1:2"
    )
    dm.members.add(alice.pk, bob.pk)

    executor = MigrationExecutor(connection)
    executor.migrate([after])

    Membership = executor.loader.project_state([after]).apps.get_model("chat", "Membership")
    rows = set(Membership.objects.values_list("room__slug", "user__username", "starred"))
    assert rows == {
        ("lounge", "alice", False),  # the backfill: active users, open public rooms
        ("lounge", "bob", False),
        ("team", "bob", False),  # copied, inactive members of private rooms included
        ("team", "gone", False),
        ("dm-x", "alice", False),
        ("dm-x", "bob", False),
    }
    assert not Membership.objects.filter(room=old.pk).exists()  # archived: no backfill

    executor = MigrationExecutor(connection)
    executor.migrate([before])  # and back: the plain table holds every membership
    Room = executor.loader.project_state([before]).apps.get_model("chat", "Room")
    assert set(Room.objects.get(pk=team.pk).members.values_list("username", flat=True)) == {
        "bob",
        "gone",
    }
    assert Room.objects.get(pk=lounge.pk).members.count() == 2
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_creators_still_in_their_rooms_become_their_owners(make_user):
    alice, bob = make_user("alice"), make_user("bob")
    before, after = ("chat", "0006_membership"), ("chat", "0007_room_owners")
    executor = MigrationExecutor(connection)
    executor.migrate([before])
    apps = executor.loader.project_state([before]).apps
    Room, Membership = apps.get_model("chat", "Room"), apps.get_model("chat", "Membership")
    Room.objects.all().delete()
    team = Room.objects.create(name="Team", slug="team", is_private=True, created_by_id=alice.pk)
    left = Room.objects.create(name="Left", slug="left", created_by_id=bob.pk)
    staffs = Room.objects.create(name="Staff's", slug="staffs")
    for room, user in [(team, alice), (team, bob), (left, alice), (staffs, bob)]:
        Membership.objects.create(room_id=room.pk, user_id=user.pk)

    executor = MigrationExecutor(connection)
    executor.migrate([after])

    Membership = executor.loader.project_state([after]).apps.get_model("chat", "Membership")
    rows = set(Membership.objects.values_list("room__slug", "user__username", "role"))
    assert rows == {
        ("team", "alice", "owner"),
        ("team", "bob", "member"),
        ("left", "alice", "member"),  # its creator left it: no owner until staff name one
        ("staffs", "bob", "member"),
    }
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_direct_message_members_keep_hearing_every_message_and_rooms_start_at_mentions(
    make_user,
):
    alice, bob = make_user("alice"), make_user("bob")
    before, after = ("chat", "0009_profiles"), ("chat", "0010_membership_notify")
    executor = MigrationExecutor(connection)
    executor.migrate([before])
    apps = executor.loader.project_state([before]).apps
    Room, Membership = apps.get_model("chat", "Room"), apps.get_model("chat", "Membership")
    Room.objects.all().delete()
    dm = Room.objects.create(
        name="alice & bob", slug="dm-1", is_private=True, is_direct=True, direct_key="1:2"
    )
    team = Room.objects.create(name="Team", slug="team")
    for room, user in [(dm, alice), (dm, bob), (team, alice)]:
        Membership.objects.create(room_id=room.pk, user_id=user.pk)

    executor = MigrationExecutor(connection)
    executor.migrate([after])

    Membership = executor.loader.project_state([after]).apps.get_model("chat", "Membership")
    rows = set(Membership.objects.values_list("room__slug", "user__username", "notify"))
    assert rows == {("dm-1", "alice", "all"), ("dm-1", "bob", "all"), ("team", "alice", "mentions")}
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_stored_messages_are_rendered_once_with_their_mentions_and_deleted_ones_are_not(
    make_user,
):
    alice = make_user("alice")
    make_user("gone", is_active=False)
    before, after = (
        ("chat", "0012_merge_0010_message_room_index_0011"),
        (
            "chat",
            "0013_message_body_html",
        ),
    )
    executor = MigrationExecutor(connection)
    executor.migrate([before])
    apps = executor.loader.project_state([before]).apps
    Room, Message = apps.get_model("chat", "Room"), apps.get_model("chat", "Message")
    room = Room.objects.create(name="Old", slug="old", last_seq=3)
    for seq, body, deleted in [
        (1, "**hi** @alice @gone", None),
        (2, "<script>x</script>", None),
        (3, "secret", "2026-01-01T00:00:00Z"),
    ]:
        Message.objects.create(
            room_id=room.pk, author_id=alice.pk, body=body, seq=seq, rev=seq, deleted_at=deleted
        )

    executor = MigrationExecutor(connection)
    executor.migrate([after])

    Message = executor.loader.project_state([after]).apps.get_model("chat", "Message")
    rendered = dict(Message.objects.filter(room_id=room.pk).values_list("seq", "body_html"))
    assert rendered == {
        1: '<p><strong>hi</strong> <button type="button" class="mention person"'
        ' data-username="alice" aria-haspopup="dialog" aria-expanded="false">@alice</button>'
        " @gone</p>",
        2: "<p>&lt;script&gt;x&lt;/script&gt;</p>",
        3: "",
    }
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
