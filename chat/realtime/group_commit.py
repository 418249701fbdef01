"""Group commit for sends: the sends that arrive while one batch is being written to the
database go together in the next, in one transaction and one trip to the database thread.

With one sender at a time a batch holds one message and nothing waits longer than before;
with a hundred at once, a hundred acks cost one thread hop and one commit instead of a
hundred of each. Each message still gets its own result (services.messages_create).
"""

import asyncio
import logging

from channels.db import database_sync_to_async
from django.db import InterfaceError, OperationalError

from .. import services
from ..models import Message
from ..protocol.errors import ChatError

logger = logging.getLogger(__name__)

MAX_BATCH = 100

Result = tuple[Message, bool]


class MessageWriter:
    """The queue of sends of one event loop, written by one task at a time."""

    def __init__(self) -> None:
        self.waiting: list[tuple[services.MessageDraft, asyncio.Future[Result]]] = []
        self.task: asyncio.Task | None = None

    async def create(self, draft: services.MessageDraft) -> Result:
        """Store `draft` (with whatever else is waiting); its (message, created) or refusal."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self.waiting.append((draft, future))
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._write_all())
        return await future

    async def _write_all(self) -> None:
        while self.waiting:
            batch, self.waiting = self.waiting[:MAX_BATCH], self.waiting[MAX_BATCH:]
            drafts = [draft for draft, _ in batch]
            try:
                try:
                    results = await database_sync_to_async(services.messages_create)(drafts=drafts)
                except (OperationalError, InterfaceError):
                    # The connection died (the server terminated it, a restart, a failover):
                    # the next call opens a fresh one, and the client_ids make the batch
                    # safe to write again, so one retry spares the clients a resend.
                    logger.warning(
                        "Database connection lost writing %d message(s); retrying",
                        len(drafts),
                        exc_info=True,
                    )
                    results = await database_sync_to_async(services.messages_create)(drafts=drafts)
            except Exception as error:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():  # its socket went away meanwhile
                    continue
                if isinstance(result, ChatError):
                    future.set_exception(result)
                else:
                    future.set_result(result)
