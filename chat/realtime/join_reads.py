"""Joins read together (chat/realtime/batching.py): the room checks, and then the pages, that
arrive while one batch is being read from the database go together in the next.

A worker restarting, or a network coming back, brings thousands of sockets joining at once,
most of them to the same few rooms. Each join used to check its room and read its latest
page alone: one thread hop and the same queries (Django compiles them afresh each time,
about 2 ms for the page even in an empty room) per socket. Batched, the rooms are looked up
once per batch (`selectors.rooms_joinable`) and joins of one room share one read of its page
(`selectors.room_join_pages`), still made after every one of them subscribed, so none misses
a message; each user's rights and read marks are still their own.
"""

from .. import selectors
from ..access import AnyUser
from ..models import Room
from .batching import Batched

MAX_BATCH = 200


def room_checks() -> Batched[tuple[str, AnyUser], Room]:
    """`await checks.run((slug, user))`: the room the user may join at `slug`, or why not."""
    # The selectors are looked up at each call, not bound now (a test replaces them).
    return Batched(
        lambda requests: selectors.rooms_joinable(requests), what="room check", limit=MAX_BATCH
    )


def join_pages() -> Batched[selectors.JoinRequest, selectors.JoinPage]:
    """`await pages.run((room, user, since))`: what the join's `joined` reply says."""
    return Batched(
        lambda requests: selectors.room_join_pages(requests), what="join page", limit=MAX_BATCH
    )
