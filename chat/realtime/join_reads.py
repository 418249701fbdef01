"""Joins read together: the reads that arrive while one batch is being read from the
database go together in the next, in one trip to the database thread.

A worker restarting, or a network coming back, brings thousands of sockets joining at once,
most of them to the same few rooms. Each join used to check its room and read its latest
page alone: one thread hop and the same queries (Django compiles them afresh each time,
about 2 ms for the page even in an empty room) per socket. Batched, the rooms are looked up
once per batch (`selectors.rooms_joinable`) and joins of one room share one read of its page
(`selectors.room_join_pages`), still made after every one of them subscribed, so none misses
a message; each user's rights and read marks are still their own.
"""

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from channels.db import database_sync_to_async
from django.db import InterfaceError, OperationalError

from ..protocol.errors import ChatError

logger = logging.getLogger(__name__)

MAX_BATCH = 200

Request = TypeVar("Request")
Answer = TypeVar("Answer")


class BatchedReads(Generic[Request, Answer]):
    """The reads of one kind waiting on one event loop, read by one task at a time with
    `read_many`, which answers each request (or refuses it with a ChatError) as if alone."""

    def __init__(
        self, read_many: Callable[[Sequence[Request]], list[Answer | ChatError]], what: str
    ) -> None:
        self.read_many = read_many
        self.what = what
        self.waiting: list[tuple[Request, asyncio.Future[Answer]]] = []
        self.task: asyncio.Task | None = None

    async def read(self, request: Request) -> Answer:
        """`request`'s answer (read with whatever else is waiting), or its refusal raised."""
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self.waiting.append((request, future))
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._read_all())
        return await future

    async def _read_all(self) -> None:
        read = database_sync_to_async(self.read_many)
        while self.waiting:
            batch, self.waiting = self.waiting[:MAX_BATCH], self.waiting[MAX_BATCH:]
            requests = [request for request, _ in batch]
            try:
                try:
                    answers = await read(requests)
                except (OperationalError, InterfaceError):
                    # The connection died (a restart, a failover): the next call opens a
                    # fresh one, and reading again is harmless.
                    logger.warning(
                        "Database connection lost reading %d %s(s); retrying",
                        len(requests),
                        self.what,
                        exc_info=True,
                    )
                    answers = await read(requests)
            except Exception as error:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), answer in zip(batch, answers, strict=True):
                if future.done():  # its socket went away meanwhile
                    continue
                if isinstance(answer, ChatError):
                    future.set_exception(answer)
                else:
                    future.set_result(answer)
