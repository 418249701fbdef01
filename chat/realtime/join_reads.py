"""Join pages read together: the joins that arrive while one batch is being read from the
database go together in the next, in one trip to the database thread.

A worker restarting, or a network coming back, brings thousands of sockets joining at once,
most of them to the same few rooms. Each join used to read its room's latest page alone:
one thread hop and the same queries (Django compiles them afresh each time, about 2 ms even
for an empty room) per socket. Batched, joins of one room share one read of its page
(`selectors.room_join_pages`), still made after every one of them subscribed, so none
misses a message; each user's read marks are still their own.
"""

import asyncio
import logging

from channels.db import database_sync_to_async
from django.db import InterfaceError, OperationalError

from .. import selectors
from ..protocol.errors import ChatError

logger = logging.getLogger(__name__)

MAX_BATCH = 200

Waiting = tuple[selectors.JoinRequest, asyncio.Future[selectors.JoinPage]]


class JoinReader:
    """The joins of one event loop waiting for their page, read by one task at a time."""

    def __init__(self) -> None:
        self.waiting: list[Waiting] = []
        self.task: asyncio.Task | None = None

    async def read(self, request: selectors.JoinRequest) -> selectors.JoinPage:
        """`request`'s page (with whatever else is waiting), or its refusal raised."""
        future: asyncio.Future[selectors.JoinPage] = asyncio.get_running_loop().create_future()
        self.waiting.append((request, future))
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._read_all())
        return await future

    async def _read_all(self) -> None:
        while self.waiting:
            batch, self.waiting = self.waiting[:MAX_BATCH], self.waiting[MAX_BATCH:]
            requests = [request for request, _ in batch]
            read = database_sync_to_async(selectors.room_join_pages)
            try:
                try:
                    pages = await read(requests)
                except (OperationalError, InterfaceError):
                    # The connection died (a restart, a failover): the next call opens a
                    # fresh one, and reading again is harmless.
                    logger.warning(
                        "Database connection lost reading %d join page(s); retrying",
                        len(requests),
                        exc_info=True,
                    )
                    pages = await read(requests)
            except Exception as error:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), page in zip(batch, pages, strict=True):
                if future.done():  # its socket went away meanwhile
                    continue
                if isinstance(page, ChatError):
                    future.set_exception(page)
                else:
                    future.set_result(page)
