"""Reads: who sees which room, and what each page of messages costs."""

import pytest

from chat import selectors
from chat.errors import ChatError, ErrorCode
from tests.conftest import post_messages

pytestmark = pytest.mark.django_db


def test_a_join_reads_the_counter_and_one_page_in_two_queries(
    general, alice, bob, django_assert_num_queries
):
    post_messages(general, alice, 30)
    post_messages(general, bob, 30)

    with django_assert_num_queries(2):
        page = selectors.messages_for_join(room=general, since=None)
        authors = {m.author.username for m in page.messages}  # loaded with the page

    assert authors == {"alice", "bob"}
    assert [m.seq for m in page.messages] == list(range(11, 61))
    assert page.last_seq == 60


def test_deleted_messages_are_in_no_page(general, alice):
    post_messages(general, alice, 5)
    general.messages.filter(seq=3).update(deleted_at="2026-01-01T00:00Z")

    latest = selectors.messages_latest(room=general, limit=50)
    since = selectors.messages_since(room=general, seq=1, limit=50)
    before = selectors.messages_before(room=general, seq=5, limit=50)

    assert [m.seq for m in latest.messages] == [1, 2, 4, 5]
    assert [m.seq for m in since.messages] == [2, 4, 5]
    assert [m.seq for m in before.messages] == [1, 2, 4]


def test_room_get_joinable_says_archived_only_to_those_who_may_see_it(alice, bob, make_room):
    make_room("shut", is_private=True, is_archived=True, members=(alice,))

    with pytest.raises(ChatError) as member:
        selectors.room_get_joinable(slug="shut", user=alice)
    with pytest.raises(ChatError) as outsider:
        selectors.room_get_joinable(slug="shut", user=bob)

    assert member.value.code == ErrorCode.ROOM_ARCHIVED
    assert outsider.value.code == ErrorCode.NOT_FOUND


def test_rooms_visible_to_lists_each_private_room_once(alice, bob, make_room, general):
    make_room("team", is_private=True, members=(alice, bob))

    assert [r.slug for r in selectors.rooms_visible_to(user=alice)] == ["general", "team"]
