"""Calls into the database thread made together: the requests that arrive while one batch
is in the database thread go together in the next, in one trip to it.

The group commit of sends (group_commit.py) and the joins' room checks and pages
(join_reads.py) are each one of these. With one request at a time a batch holds one and
nothing waits longer than before; with a hundred at once they cost one thread hop (and, for
sends, one transaction) instead of a hundred. Each request still gets its own answer.
"""

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from channels.db import database_sync_to_async
from django.db import InterfaceError, OperationalError

from ..protocol.errors import ChatError

logger = logging.getLogger(__name__)

Request = TypeVar("Request")
Answer = TypeVar("Answer")


class Batched(Generic[Request, Answer]):
    """The requests of one kind waiting on one event loop, run by one task at a time with
    `run_many`, which answers each (or refuses it with a ChatError) as if it ran alone, and
    must be safe to run again on the same batch: reads are, and the client_ids of sends
    make a group commit so."""

    def __init__(
        self,
        run_many: Callable[[Sequence[Request]], Sequence[Answer | ChatError]],
        *,
        what: str,
        limit: int,
    ) -> None:
        self.run_many = run_many
        self.what = what  # for the log: "message", "join page"...
        self.limit = limit  # requests per batch at most
        self.waiting: list[tuple[Request, asyncio.Future[Answer]]] = []
        self.task: asyncio.Task | None = None

    async def run(self, request: Request) -> Answer:
        """`request`'s answer (with whatever else is waiting), or its refusal raised."""
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self.waiting.append((request, future))
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run_all())
        return await future

    async def _run_all(self) -> None:
        run = database_sync_to_async(self.run_many)
        while self.waiting:
            batch, self.waiting = self.waiting[: self.limit], self.waiting[self.limit :]
            requests = [request for request, _ in batch]
            try:
                try:
                    answers = await run(requests)
                except (OperationalError, InterfaceError):
                    # The connection died (the server terminated it, a restart, a
                    # failover): the next call opens a fresh one, and one retry spares the
                    # clients a resend.
                    logger.warning(
                        "Database connection lost on %d %s(s); retrying",
                        len(requests),
                        self.what,
                        exc_info=True,
                    )
                    answers = await run(requests)
            except Exception as error:
                fail_each([future for _, future in batch], error)
                continue
            answer_each([future for _, future in batch], answers, refusal=ChatError)


def fail_each(futures: Sequence[asyncio.Future], error: BaseException) -> None:
    """`error` for every caller of a batch that still waits."""
    for future in futures:
        if not future.done():
            future.set_exception(error)


def answer_each(
    futures: Sequence[asyncio.Future], answers: Sequence[object], *, refusal: type[BaseException]
) -> None:
    """Each caller its answer, raised to it if it is a `refusal`; one that went away meanwhile
    (its socket closed, its task cancelled) is skipped."""
    for future, answer in zip(futures, answers, strict=True):
        if future.done():
            continue
        if isinstance(answer, refusal):
            future.set_exception(answer)
        else:
            future.set_result(answer)
