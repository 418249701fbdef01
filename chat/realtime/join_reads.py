"""Joins read together (chat/realtime/batching.py): the room checks, and then the pages, that
arrive while one batch is being read from the database go together in the next.

A worker restarting, or a network coming back, brings thousands of sockets joining at once,
most of them to the same few rooms. Each join used to check its room and read its latest
page alone: one thread hop and the same queries (Django compiles them afresh each time,
about 2 ms for the page even in an empty room) per socket. Batched, the rooms are looked up
once per batch (`selectors.rooms_joinable`) and joins of one room share one read of its page
(`selectors.room_join_pages`), still made after every one of them subscribed, so none misses
a message; each user's rights and read marks are still their own.

A storm still read the room's latest page once a batch (about 250 times for 5,000 joins to
one room: docs/performance.md, item 27). `LatestPages` keeps each room's latest page while
the room's counter stands still: every change a page shows (a message sent, edited or
deleted, a reaction, a thread reply) takes a seq from that counter in the transaction that
makes it, so a batch that reads the same counter would read the same messages again. What a
page shows that is not a room's message (an author's display name and avatar) is at most
KEEP_SECONDS old: as if the join had come that much earlier, and a message already on a
screen keeps the name it was shown with anyway.
"""

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

from django.conf import settings

from .. import selectors
from ..access import AnyUser
from ..models import Room
from .batching import Batched

MAX_BATCH = 200
KEEP_SECONDS = 1.0  # the longest a kept page is given out
KEEP_ROOMS = 256  # rooms whose latest page is kept, the most recently read


def room_checks() -> Batched[tuple[str, AnyUser], Room]:
    """`await checks.run((slug, user))`: the room the user may join at `slug`, or why not."""
    # The selectors are looked up at each call, not bound now (a test replaces them).
    return Batched(
        lambda requests: selectors.rooms_joinable(requests), what="room check", limit=MAX_BATCH
    )


def join_pages() -> Batched[selectors.JoinRequest, selectors.JoinPage]:
    """`await pages.run((room, user, since))`: what the join's `joined` reply says."""
    latest = LatestPages()
    return Batched(
        lambda requests: selectors.room_join_pages(requests, latest=latest),
        what="join page",
        limit=MAX_BATCH,
    )


class Kept(NamedTuple):
    """A room's latest page and what it was read under."""

    counter: int  # the room's counter, read before the page
    slug: str  # the room's slug then (every message of the page carries it)
    limit: int  # settings.CHAT_PAGE_SIZE then
    read_at: float  # the clock when the read began
    page: selectors.MessagePage


class LatestPages:
    """Each room's latest page, kept while its counter stands still and for at most
    KEEP_SECONDS (see the module)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.kept: OrderedDict[int, Kept] = OrderedDict()
        self.lock = threading.Lock()  # (one database thread reads them; tests may run more)

    def __call__(self, room: Room, counter: int) -> selectors.MessagePage:
        now, limit = self.clock(), settings.CHAT_PAGE_SIZE
        with self.lock:
            kept = self.kept.get(room.pk)
        if (
            kept is not None
            and (kept.counter, kept.slug, kept.limit) == (counter, room.slug, limit)
            and now - kept.read_at < KEEP_SECONDS
        ):
            return kept.page
        page = selectors.room_latest_page(room, counter)
        with self.lock:
            self.kept[room.pk] = Kept(counter, room.slug, limit, now, page)
            self.kept.move_to_end(room.pk)
            while len(self.kept) > KEEP_ROOMS:
                self.kept.popitem(last=False)
        return page
