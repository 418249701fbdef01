"""The Redis commands a process asks for in one turn of its event loop, sent as one pipeline.

In a storm of handshakes each socket asks Redis for three or four things on its way in (its
socket counted, its join's rate limit, its presence, the room's names), and redis-py pays for
every command as much in Python as the trip costs: a pool checkout (which redis-py 8 wraps
in `deprecated_args`, binding an `inspect.Signature` each time), asyncio timeouts, the
command's own coroutine. On Redis that was 40% of the event loop during the storm
(docs/performance.md, item 21). `Turns` queues the commands asked for while the loop runs
other work and sends them together: one pipeline, one checkout, one trip.

One pipeline is in flight at a time, and the next takes everything asked for meanwhile, so
commands reach Redis in the order they were asked for: a socket's presence `remove` never
overtakes its `add`, as it could on two pooled connections. Each caller gets its own reply,
or its own command's error; a pipeline that fails as a whole (Redis away) fails every
caller in it, who falls back as before (outages.Fallbacks). A pipeline that gets no answer
(Redis paused, or a network that drops packets) fails after TIMEOUT_SECONDS, as long as the
pool waits for a connection, so the commands queued behind it do not wait for ever.

A read that any of its askers may take (a room's presence, asked by every socket joining it)
is asked for once per turn: `shared` gives the callers that ask for it before it is sent one
reply, read after each of them asked. A storm of joins to one room reads its presence once
a pipeline instead of once a socket.
"""

import asyncio
from collections.abc import Callable, Hashable
from typing import Any

from redis.exceptions import NoScriptError

from .batching import answer_each, fail_each

Command = Callable[[Any], Any]  # adds one command to a redis-py pipeline
TIMEOUT_SECONDS = 20.0


class ScriptCall:
    """A Lua script's EVALSHA, for a pipeline. redis-py's own script call in a pipeline makes
    every pipeline ask Redis first whether it has the script (SCRIPT EXISTS: a round trip
    more per turn); this one assumes it does, and a call Redis answers NOSCRIPT (it
    restarted empty) is made again on its own, which loads the script."""

    __slots__ = ("args", "keys", "script")

    def __init__(self, script: Any, keys: list[Any], args: list[Any]) -> None:
        self.script = script
        self.keys = keys
        self.args = args

    def __call__(self, pipe: Any) -> Any:
        return pipe.evalsha(self.script.sha, len(self.keys), *self.keys, *self.args)

    async def alone(self) -> Any:
        return await self.script(keys=self.keys, args=self.args)


class Turns:
    """One registry's queue of Redis commands, sent a turn at a time (see the module)."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self.queued: list[tuple[Command, asyncio.Future[Any]]] = []
        self.reads: dict[Hashable, list[asyncio.Future[Any]]] = {}  # queued, not yet sent
        self.sending: asyncio.Task[None] | None = None

    async def run(self, *commands: Command) -> list[Any]:
        """The replies to `commands` (each adds one command to a pipeline), in order, sent
        with whatever else is asked for in this turn; a command's error is raised here."""
        futures = self._queue(commands)
        try:
            # One pipeline's reply settles them all at once, so the first wait is the only
            # one: awaited directly, not through asyncio.wait, whose waiter and callbacks
            # were a fifth of the CPU of thousands of sockets closing at once.
            for future in futures:
                if not future.done():
                    await future
        except asyncio.CancelledError:
            for future in futures:  # its replies go nowhere (the commands still run)
                future.cancel()
            raise
        except Exception:
            pass  # a command's error reply, raised in order by _replies
        return _replies(futures)

    async def each(self, *commands: Command) -> list[Any]:
        """Like `run`, for commands that stand or fall alone: each one's reply, or its
        error returned in its place (a pipeline that failed as a whole: every one's)."""
        futures = self._queue(commands)
        try:
            await asyncio.wait(futures)
        except asyncio.CancelledError:
            for future in futures:  # their replies go nowhere (the commands still run)
                future.cancel()
            raise
        return [future.exception() or future.result() for future in futures]

    async def shared(self, key: Hashable, *commands: Command) -> list[Any]:
        """Like `run`, for reads: every caller asking with `key` before the commands are
        sent gets the same replies (so the commands must be the same for one key)."""
        futures = self.reads.get(key)
        if futures is None:
            futures = self.reads[key] = self._queue(commands)
            for future in futures:  # retrieved, should every caller have gone away
                future.add_done_callback(_retrieve)
        await asyncio.wait(futures)  # a caller that goes away leaves them to the others
        return _replies(futures)

    def _queue(self, commands: tuple[Command, ...]) -> list[asyncio.Future[Any]]:
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in commands]
        self.queued.extend(zip(commands, futures, strict=True))
        if self.sending is None:
            self.sending = loop.create_task(self._send_all())
        return futures

    async def _send_all(self) -> None:
        try:
            while self.queued:
                batch, self.queued = self.queued, []
                self.reads = {}  # asked for from now on: read again, in the next pipeline
                await self._send(batch)
        finally:
            self.sending = None

    async def _send(self, batch: list[tuple[Command, asyncio.Future[Any]]]) -> None:
        futures = [future for _, future in batch]
        try:
            async with (
                asyncio.timeout(TIMEOUT_SECONDS),
                self.redis.pipeline(transaction=False) as pipe,
            ):
                for command, _ in batch:
                    command(pipe)
                replies = await pipe.execute(raise_on_error=False)
                if len(replies) != len(futures):
                    raise RuntimeError(f"{len(futures)} commands queued, {len(replies)} replies")
                for n, (command, _) in enumerate(batch):
                    if isinstance(replies[n], NoScriptError) and isinstance(command, ScriptCall):
                        try:
                            replies[n] = await command.alone()
                        except Exception as error:
                            replies[n] = error
        except BaseException as error:  # every caller hears of it, whatever it was
            fail_each(futures, error)
            if isinstance(error, Exception):
                return
            raise
        answer_each(futures, replies, refusal=Exception)  # a command's error reply: raised


def _replies(futures: list[asyncio.Future[Any]]) -> list[Any]:
    """The futures' results, or the first one's error raised."""
    errors = [future.exception() for future in futures]  # each one retrieved
    for error in errors:
        if error is not None:
            raise error
    return [future.result() for future in futures]


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
