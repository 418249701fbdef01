"""Reads: who sees which room, and what each page of messages costs."""

import pytest
from django.contrib.auth.models import AnonymousUser

from chat import selectors, services
from chat.models import Ban, Room
from chat.protocol import events
from chat.protocol.errors import ChatError, ErrorCode
from tests.support.factories import post_messages

pytestmark = pytest.mark.django_db


def test_a_join_reads_the_counter_and_one_page_in_two_queries(
    general, alice, bob, django_assert_num_queries
):
    post_messages(general, alice, 30)
    post_messages(general, bob, 30)

    with django_assert_num_queries(2):  # an anonymous reader has no read mark to look up
        [page] = selectors.room_join_pages([(general, AnonymousUser(), None)])
        authors = {m.author.username for m in page.messages}  # loaded with the page

    assert authors == {"alice", "bob"}
    assert [m.seq for m in page.messages] == list(range(11, 61))
    assert page.last_seq == 60


def test_a_signed_in_join_also_says_where_the_user_left_off_in_two_more_queries(
    general, alice, bob, django_assert_num_queries
):
    general.members.add(alice)  # unread counts are for one's own rooms
    post_messages(general, bob, 5)
    services.room_mark_read(room=general, user=alice, seq=3)
    root = general.messages.get(seq=2)
    services.thread_mark_read(room=general, root_id=root.pk, user=alice, seq=4)

    with django_assert_num_queries(4):  # the room's read mark and count; its thread marks
        [page] = selectors.room_join_pages([(general, alice, None)])

    assert (page.read, page.unread) == (3, 2)
    assert page.thread_reads == {root.pk: 4}
    assert page.last_seq == 5


def test_joins_read_together_share_each_rooms_page_and_keep_their_own_marks(
    general, alice, bob, django_assert_num_queries
):
    other = Room.objects.create(name="Other", slug="other", created_by=alice)
    general.members.add(alice)
    post_messages(general, bob, 5)
    post_messages(other, bob, 2)
    services.room_mark_read(room=general, user=alice, seq=3)
    anonymous = AnonymousUser()
    joins = [(general, anonymous, None)] * 50 + [(other, anonymous, None), (general, alice, None)]
    joins += [(general, anonymous, 4), (general, bob, 4), (general, alice, None)]

    # The counters; general's page, other's, the replay from 4; alice's and bob's marks
    # (each: the read mark and count, the thread marks), alice's once for her two tabs.
    with django_assert_num_queries(1 + 3 + 2 * 2):
        pages = selectors.room_join_pages(joins)

    assert [m.seq for m in pages[0].messages] == [1, 2, 3, 4, 5]
    assert pages[0].messages is pages[49].messages  # read once, shared
    assert (pages[50].last_seq, [m.seq for m in pages[50].messages]) == (2, [1, 2])
    assert (pages[51].read, pages[51].unread) == (3, 2)  # alice's own
    assert (pages[49].read, pages[49].unread) == (None, 0)
    assert [m.seq for m in pages[52].messages] == [5] == [m.seq for m in pages[53].messages]
    assert pages[53].read is None  # bob never marked it read
    assert (pages[54].read, pages[54].unread) == (3, 2)  # alice's second tab


def test_a_room_gone_before_its_join_is_read_refuses_that_join_alone(general, alice):
    other = Room.objects.create(name="Other", slug="other", created_by=alice)
    gone = Room.objects.get(pk=other.pk)
    other.delete()

    refused, page = selectors.room_join_pages([(gone, alice, None), (general, alice, None)])

    assert isinstance(refused, ChatError)
    assert refused.code == ErrorCode.NOT_FOUND
    assert page.last_seq == general.last_seq


def test_room_checks_read_together_look_rooms_up_once_and_ask_each_user_alone(
    general, alice, bob, make_room, django_assert_num_queries
):
    """The family of refusals, each for its own check only: a slug that cannot be one, a room
    that does not exist, one the user may not see, a ban, an archived room."""
    make_room("secret", is_private=True, members=(alice,))
    make_room("old", is_archived=True)
    Ban.objects.create(room=general, user=bob)
    anonymous = AnonymousUser()
    checks = [("general", anonymous)] * 20 + [("general", alice), ("general", bob)]
    checks += [("no such", alice), ("missing", alice), ("secret", bob), ("secret", alice)]
    checks += [("old", alice)]

    # The rooms; then alice's and bob's bans in general, bob's and alice's membership of
    # secret, alice's ban in secret, her ban in old: only signed-in users cost queries.
    with django_assert_num_queries(1 + 2 + 2 + 1 + 1):
        answers = selectors.rooms_joinable(checks)

    rooms = answers[:21]
    assert all(room.pk == general.pk for room in rooms)
    assert len({id(room) for room in rooms}) == len(rooms)  # no two sockets share one
    codes = [answer.code for answer in answers[21:] if isinstance(answer, ChatError)]
    assert codes == [
        ErrorCode.FORBIDDEN,  # bob's ban
        ErrorCode.NOT_FOUND,  # not a slug: not even looked up
        ErrorCode.NOT_FOUND,  # no such room
        ErrorCode.NOT_FOUND,  # private, and bob is no member: never revealed
        ErrorCode.ROOM_ARCHIVED,
    ]
    assert answers[25].slug == "secret"  # alice is a member


def test_deleted_messages_are_in_no_page_but_a_replay_carries_the_deletion(general, alice):
    post_messages(general, alice, 5)
    services.message_delete(message=general.messages.get(seq=3))

    latest = selectors.messages_latest(room=general, limit=50)
    since = selectors.messages_since(room=general, seq=1, limit=50)
    before = selectors.messages_before(room=general, seq=5, limit=50)

    assert [m.seq for m in latest.messages] == [1, 2, 4, 5]
    assert [m.seq for m in before.messages] == [1, 2, 4]
    # A client that has seen up to seq 1 learns of 2, 4, 5 and of the deletion of 3 (seq 6).
    assert [(m.seq, m.rev) for m in since.messages] == [(2, 2), (4, 4), (5, 5), (3, 6)]
    gone = events.message_dict(since.messages[-1])
    assert gone["deleted"] is True
    assert gone["body"] == ""


def test_a_replay_is_ordered_by_latest_change_and_pages_by_it(general, alice):
    post_messages(general, alice, 4)
    services.message_edit(
        room=general, message_id=general.messages.get(seq=2).pk, editor=alice, body="two, edited"
    )
    services.message_edit(
        room=general, message_id=general.messages.get(seq=1).pk, editor=alice, body="one, edited"
    )

    first = selectors.messages_since(room=general, seq=2, limit=2)
    rest = selectors.messages_since(room=general, seq=first.messages[-1].rev, limit=2)

    assert [(m.seq, m.rev) for m in first.messages] == [(3, 3), (4, 4)]
    assert first.has_more
    assert [(m.seq, m.rev, m.body) for m in rest.messages] == [
        (2, 5, "two, edited"),
        (1, 6, "one, edited"),
    ]
    assert not rest.has_more


def test_a_room_check_says_archived_only_to_those_who_may_see_it(alice, bob, make_room):
    make_room("shut", is_private=True, is_archived=True, members=(alice,))

    member, outsider = selectors.rooms_joinable([("shut", alice), ("shut", bob)])

    assert isinstance(member, ChatError)
    assert isinstance(outsider, ChatError)
    assert member.code == ErrorCode.ROOM_ARCHIVED
    assert outsider.code == ErrorCode.NOT_FOUND


def test_rooms_visible_to_lists_each_private_room_once(alice, bob, make_room, general):
    make_room("team", is_private=True, members=(alice, bob))

    assert [r.slug for r in selectors.rooms_visible_to(user=alice)] == ["general", "team"]


def test_unread_counts_others_messages_after_the_users_mark_in_rooms_they_read(
    general, alice, bob, make_room
):
    other = make_room("other", members=(alice,))
    general.members.add(alice)
    post_messages(general, bob, 5)
    post_messages(general, alice, 2)  # one's own messages are never unread
    post_messages(other, bob, 3)  # alice never opened it: nothing unread there
    services.room_mark_read(room=general, user=alice, seq=2)
    services.message_delete(message=general.messages.get(seq=5))  # deleted: not unread

    rooms = selectors.rooms_with_unread(rooms=selectors.rooms_visible_to(user=alice), user=alice)

    assert {r.slug: r.unread for r in rooms} == {"general": 2, "other": 0}
    assert selectors.room_unread(room=general, user=alice) == (2, 2)
    assert selectors.room_unread(room=other, user=alice) == (None, 0)
    assert selectors.room_unread(room=general, user=bob) == (None, 0)


def test_the_users_rooms_count_unread_as_every_other_list_does(general, alice, bob, make_room):
    """rooms_of joins the membership and the read mark instead of asking for each room:
    the sidebar's counts and flags are the ones rooms_with_unread gives any list."""
    other = make_room("other", members=(alice,))
    owned = services.room_create(name="Owned", created_by=alice)
    make_room("left", members=(alice,))
    banned = make_room("banned", members=(alice,))
    make_room("closed", members=(alice,), is_archived=True)
    make_room("theirs", members=(bob,))
    general.members.add(alice)
    post_messages(general, bob, 5)
    post_messages(general, alice, 2)  # one's own messages are never unread
    post_messages(other, bob, 3)  # alice never opened it: nothing unread there
    post_messages(owned, bob, 4)
    services.room_mark_read(room=general, user=alice, seq=2)
    services.message_delete(message=general.messages.get(seq=5))  # deleted: not unread
    services.membership_star(room=other, user=alice, starred=True)
    services.membership_leave(room=Room.objects.get(slug="left"), user=alice)
    services.user_ban(room=banned, user=alice, by=None)

    mine = selectors.rooms_of(user=alice)
    every = selectors.rooms_with_unread(rooms=selectors.rooms_visible_to(user=alice), user=alice)

    assert [(r.slug, r.starred, r.is_owner) for r in mine] == [
        ("other", True, False),
        ("general", False, False),
        (owned.slug, False, True),
    ]
    counted = {r.slug: (r.read_mark, r.unread) for r in every}
    assert {r.slug: (r.read_mark, r.unread) for r in mine} == {
        slug: counted[slug] for slug in ("other", "general", owned.slug)
    }
    assert counted["general"] == (2, 2)
    assert counted[owned.slug] == (0, 4)
    assert counted["other"] == (None, 0)


def test_a_room_the_user_left_counts_nothing_unread_but_keeps_the_mark(general, alice, bob):
    general.members.add(alice)
    post_messages(general, bob, 5)
    services.room_mark_read(room=general, user=alice, seq=2)
    assert selectors.room_unread(room=general, user=alice) == (2, 3)

    services.membership_leave(room=general, user=alice)

    assert selectors.room_unread(room=general, user=alice) == (2, 0)
