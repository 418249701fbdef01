"""Writes: seq numbering, idempotency, validation and broadcast-after-commit."""

import asyncio
import contextlib
import json
import re
from collections.abc import Iterator

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils.text import slugify

from chat import access, selectors, services
from chat.models import Ban, Membership, Message, Room
from chat.protocol import events as events_module
from chat.protocol.errors import ChatError, ErrorCode
from chat.protocol.events import room_group
from chat.realtime.layer_events import carrier, events_in
from tests.support.factories import DM_LOOKALIKE_NAMES, post_messages
from tests.support.race import run_together

pytestmark = pytest.mark.django_db(transaction=True)

TEST_CHANNEL = "test.listener"


def send(
    *, room: Room, author: AbstractBaseUser, body: str, client_id: str | None
) -> tuple[Message, bool]:
    """One message through `services.messages_create`, as the socket's group commit stores
    it: (message, created), or its refusal raised."""
    (result,) = services.messages_create(
        drafts=[services.MessageDraft(room=room, author=author, body=body, client_id=client_id)]
    )
    if isinstance(result, ChatError):
        raise result
    return result


def test_concurrent_senders_get_gapless_unique_seqs(general, make_user):
    authors = [make_user() for _ in range(8)]

    def send_many(i: int) -> list[int]:
        return [
            send(room=general, author=authors[i], body=f"{i}/{n}", client_id=f"{i}-{n}")[0].seq
            for n in range(15)
        ]

    per_thread = run_together(8, send_many, timeout=60)

    seqs = sorted(seq for seqs in per_thread for seq in seqs)
    assert seqs == list(range(1, 121))
    stored = list(Message.objects.filter(room=general).values_list("seq", flat=True))
    assert sorted(stored) == list(range(1, 121))
    assert Room.objects.get(pk=general.pk).last_seq == 120


def test_the_same_client_id_racing_from_two_threads_stores_one_message(general, alice):
    def race(i: int) -> tuple[int, int, bool]:
        message, created = send(room=general, author=alice, body="race", client_id="one-id")
        return message.pk, message.seq, created

    first, second = run_together(2, race, timeout=60)

    assert first[:2] == second[:2]
    assert sorted([first[2], second[2]]) == [False, True]
    assert Message.objects.filter(room=general).count() == 1
    assert Room.objects.get(pk=general.pk).last_seq == 1


def test_a_client_id_is_per_author_and_per_room(general, make_room, alice, bob):
    other = make_room("other")

    a1, _ = send(room=general, author=alice, body="x", client_id="c")
    b1, _ = send(room=general, author=bob, body="x", client_id="c")
    a2, _ = send(room=other, author=alice, body="x", client_id="c")

    assert len({a1.pk, b1.pk, a2.pk}) == 3
    assert [a1.seq, b1.seq, a2.seq] == [1, 2, 1]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("", ErrorCode.BAD_REQUEST),
        ("   \n\t", ErrorCode.BAD_REQUEST),
        ("nul\x00inside", ErrorCode.BAD_REQUEST),
        # Bodies of characters that show nothing look empty too.
        ("\u200b\u200c\u200d\u2060", ErrorCode.BAD_REQUEST),  # zero-width space, joiners
        ("\u2800\u2800", ErrorCode.BAD_REQUEST),  # braille blank
        ("\u3164 \uffa0", ErrorCode.BAD_REQUEST),  # Hangul fillers
        ("\ufeff\u202e\u00ad", ErrorCode.BAD_REQUEST),  # BOM, bidi override, soft hyphen
        ("\u0301\u0301", ErrorCode.BAD_REQUEST),  # combining marks with nothing to mark
        ("x" * 21, ErrorCode.TOO_LONG),
    ],
)
@override_settings(CHAT_MAX_MESSAGE_LENGTH=20)
def test_invalid_bodies_are_refused_and_store_nothing(general, alice, body, code):
    with pytest.raises(ChatError) as refused:
        send(room=general, author=alice, body=body, client_id="c")

    assert refused.value.code == code
    assert not Message.objects.exists()
    assert Room.objects.get(pk=general.pk).last_seq == 0


@pytest.mark.parametrize("body", ["e\u0301", "hi\u200b", "\u2800x", "\U0001f44d", "\u3000."])
def test_bodies_with_anything_visible_are_stored(general, alice, body):
    message, _ = send(room=general, author=alice, body=body, client_id=None)

    assert message.body == body


@pytest.mark.parametrize("body", ["", "  ", "\u200b\u2800"])
def test_an_announcement_that_shows_nothing_is_refused(staff, body):
    with pytest.raises(ChatError, match="cannot be empty"):
        services.announcement_create(body=body, by=staff)


def test_room_create_slugs_the_name_and_makes_the_creator_a_member(alice):
    room = services.room_create(name="  Django Talk! ", created_by=alice, topic="ORM and all")

    assert (room.name, room.topic) == ("Django Talk!", "ORM and all")
    assert re.fullmatch(r"django-talk-[0-9a-f]{6}", room.slug)
    assert list(room.members.all()) == [alice]
    assert room.created_by == alice


@pytest.mark.parametrize("name", ["!!!", "   "])
def test_room_create_refuses_a_name_without_letters_or_digits(alice, name):
    with pytest.raises(ChatError):
        services.room_create(name=name, created_by=alice)
    assert not Room.objects.exclude(slug="general").exists()


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("日本語チーム", r"room-[0-9a-f]{6}"),
        ("Ελληνικά", r"room-[0-9a-f]{6}"),
        ("Café Ünïcode", r"cafe-unicode-[0-9a-f]{6}"),
        ("日本語 team", r"team-[0-9a-f]{6}"),
    ],
)
def test_room_create_takes_names_in_any_script(alice, name, slug):
    room = services.room_create(name=name, created_by=alice)

    assert room.name == name
    assert re.fullmatch(slug, room.slug)
    assert Room.objects.get(slug=room.slug).name == name
    assert room.get_absolute_url() == f"/chat/{room.slug}/"


@pytest.mark.parametrize("name", ["🎉🎉", "🇯🇵 ✨", "★ → ☆", "\u200b"])
def test_room_create_refuses_a_name_of_only_symbols_or_emoji_clearly(alice, name):
    with pytest.raises(ChatError, match="at least one letter or digit"):
        services.room_create(name=name, created_by=alice)
    assert not Room.objects.exclude(slug="general").exists()


def test_two_unspellable_names_get_their_own_rooms_even_beside_a_room_slugged_room(
    alice, make_room
):
    make_room("room", name="Room")

    first = services.room_create(name="日本語チーム", created_by=alice)
    second = services.room_create(name="Ελληνικά", created_by=alice)

    assert len({first.slug, second.slug, "room"}) == 3
    with pytest.raises(ChatError, match="already exists"):
        services.room_create(name="日本語チーム", created_by=alice)
    assert Room.objects.filter(name="日本語チーム").count() == 1


@pytest.mark.parametrize("name", ["dm 日本語", "DM-Ελληνικά"])
def test_a_unicode_name_in_the_direct_message_namespace_is_still_refused(alice, name):
    with pytest.raises(ChatError, match="kept for direct messages"):
        services.room_create(name=name, created_by=alice)
    assert not Room.objects.exclude(slug="general").exists()


def test_room_create_refuses_a_taken_slug(alice, general):
    with pytest.raises(ChatError, match="already exists"):
        services.room_create(name="General", created_by=alice)


# Names nobody may claim, and names that must not reveal a room -------------------------------


@pytest.mark.parametrize("name", DM_LOOKALIKE_NAMES)
def test_room_create_refuses_every_name_in_the_direct_message_namespace(alice, name):
    with pytest.raises(ChatError, match="kept for direct messages"):
        services.room_create(name=name, created_by=alice)
    assert not Room.objects.filter(slug__istartswith="dm").exists()


@pytest.mark.parametrize("hidden", ["private room", "direct message"])
def test_room_create_answers_alike_whether_or_not_a_hidden_room_holds_the_name(
    alice, bob, make_user, make_room, hidden
):
    carol = make_user("carol")
    if hidden == "private room":
        taken = make_room("secret", name="Secret", is_private=True, members=(bob,))
    else:
        taken = services.direct_room_get_or_create(user=bob, other=carol)
    free_name = "Unheard Of"

    made = services.room_create(name=taken.name, created_by=alice)
    free = services.room_create(name=free_name, created_by=alice)

    # Both are made the same way: the slug is the name's plus a random suffix, whatever exists.
    assert re.fullmatch(slugify(taken.name) + r"-[0-9a-f]{6}", made.slug)
    assert re.fullmatch(r"unheard-of-[0-9a-f]{6}", free.slug)
    assert not made.is_direct
    assert list(made.members.all()) == [alice]
    assert Room.objects.get(pk=taken.pk).name == taken.name


def test_room_create_still_refuses_a_name_the_creator_can_see(alice, make_room):
    make_room("mine", name="Mine", is_private=True, members=(alice,))
    make_room("old", name="Old", is_archived=True)

    for name in ["mine", "OLD"]:
        with pytest.raises(ChatError, match="already exists"):
            services.room_create(name=name, created_by=alice)


# Direct messages -------------------------------------------------------------------------------


def test_a_dm_is_found_by_its_pair_never_by_a_room_that_took_its_slug(alice, make_user, make_room):
    carol, attacker = make_user("carol"), make_user("mallory")
    low, high = sorted([alice.pk, carol.pk])
    squat = make_room(f"dm-{low}-{high}", name="Dm", members=(attacker,))

    room = services.direct_room_get_or_create(user=alice, other=carol)
    again = services.direct_room_get_or_create(user=carol, other=alice)

    assert room == again != squat
    assert room.is_direct
    assert room.is_private
    assert set(room.members.all()) == {alice, carol}
    assert re.fullmatch(r"dm-[0-9a-f]{16}", room.slug)
    assert set(Room.objects.get(pk=squat.pk).members.all()) == {attacker}


def test_two_first_opens_at_once_make_one_dm(alice, bob):
    pair = [(alice, bob), (bob, alice)]

    rooms = run_together(
        2,
        lambda i: services.direct_room_get_or_create(user=pair[i][0], other=pair[i][1]),
        timeout=60,
    )

    assert rooms[0] == rooms[1]
    assert Room.objects.filter(is_direct=True).count() == 1


def test_the_database_holds_one_dm_per_pair_and_keys_only_dms(alice, bob):
    services.direct_room_get_or_create(user=alice, other=bob)
    key = f"{min(alice.pk, bob.pk)}:{max(alice.pk, bob.pk)}"

    with pytest.raises(IntegrityError), transaction.atomic():  # two first opens at once
        Room.objects.create(slug="dm-other", is_direct=True, is_private=True, direct_key=key)
    # A group DM someone left, whose people had a DM already, goes on without a key.
    Room.objects.create(slug="dm-nokey", is_direct=True, is_private=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        Room.objects.create(slug="dm-public", is_direct=True, direct_key="8:9")
    with pytest.raises(IntegrityError), transaction.atomic():
        Room.objects.create(slug="not-a-dm", direct_key="8:9")


# Broadcast after commit --------------------------------------------------------------------


async def listen(room: Room) -> None:
    await get_channel_layer().group_add(carrier(room_group(room.pk)), TEST_CHANNEL)


async def heard() -> list[dict]:
    """The events that reached the test's channel, in order; frames queued together travel
    as one layer message (chat/realtime/publisher.py), whose events count one by one."""
    layer = get_channel_layer()
    events = []
    while True:
        try:
            event = await asyncio.wait_for(layer.receive(TEST_CHANNEL), 0.2)
        except TimeoutError:
            return events
        events.extend(events_in(event))


async def test_a_message_broadcasts_only_after_commit(general, alice):
    await listen(general)

    def rolled_back() -> None:
        with transaction.atomic():
            send(room=general, author=alice, body="undone", client_id="u")
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        await database_sync_to_async(rolled_back)()
    assert await heard() == []

    await database_sync_to_async(send)(room=general, author=alice, body="kept", client_id="k")
    (event,) = await heard()
    assert '"body":"kept"' in event["text"]
    assert '"seq":1' in event["text"]  # the rolled-back send left no gap


async def test_message_delete_hides_the_message_and_tells_the_room_once(general, alice):
    message, _ = await database_sync_to_async(send)(
        room=general, author=alice, body="oops", client_id="d"
    )
    await listen(general)

    first = await database_sync_to_async(services.message_delete)(message=message)
    again = await database_sync_to_async(services.message_delete)(message=message)

    assert (first, again) == (True, False)
    (event,) = await heard()
    assert event["text"] == (
        f'{{"type":"message_deleted","room":"general","id":{message.pk},"seq":2}}'
    )
    # The deletion took seq 2; the second, refused one gave its seq back.
    assert await database_sync_to_async(lambda: Room.objects.get(pk=general.pk).last_seq)() == 2


async def test_room_archive_closes_the_room_once(general):
    await listen(general)

    first = await database_sync_to_async(services.room_archive)(room=general)
    again = await database_sync_to_async(services.room_archive)(room=general)

    assert (first, again) == (True, False)
    (event,) = await heard()
    assert event["type"] == "chat.leave_room"
    assert event["room"] == "general"
    assert event["announce"] is False
    assert event["text"] == (
        '{"type":"room_closed","room":"general","reason":"This room has been archived."}'
    )
    assert await database_sync_to_async(lambda: Room.objects.get(pk=general.pk).is_archived)()


async def test_broadcasts_from_the_database_thread_keep_their_commit_order(general, alice):
    await listen(general)

    def post_many() -> None:
        for n in range(30):
            send(room=general, author=alice, body=f"n{n}", client_id=f"c{n}")

    await database_sync_to_async(post_many)()

    seqs = [json.loads(event["text"])["message"]["seq"] for event in await heard()]
    assert seqs == list(range(1, 31))


@override_settings(CHAT_MAX_MESSAGE_LENGTH=20)
def test_a_group_commit_gives_each_message_its_own_result(general, make_room, alice, bob):
    archived = make_room("old", is_archived=True)
    drafts = [
        services.MessageDraft(room=general, author=alice, body="one", client_id="a"),
        services.MessageDraft(room=general, author=alice, body="x" * 21, client_id="b"),
        services.MessageDraft(room=general, author=bob, body="two", client_id="a"),
        services.MessageDraft(room=archived, author=bob, body="late", client_id="c"),
        services.MessageDraft(room=general, author=alice, body="retry", client_id="a"),
        services.MessageDraft(room=general, author=bob, body="three", client_id="d"),
    ]

    results = services.messages_create(drafts=drafts)

    first, too_long, second, closed, retried, third = results
    assert (first[0].seq, first[1]) == (1, True)
    assert too_long.code == ErrorCode.TOO_LONG
    assert (second[0].seq, second[1]) == (2, True)
    assert closed.code == ErrorCode.ROOM_ARCHIVED
    assert (retried[0].pk, retried[1]) == (first[0].pk, False)  # the same client_id again
    assert (third[0].seq, third[1]) == (3, True)
    assert list(Message.objects.order_by("seq").values_list("body", flat=True)) == [
        "one",
        "two",
        "three",
    ]
    assert Room.objects.get(pk=general.pk).last_seq == 3
    assert Room.objects.get(pk=archived.pk).last_seq == 0


# Membership ----------------------------------------------------------------------------------


def test_joining_a_public_room_makes_a_membership_once_and_counts_what_follows(alice, bob, general):
    post_messages(general, bob, 3)
    first = services.membership_join(room=general, user=alice)
    post_messages(general, bob, 2)
    again = services.membership_join(room=general, user=alice)

    assert first.pk == again.pk
    assert list(general.members.all()) == [alice]
    assert selectors.room_unread(room=general, user=alice) == (3, 2)


def test_the_banned_cannot_join(alice, general):
    Ban.objects.create(room=general, user=alice)

    with pytest.raises(ChatError) as refused:
        services.membership_join(room=general, user=alice)

    assert refused.value.code == ErrorCode.FORBIDDEN
    assert not general.members.exists()


def test_a_private_room_cannot_be_joined_by_a_non_member_and_looks_absent(alice, bob, make_room):
    team = make_room("team", is_private=True, members=(bob,))

    with pytest.raises(ChatError) as refused:
        services.membership_join(room=team, user=alice)

    assert refused.value.code == ErrorCode.NOT_FOUND
    assert list(team.members.all()) == [bob]


def test_an_archived_room_cannot_be_joined(alice, make_room):
    old = make_room("old", is_archived=True)

    with pytest.raises(ChatError) as refused:
        services.membership_join(room=old, user=alice)

    assert refused.value.code == ErrorCode.ROOM_ARCHIVED


def test_leaving_a_room_ends_the_membership_and_leaving_again_is_false(alice, general):
    services.membership_join(room=general, user=alice)

    assert services.membership_leave(room=general, user=alice) is True
    assert services.membership_leave(room=general, user=alice) is False
    assert not general.members.exists()


def test_leaving_a_private_room_gives_up_access(alice, bob, make_room):
    team = make_room("team", is_private=True, members=(alice, bob))

    services.membership_leave(room=team, user=alice)

    assert not access.can_see(alice, team)


def test_a_direct_message_of_two_cannot_be_left(alice, bob, make_user):
    dm = services.direct_room_get_or_create(user=alice, other=bob)
    carol = make_user("carol")
    group = services.direct_group_get_or_create(user=alice, others=[bob, carol])
    services.membership_leave(room=group, user=carol)  # now a DM of two as well

    for room in (dm, group):
        before = Room.objects.values_list("name", "direct_key").get(pk=room.pk)
        with pytest.raises(ChatError) as refused:
            services.membership_leave(room=room, user=alice)

        assert refused.value.code == ErrorCode.BAD_REQUEST
        assert refused.value.message == services.DIRECT_PAIR_LEAVES
        assert set(room.members.all()) == {alice, bob}
        assert Room.objects.values_list("name", "direct_key").get(pk=room.pk) == before


def dm_key(*people: AbstractBaseUser) -> str:
    return ":".join(str(pk) for pk in sorted(u.pk for u in people))


def test_leaving_a_group_dm_makes_it_the_dm_of_the_people_who_stay(alice, bob, make_user):
    carol, dave = make_user("carol"), make_user("dave")
    group = services.direct_group_get_or_create(user=alice, others=[bob, carol, dave])
    post_messages(group, carol, 1)

    assert services.membership_leave(room=group, user=carol) is True

    group.refresh_from_db()
    assert (group.name, group.direct_key) == ("alice, bob & dave", dm_key(alice, bob, dave))
    assert not access.can_see(carol, group)
    # "Message" to those three finds it, history and all; carol's set of four is new.
    assert services.direct_group_get_or_create(user=dave, others=[alice, bob]) == group
    again = services.direct_group_get_or_create(user=carol, others=[alice, bob, dave])
    assert again != group
    assert not again.messages.exists()

    services.membership_leave(room=group, user=dave)
    group.refresh_from_db()
    assert (group.name, group.direct_key) == ("alice & bob", dm_key(alice, bob))
    assert services.direct_room_get_or_create(user=bob, other=alice) == group


def test_a_left_group_dm_whose_people_have_a_dm_goes_on_without_a_key(alice, bob, make_user):
    carol = make_user("carol")
    pair = services.direct_room_get_or_create(user=alice, other=bob)
    group = services.direct_group_get_or_create(user=alice, others=[bob, carol])

    services.membership_leave(room=group, user=carol)

    group.refresh_from_db()
    assert (group.name, group.direct_key, group.is_direct) == ("alice & bob", None, True)
    assert services.direct_room_get_or_create(user=alice, other=bob) == pair
    for user in (alice, bob):  # still in both sidebars, with its history
        assert set(selectors.rooms_visible_to(user=user, direct=True)) == {pair, group}
        assert access.can_post(user, group)


def test_a_member_adds_people_to_a_dm_as_a_new_conversation(alice, bob, make_user):
    carol, dave = make_user("carol"), make_user("dave")
    pair = services.direct_room_get_or_create(user=alice, other=bob)
    post_messages(pair, alice, 1)

    group = services.direct_people_add(room=pair, by=bob, usernames=["carol", " @dave", "bob"])

    assert group != pair
    assert group.direct_key == dm_key(alice, bob, carol, dave)
    assert set(group.members.all()) == {alice, bob, carol, dave}
    assert not group.messages.exists()  # the pair's history stays the pair's
    assert set(pair.members.all()) == {alice, bob}
    # Adding the same people again, from either room, opens the same conversation.
    assert services.direct_people_add(room=pair, by=alice, usernames=["dave", "carol"]) == group


@pytest.mark.parametrize(
    ("adding", "message"),
    [
        ([], "Name someone to add."),
        (["bob"], "They are in this conversation already."),
        (["nobody"], "No user called 'nobody'."),
        ([f"p{i}" for i in range(7)], "A direct message holds at most 8 people."),
    ],
)
def test_adding_people_refuses_what_makes_no_new_conversation(
    alice, bob, make_user, adding, message
):
    for i in range(7):
        make_user(f"p{i}")
    pair = services.direct_room_get_or_create(user=alice, other=bob)
    rooms = Room.objects.count()

    with pytest.raises(ChatError) as refused:
        services.direct_people_add(room=pair, by=alice, usernames=adding)

    assert (refused.value.code, refused.value.message) == (ErrorCode.BAD_REQUEST, message)
    assert Room.objects.count() == rooms


def test_only_a_member_adds_people_to_a_dm_and_only_to_a_dm(alice, bob, make_user, general):
    carol = make_user("carol")
    pair = services.direct_room_get_or_create(user=alice, other=bob)
    general.members.add(alice)

    for room, by in ((pair, carol), (general, alice)):
        with pytest.raises(ChatError) as refused:
            services.direct_people_add(room=room, by=by, usernames=["carol", "bob"])
        assert refused.value.code == ErrorCode.NOT_FOUND
    assert Room.objects.filter(is_direct=True).count() == 1


def test_only_a_member_stars_a_room(alice, general):
    with pytest.raises(ChatError):
        services.membership_star(room=general, user=alice, starred=True)

    services.membership_join(room=general, user=alice)
    starred = services.membership_star(room=general, user=alice, starred=True)

    assert starred.starred is True
    assert Membership.objects.get(room=general, user=alice).starred is True


def test_a_new_account_joins_general_and_nothing_when_general_is_archived(alice, bob, general):
    services.user_welcome(user=alice)
    Room.objects.filter(pk=general.pk).update(is_archived=True)
    services.user_welcome(user=bob)

    assert list(general.members.all()) == [alice]


def test_a_group_direct_message_is_one_room_per_set_of_people_in_any_order(alice, bob, make_user):
    carol, dave = make_user("carol"), make_user("dave")

    room = services.direct_group_get_or_create(user=alice, others=[carol, bob])
    again = services.direct_group_get_or_create(user=carol, others=[bob, alice, alice])
    pair = services.direct_room_get_or_create(user=alice, other=bob)
    other_group = services.direct_group_get_or_create(user=alice, others=[bob, dave])

    assert again == room
    assert len({room.pk, pair.pk, other_group.pk}) == 3
    assert (room.is_direct, room.is_private, room.name) == (True, True, "alice, bob & carol")
    assert set(room.members.values_list("username", flat=True)) == {"alice", "bob", "carol"}
    assert room.direct_key == f"{alice.pk}:{bob.pk}:{carol.pk}"


def test_a_group_direct_message_holds_two_to_eight_people(alice, make_user):
    people = [make_user(f"p{i}") for i in range(8)]

    biggest = services.direct_group_get_or_create(user=alice, others=people[:7])
    with pytest.raises(ChatError, match="at most 8 people"):
        services.direct_group_get_or_create(user=alice, others=people)
    with pytest.raises(ChatError, match="needs another user"):
        services.direct_group_get_or_create(user=alice, others=[alice])

    assert biggest.members.count() == 8
    assert Room.objects.filter(is_direct=True).count() == 1


def _statements_to_store(room: Room, author: AbstractBaseUser, count: int, tag: str) -> int:
    drafts = [
        services.MessageDraft(room=room, author=author, body=f"{tag} {n}", client_id=f"{tag}{n}")
        for n in range(count)
    ]
    with CaptureQueriesContext(connection) as queries:
        results = services.messages_create(drafts=drafts)
    assert all(created for _, created in results)
    return len(queries.captured_queries)


def test_a_batch_of_plain_messages_costs_the_same_statements_whatever_its_size(
    general, make_room, make_user
):
    """Per batch, the authors, one seq bump (which also reads who hears every message)
    and one INSERT, on SQLite an UPDATE per room and one lookup of the listeners: no
    statement (nor savepoint) per message."""
    other = make_room("other")
    authors = [make_user() for _ in range(3)]
    Membership.objects.create(room=general, user=authors[1], notify=Membership.Notify.ALL)

    two = _statements_to_store(general, authors[0], 2, "a")
    twenty = _statements_to_store(general, authors[0], 20, "b")
    drafts = [
        services.MessageDraft(room=room, author=author, body="x", client_id=f"c{n}")
        for n, (room, author) in enumerate(
            (room, author) for room in (general, other) for author in authors
        )
    ]
    with CaptureQueriesContext(connection) as queries:
        services.messages_create(drafts=drafts)

    # BEGIN and COMMIT, then the authors, the bump and the INSERT (SQLite: a bump per
    # room and the listeners' lookup).
    assert two == twenty == 2 + (3 if connection.vendor == "postgresql" else 4)
    assert not any("SAVEPOINT" in q["sql"] for q in queries.captured_queries)
    rooms_extra = 0 if connection.vendor == "postgresql" else 1  # SQLite: an UPDATE per room
    assert len(queries.captured_queries) == two + rooms_extra
    assert Room.objects.get(pk=general.pk).last_seq == 25
    assert list(
        Message.objects.filter(room=general).order_by("seq").values_list("seq", flat=True)
    ) == list(range(1, 26))


@contextlib.contextmanager
def statements_starting(prefix: str) -> Iterator[list[tuple[str, int]]]:
    """The (text, number of parameters) of each statement run meanwhile that starts so."""
    seen: list[tuple[str, int]] = []

    def record(execute, sql, params, many, context):
        if sql.startswith(prefix):
            seen.append((sql, len(params)))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        yield seen


def test_the_counters_statement_is_one_text_whatever_the_batch_so_the_driver_converts_it_once(
    general, make_room, make_user
):
    """On PostgreSQL the batch's rooms and authors go in arrays, not a placeholder each:
    psycopg converts a statement's text once and keeps it only up to 50 parameters."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite bumps each room's counter in an UPDATE of its own")
    rooms = [general, make_room("other"), make_room("third")]
    authors = [make_user() for _ in range(20)]
    with statements_starting("WITH locked") as statements:
        services.messages_create(
            drafts=[
                services.MessageDraft(room=general, author=authors[0], body="one", client_id=None)
            ]
        )
        services.messages_create(
            drafts=[
                services.MessageDraft(room=room, author=author, body="x", client_id=f"{n}")
                for n, (room, author) in enumerate(
                    (room, author) for room in rooms for author in authors
                )
            ]
        )

    assert len(statements) == 2
    assert statements[0] == statements[1]
    assert statements[0][1] <= 50
    assert Room.objects.get(pk=general.pk).last_seq == 21


def test_a_batchs_insert_is_one_text_whatever_its_size_and_stores_what_it_returns(
    general, make_room, make_user
):
    """On PostgreSQL the plain messages go in one INSERT whose text and parameters do not
    grow with the batch (the rows are one JSON parameter), and each message returned is its
    row: the id, created_at and every other column as stored."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite stores a batch with bulk_create")
    rooms = [general, make_room("other"), make_room("third")]
    authors = [make_user() for _ in range(20)]

    bodies = ["one", "*two* @nobody", 'a "quoted" \\ body\nline', "日本語 ✓ 🎉 e\u0301", "x" * 300]
    with statements_starting(f'INSERT INTO "{Message._meta.db_table}"') as inserts:
        first = services.messages_create(
            drafts=[
                services.MessageDraft(room=general, author=authors[0], body="one", client_id=None)
            ]
        )
        many = services.messages_create(
            drafts=[
                services.MessageDraft(
                    room=room, author=author, body=bodies[n % len(bodies)], client_id=f"{n}"
                )
                for n, (room, author) in enumerate(
                    (room, author) for room in rooms for author in authors
                )
            ]
        )

    assert len(inserts) == 2
    assert inserts[0] == inserts[1]
    assert inserts[0][1] <= 50
    fields = [field.attname for field in Message._meta.concrete_fields if not field.generated]
    for message, created in first + many:
        assert created
        assert not message._state.adding
        stored = Message.objects.get(pk=message.pk)
        assert {f: getattr(message, f) for f in fields} == {f: getattr(stored, f) for f in fields}
    assert sorted(m.body for m, _ in many) == sorted(bodies[n % 5] for n in range(60))


def test_a_message_field_with_nothing_to_insert_is_refused_at_the_first_batch(monkeypatch):
    """A column added to Message that needs a value the batch's INSERT does not give would
    fail every plain send: building the statement refuses it, naming the field."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite stores a batch with bulk_create")
    files = Message._meta.get_field("files")
    monkeypatch.setattr(files, "has_default", lambda: False)
    with pytest.raises(ImproperlyConfigured, match=r"Message\.files"):
        services._one_statement_insert.__wrapped__()


def test_a_batch_meeting_a_stored_client_id_gets_the_original_and_skips_no_seq(
    general, make_room, alice, bob
):
    other = make_room("other")
    (first,) = services.messages_create(
        drafts=[services.MessageDraft(room=general, author=alice, body="one", client_id="a")]
    )
    drafts = [
        services.MessageDraft(room=other, author=bob, body="elsewhere", client_id="a"),
        services.MessageDraft(room=general, author=bob, body="two", client_id="b"),
        services.MessageDraft(room=general, author=alice, body="one again", client_id="a"),
        services.MessageDraft(room=general, author=alice, body="three", client_id="c"),
    ]

    elsewhere, second, retried, third = services.messages_create(drafts=drafts)

    assert (retried[0].pk, retried[0].body, retried[1]) == (first[0].pk, "one", False)
    assert [(m.seq, created) for m, created in (second, third)] == [(2, True), (3, True)]
    assert (elsewhere[0].seq, elsewhere[1]) == (1, True)
    assert Room.objects.get(pk=general.pk).last_seq == 3
    assert Message.objects.filter(room=general).count() == 3


def test_a_batch_refuses_only_the_drafts_of_authors_who_may_not_write_and_skips_no_seq(
    general, alice, bob, make_user
):
    carol = make_user("carol")
    Ban.objects.create(room=general, user=bob)
    drafts = [
        services.MessageDraft(room=general, author=alice, body="one", client_id="1"),
        services.MessageDraft(room=general, author=bob, body="banned", client_id="2"),
        services.MessageDraft(room=general, author=carol, body="two", client_id="3"),
        services.MessageDraft(room=general, author=bob, body="banned", client_id="4"),
        services.MessageDraft(room=general, author=alice, body="three", client_id="5"),
    ]

    results = services.messages_create(drafts=drafts)

    assert [r.code for r in results if isinstance(r, ChatError)] == [ErrorCode.FORBIDDEN] * 2
    assert [r[0].seq for r in results if not isinstance(r, ChatError)] == [1, 2, 3]
    assert Room.objects.get(pk=general.pk).last_seq == 3
    assert list(Message.objects.order_by("seq").values_list("body", flat=True)) == [
        "one",
        "two",
        "three",
    ]


def test_a_room_with_a_reply_in_the_batch_keeps_its_drafts_in_order(general, alice, bob):
    (root,) = services.messages_create(
        drafts=[services.MessageDraft(room=general, author=alice, body="root", client_id="r")]
    )
    drafts = [
        services.MessageDraft(
            room=general, author=bob, body="reply", client_id="1", reply_to=root[0].pk
        ),
        services.MessageDraft(room=general, author=alice, body="plain", client_id="2"),
    ]

    reply, plain = services.messages_create(drafts=drafts)

    assert (reply[0].seq, reply[0].reply_to_id) == (2, root[0].pk)
    assert plain[0].seq == 3


def test_a_batch_notifies_each_message_once_to_the_members_who_hear_every_message(
    general, make_room, alice, bob, make_user, monkeypatch
):
    carol = make_user("carol")  # banned
    dave = make_user("dave", is_active=False)  # deactivated
    erin = make_user("erin")  # hears mentions only
    other = make_room("other", members=(bob,))
    Membership.objects.filter(room=other, user=bob).update(notify=Membership.Notify.ALL)
    for user in (bob, carol, dave):
        Membership.objects.create(room=general, user=user, notify=Membership.Notify.ALL)
    Membership.objects.create(room=general, user=erin, notify=Membership.Notify.MENTIONS)
    Ban.objects.create(room=general, user=carol)
    sent: list[tuple[str, str, str]] = []

    def record(group: str, event: dict) -> None:
        frame = json.loads(event["text"])
        if frame["type"] == "notification":
            sent.append((group, frame["room"], frame["message"]["body"]))

    monkeypatch.setattr(events_module, "publish", record)
    drafts = [
        services.MessageDraft(room=general, author=alice, body="one", client_id="1"),
        services.MessageDraft(room=other, author=alice, body="two", client_id="2"),
        services.MessageDraft(room=general, author=bob, body="mine", client_id="3"),
    ]

    services.messages_create(drafts=drafts)

    bobs = f"user.{bob.pk}"
    assert sorted(sent) == [(bobs, "general", "one"), (bobs, "other", "two")]


def test_a_batch_for_a_room_deleted_meanwhile_refuses_its_drafts_and_stores_the_others(
    general, make_room, alice
):
    gone = make_room("gone")
    drafts = [
        services.MessageDraft(room=gone, author=alice, body="lost", client_id="1"),
        services.MessageDraft(room=general, author=alice, body="kept", client_id="2"),
    ]
    Room.objects.filter(pk=gone.pk).delete()

    lost, kept = services.messages_create(drafts=drafts)

    assert lost.code == ErrorCode.NOT_FOUND
    assert (kept[0].seq, kept[1]) == (1, True)
