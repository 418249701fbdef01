"""A room's latest page, kept between batches of joins while its counter stands still
(chat/realtime/join_reads.py, LatestPages): every change a page shows moves the counter, so
a kept page is never older than a fresh read in what the room's messages say."""

from collections.abc import Callable

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import override_settings

from chat import selectors, services
from chat.models import Message, Room
from chat.protocol import events
from chat.realtime import join_reads
from chat.realtime.join_reads import LatestPages
from tests.support.factories import post_messages

pytestmark = pytest.mark.django_db


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def pages(clock: Clock) -> LatestPages:
    return LatestPages(clock=clock)


def join(room: Room, pages: LatestPages) -> list[dict]:
    """What a join's `joined` reply would carry of the room's messages."""
    [page] = selectors.room_join_pages([(room, AnonymousUser(), None)], latest=pages)
    return [events.message_dict(message) for message in page.messages]


def fresh_read(room: Room) -> list[dict]:
    return join(room, LatestPages())


def test_batches_reading_the_same_counter_share_one_read_of_the_page(
    general, alice, pages, django_assert_num_queries
):
    post_messages(general, alice, 3)
    first = join(general, pages)

    with django_assert_num_queries(1):  # the counter only
        again = join(general, pages)

    assert again == first
    assert [m["seq"] for m in again] == [1, 2, 3]


def _send(room: Room, author, body: str, **fields) -> Message:
    draft = services.MessageDraft(room=room, author=author, body=body, client_id=None, **fields)
    [(message, _)] = services.messages_create(drafts=[draft])
    return message


# Every write that changes what a room's page shows, each as its own door calls it.
CHANGES: dict[str, Callable[[Room, Message, object], object]] = {
    "a message sent": lambda room, _, user: _send(room, user, "new"),
    "a message edited": lambda room, m, user: services.message_edit(
        room=room, message_id=m.pk, editor=user, body="edited"
    ),
    "a message deleted by its author": lambda room, m, user: services.message_delete_as(
        room=room, message_id=m.pk, user=user
    ),
    "a message deleted by a moderator": lambda _, m, __: services.message_delete(message=m),
    "a reaction put on": lambda room, m, user: services.reaction_set(
        room=room, message_id=m.pk, user=user, emoji="👍", on=True
    ),
    "a thread reply (its root's summary)": lambda room, m, user: _send(
        room, user, "in the thread", thread=m.pk
    ),
    "a thread reply shown in the room too": lambda room, m, user: _send(
        room, user, "also here", thread=m.pk, also_in_room=True
    ),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_every_change_a_page_shows_moves_the_counter_so_the_next_join_reads_afresh(
    general, alice, pages, change
):
    message = _send(general, alice, "first")
    join(general, pages)  # kept

    CHANGES[change](general, message, alice)

    after = join(general, pages)
    assert after == fresh_read(general)
    assert after != [events.message_dict(message)]  # (the change shows)


def test_a_reaction_taken_back_moves_the_counter_too(general, alice, pages):
    message = _send(general, alice, "first")
    services.reaction_set(room=general, message_id=message.pk, user=alice, emoji="👍", on=True)
    with_reaction = join(general, pages)

    services.reaction_set(room=general, message_id=message.pk, user=alice, emoji="👍", on=False)

    assert join(general, pages) == fresh_read(general) != with_reaction


def test_a_new_slug_or_page_size_is_read_afresh(general, alice, pages):
    post_messages(general, alice, 3)
    join(general, pages)

    Room.objects.filter(pk=general.pk).update(slug="renamed")
    general.refresh_from_db()  # as the next room check finds it
    assert {m["room"] for m in join(general, pages)} == {"renamed"}
    with override_settings(CHAT_PAGE_SIZE=2):
        assert [m["seq"] for m in join(general, pages)] == [2, 3]


def test_what_no_counter_moves_for_is_kept_for_at_most_keep_seconds(general, alice, pages, clock):
    _send(general, alice, "first")
    join(general, pages)
    services.profile_update(user=alice, display_name="Alice A.", status="", time_zone="", email="")

    clock.now += join_reads.KEEP_SECONDS / 2
    assert [m["author_display"] for m in join(general, pages)] == ["alice"]  # kept
    clock.now += join_reads.KEEP_SECONDS / 2
    assert [m["author_display"] for m in join(general, pages)] == ["Alice A."]


def test_pages_are_kept_for_the_most_recently_read_rooms_only(
    alice, pages, monkeypatch, django_assert_num_queries
):
    monkeypatch.setattr(join_reads, "KEEP_ROOMS", 2)
    rooms = [Room.objects.create(name=f"Room {n}", slug=f"room-{n}") for n in range(3)]
    for room in rooms:
        join(room, pages)

    assert list(pages.kept) == [room.pk for room in rooms[1:]]
    with django_assert_num_queries(2):  # the first room's page was let go: read again
        join(rooms[0], pages)
