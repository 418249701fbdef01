"""Rooms run by their owners (chat/services.py, chat/access.py): who may invite, remove,
name owners, step down, rename, change the topic, archive and un-archive, and the last-owner
rule."""

from collections.abc import Callable

import pytest
from django.contrib.auth.models import AnonymousUser

from chat import access, selectors, services
from chat.models import Ban, Membership, ReadState, Room
from chat.protocol.errors import ChatError, ErrorCode

pytestmark = pytest.mark.django_db

OWNER = Membership.Role.OWNER
MEMBER = Membership.Role.MEMBER


@pytest.fixture
def world(make_user, make_room) -> Callable[[str, str], dict]:
    """A room of `kind` (public, private, archived: public and archived, archived_private)
    owned by `owner`, with `member` in it, `carol` outside it, and the actor of `role`."""

    def build(role: str, kind: str) -> dict:
        owner, member, carol = make_user("owner"), make_user("member"), make_user("carol")
        room = make_room(
            f"{kind.replace('_', '-')}-room",
            is_private=kind.endswith("private"),
            is_archived=kind.startswith("archived"),
        )
        Membership.objects.create(room=room, user=owner, role=OWNER)
        Membership.objects.create(room=room, user=member)
        actor = {
            "owner": owner,
            "member": member,
            "non_member": carol,
            "staff": make_user("moderator", is_staff=True),
            "anonymous": AnonymousUser(),
        }.get(role)
        if role == "banned":
            actor = make_user("banned")
            Membership.objects.create(room=room, user=actor, role=OWNER)
            Ban.objects.create(room=room, user=actor)
        return {"room": room, "actor": actor, "owner": owner, "member": member, "carol": carol}

    return build


def refusal(call: Callable[[], object]) -> str:
    try:
        call()
    except ChatError as error:
        return error.code.value
    return "ok"


ACTIONS: dict[str, Callable[[dict], Callable[[], object]]] = {
    "invite": lambda w: (
        lambda: services.membership_invite(room=w["room"], by=w["actor"], username="carol")
    ),
    "remove": lambda w: (
        lambda: services.membership_remove(room=w["room"], by=w["actor"], username="member")
    ),
    "make_owner": lambda w: (
        lambda: services.membership_make_owner(room=w["room"], by=w["actor"], username="member")
    ),
    "rename": lambda w: (
        lambda: services.room_update(
            room=w["room"], by=w["actor"], name="New name", topic="New topic"
        )
    ),
    "archive": lambda w: lambda: services.room_archive_as(room=w["room"], by=w["actor"]),
    "unarchive": lambda w: lambda: services.room_unarchive_as(room=w["room"], by=w["actor"]),
}
# An open room: everything but un-archiving it (bad_request: it is not archived).
ALL = dict.fromkeys(ACTIONS, "ok") | {"unarchive": "bad_request"}
NONE = dict.fromkeys(ACTIONS, "forbidden")
# An archived room: un-archiving it, and nothing else until then.
REOPEN = dict.fromkeys(ACTIONS, "room_archived") | {"unarchive": "ok"}

# (role, kind) → outcome of each action. Staff may do what owners may, where they may see
# the room (they manage private rooms they are not in from the admin).
EXPECTED = {
    ("owner", "public"): ALL,
    ("owner", "private"): ALL,
    ("owner", "archived"): REOPEN,
    ("owner", "archived_private"): REOPEN,
    ("staff", "public"): ALL,
    ("staff", "private"): dict.fromkeys(ACTIONS, "not_found"),
    ("staff", "archived"): REOPEN,
    ("staff", "archived_private"): dict.fromkeys(ACTIONS, "not_found"),
    ("member", "public"): NONE,
    ("member", "private"): NONE,
    ("member", "archived"): NONE,
    ("member", "archived_private"): NONE,
    ("non_member", "public"): NONE,
    ("non_member", "private"): dict.fromkeys(ACTIONS, "not_found"),
    ("non_member", "archived"): NONE,
    ("non_member", "archived_private"): dict.fromkeys(ACTIONS, "not_found"),
    ("anonymous", "public"): dict.fromkeys(ACTIONS, "auth_required"),
    ("anonymous", "private"): dict.fromkeys(ACTIONS, "auth_required"),
    ("anonymous", "archived"): dict.fromkeys(ACTIONS, "auth_required"),
    ("anonymous", "archived_private"): dict.fromkeys(ACTIONS, "auth_required"),
    ("banned", "public"): NONE,
    ("banned", "private"): NONE,
    ("banned", "archived"): NONE,
    ("banned", "archived_private"): NONE,
}


@pytest.mark.parametrize(("role", "kind"), list(EXPECTED), ids=[f"{r}-{k}" for r, k in EXPECTED])
def test_who_may_run_a_room(world, role, kind):
    outcomes = {}
    for action, make_call in ACTIONS.items():
        w = world(role, kind)
        before = snapshot(w["room"])
        outcomes[action] = refusal(make_call(w))
        if outcomes[action] != "ok":
            assert snapshot(w["room"]) == before, action
        Room.objects.all().delete()
        type(w["owner"]).objects.all().delete()

    assert outcomes == EXPECTED[(role, kind)]


def snapshot(room: Room) -> tuple:
    fresh = Room.objects.get(pk=room.pk)
    members = sorted(Membership.objects.filter(room=room).values_list("user__username", "role"))
    return (fresh.name, fresh.topic, fresh.is_archived, members)


def test_a_created_room_is_owned_by_its_creator_and_a_private_one_seen_by_them_alone(alice, bob):
    room = services.room_create(name="Plans", created_by=alice, is_private=True)

    assert list(Membership.objects.filter(room=room).values_list("user", "role")) == [
        (alice.pk, OWNER)
    ]
    assert access.can_manage(alice, room)
    assert not access.can_see(bob, room)
    public = services.room_create(name="Open", created_by=bob)
    assert access.is_owner(bob, public)


def test_an_invited_user_sees_the_private_room_with_nothing_unread(alice, bob, make_user):
    room = services.room_create(name="Plans", created_by=alice, is_private=True)
    Room.objects.filter(pk=room.pk).update(last_seq=7)

    membership = services.membership_invite(room=room, by=alice, username=" bob ")

    assert (membership.user, membership.role) == (bob, MEMBER)
    assert access.can_see(bob, room)
    assert ReadState.objects.get(room=room, user=bob).seq == 7
    assert services.membership_invite(room=room, by=alice, username="bob").pk == membership.pk


@pytest.mark.parametrize("username", ["nobody", "gone", "banned"])
def test_nobody_invites_an_unknown_inactive_or_banned_user(alice, make_user, username):
    room = services.room_create(name="Plans", created_by=alice, is_private=True)
    make_user("gone", is_active=False)
    Ban.objects.create(room=room, user=make_user("banned"))

    with pytest.raises(ChatError) as caught:
        services.membership_invite(room=room, by=alice, username=username)

    assert caught.value.code == ErrorCode.BAD_REQUEST
    assert list(room.members.all()) == [alice]


def test_the_last_owner_can_neither_leave_nor_step_down_until_they_hand_over(alice, bob):
    room = services.room_create(name="Plans", created_by=alice, is_private=True)
    services.membership_invite(room=room, by=alice, username="bob")

    for attempt in (
        lambda: services.membership_leave(room=room, user=alice),
        lambda: services.membership_step_down(room=room, user=alice),
    ):
        with pytest.raises(ChatError, match="last owner") as caught:
            attempt()
        assert caught.value.code == ErrorCode.BAD_REQUEST
    assert access.is_owner(alice, room)

    services.membership_make_owner(room=room, by=alice, username="bob")
    services.membership_step_down(room=room, user=alice)

    assert not access.is_owner(alice, room)
    assert access.is_owner(bob, room)
    assert not access.can_manage(alice, room)
    with pytest.raises(ChatError, match="last owner"):
        services.membership_leave(room=room, user=bob)
    assert services.membership_leave(room=room, user=alice) is True


def test_owners_remove_members_but_not_each_other_and_staff_never_the_last_owner(
    alice, bob, make_user, staff
):
    room = services.room_create(name="Plans", created_by=alice, is_private=True)
    carol = make_user("carol")
    for name in ("bob", "carol"):
        services.membership_invite(room=room, by=alice, username=name)
    services.membership_make_owner(room=room, by=alice, username="bob")

    with pytest.raises(ChatError) as caught:
        services.membership_remove(room=room, by=bob, username="alice")
    assert caught.value.code == ErrorCode.FORBIDDEN
    with pytest.raises(ChatError, match="Leave room"):
        services.membership_remove(room=room, by=alice, username="alice")
    services.membership_remove(room=room, by=bob, username="carol")
    assert not access.can_see(carol, room)

    public = services.room_create(name="Open", created_by=alice)
    # Staff act in the rooms they can see (here a public one), but keep an owner there too.
    with pytest.raises(ChatError, match="last owner"):
        services.membership_remove(room=public, by=staff, username="alice")
    with pytest.raises(ChatError, match="not a member"):
        services.membership_remove(room=public, by=staff, username="bob")


def test_a_rename_keeps_the_address_and_refuses_a_name_the_owner_can_see_taken(alice, general):
    room = services.room_create(name="Plans", created_by=alice, topic="old")

    services.room_update(room=room, by=alice, name="  Roadmap ", topic=" next year ")

    fresh = Room.objects.get(pk=room.pk)
    assert (fresh.name, fresh.topic, fresh.slug) == ("Roadmap", "next year", room.slug)
    with pytest.raises(ChatError, match="already exists"):
        services.room_update(room=room, by=alice, name="general", topic="")
    with pytest.raises(ChatError, match="needs a name"):
        services.room_update(room=room, by=alice, name="\u200b", topic="")
    services.room_update(room=room, by=alice, name="ROADMAP", topic="")  # its own name
    assert Room.objects.get(pk=room.pk).name == "ROADMAP"


def test_nobody_runs_a_direct_message(alice, bob):
    dm = services.direct_room_get_or_create(user=alice, other=bob)

    with pytest.raises(ChatError) as caught:
        services.membership_invite(room=dm, by=alice, username="bob")

    assert caught.value.code == ErrorCode.FORBIDDEN


def test_username_suggestions_are_active_names_by_prefix_capped(make_user):
    for name in ["ann", "Anna", "annie", "bob"]:
        make_user(name)
    make_user("anon-gone", is_active=False)
    for i in range(12):
        make_user(f"an{i:02}")

    assert sorted(selectors.usernames_starting(prefix="ANN")) == ["Anna", "ann", "annie"]
    assert len(selectors.usernames_starting(prefix="an")) == selectors.USERNAME_SUGGESTIONS
    assert "anon-gone" not in selectors.usernames_starting(prefix="anon")
    assert selectors.usernames_starting(prefix="  ") == []
