"""The Redis commands of one turn sent as one pipeline (chat/realtime/redis_turns.py): each
caller gets its own reply or error, pipelines go one at a time in the order asked, and a
pipeline that fails or gets no answer fails its callers and no one after them."""

import asyncio
import gc
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from chat.realtime import redis_turns
from chat.realtime.outages import redis_client
from chat.realtime.redis_turns import ScriptCall, Turns
from tests.support.redis_service import redis_url


class Counted:
    """A Redis client whose pipelines are counted."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self.pipelines = 0

    def pipeline(self, **options: Any) -> Any:
        self.pipelines += 1
        return self.redis.pipeline(**options)


@pytest.fixture
async def redis() -> AsyncIterator[Any]:
    client = redis_client(redis_url())
    yield client
    await client.aclose()


@pytest.fixture
def key() -> str:
    return f"test:turns:{uuid.uuid4().hex}"


async def test_the_commands_of_one_turn_go_in_one_pipeline_each_to_its_caller(redis, key):
    counted = Counted(redis)
    turns = Turns(counted)

    replies = await asyncio.gather(
        *(turns.run(lambda pipe, n=n: pipe.incrby(key, n)) for n in (1, 10, 100))
    )
    [[names, count]] = [await turns.run(lambda p: p.get(key), lambda p: p.strlen(key))]

    assert replies == [[1], [11], [111]]  # in the order asked
    assert (names, count) == (b"111", 3)
    assert counted.pipelines == 2
    await redis.delete(key)


async def test_a_commands_error_goes_to_its_caller_only(redis, key):
    turns = Turns(redis)
    await redis.set(key, "not a number")

    results = await asyncio.gather(
        turns.run(lambda pipe: pipe.incr(key)),
        turns.run(lambda pipe: pipe.get(key)),
        return_exceptions=True,
    )

    assert "not an integer" in str(results[0])
    assert results[1] == [b"not a number"]
    await redis.delete(key)


@pytest.mark.parametrize("failing", [0, 1])
async def test_a_caller_of_several_commands_hears_an_error_once_all_of_them_ran(
    redis, key, failing
):
    turns = Turns(redis)
    await redis.set(key, "not a number")
    commands = [lambda pipe: pipe.set(f"{key}:ran", "yes")]
    commands.insert(failing, lambda pipe: pipe.incr(key))

    with pytest.raises(Exception, match="not an integer"):
        await turns.run(*commands)

    assert await redis.get(f"{key}:ran") == b"yes"
    await redis.delete(key, f"{key}:ran")


async def test_each_gives_every_command_its_reply_or_its_error_asked_for_at_once(redis, key):
    """`each`: the commands are queued when it is called (a command asked for after it
    goes after them), and one command's error does not cost the others their replies."""
    counted = Counted(redis)
    turns = Turns(counted)
    await redis.set(key, "not a number")

    each = asyncio.create_task(
        turns.each(lambda pipe: pipe.incr(key), lambda pipe: pipe.append(f"{key}:log", "a"))
    )
    await asyncio.sleep(0)  # asked for
    [later] = turns._queue((lambda pipe: pipe.append(f"{key}:log", "b"),))  # at once, here
    results, _ = await asyncio.gather(each, later)

    assert "not an integer" in str(results[0])
    assert results[1] == 1
    assert await redis.get(f"{key}:log") == b"ab"
    away = Turns(redis_client("redis://127.0.0.1:1/0"))  # nothing listens there
    failed = await away.each(lambda pipe: pipe.get(key), lambda pipe: pipe.get(key))
    assert all(isinstance(result, RedisConnectionError) for result in failed), failed
    await away.redis.aclose()
    await redis.delete(key, f"{key}:log")


async def test_a_turn_asked_for_while_one_is_in_flight_waits_and_keeps_the_order(redis, key):
    counted = Counted(redis)
    turns = Turns(counted)

    first = asyncio.create_task(turns.run(lambda pipe: pipe.append(key, "a")))
    await asyncio.sleep(0)  # the first pipeline is on its way
    second = asyncio.create_task(turns.run(lambda pipe: pipe.append(key, "b")))
    third = asyncio.create_task(turns.run(lambda pipe: pipe.append(key, "c")))
    await asyncio.gather(first, second, third)

    assert await redis.get(key) == b"abc"
    assert counted.pipelines == 2  # the first, then the two asked for while it was out
    await redis.delete(key)


async def test_a_pipeline_that_fails_fails_each_caller_and_the_next_turn_goes_on(key):
    away = redis_client("redis://127.0.0.1:1/0")  # nothing listens there
    turns = Turns(away)

    results = await asyncio.gather(
        turns.run(lambda pipe: pipe.get(key)),
        turns.run(lambda pipe: pipe.get(key)),
        return_exceptions=True,
    )

    assert all(isinstance(result, RedisConnectionError) for result in results), results
    with pytest.raises(RedisConnectionError):
        await turns.run(lambda pipe: pipe.get(key))  # tried again, not stuck
    await away.aclose()


class Silent(Counted):
    """A Redis whose first pipeline never gets an answer (Redis paused); the next ones do."""

    def pipeline(self, **options: Any) -> Any:
        pipe = super().pipeline(**options)
        if self.pipelines == 1:

            async def execute(**_: Any) -> list[Any]:
                await asyncio.Event().wait()
                raise AssertionError("unreachable")

            pipe.execute = execute
        return pipe


async def test_a_pipeline_without_an_answer_fails_its_callers_after_the_timeout(
    redis, key, monkeypatch
):
    monkeypatch.setattr(redis_turns, "TIMEOUT_SECONDS", 0.2)
    turns = Turns(Silent(redis))

    first = asyncio.create_task(turns.run(lambda pipe: pipe.set(key, "first")))
    await asyncio.sleep(0)
    behind = asyncio.create_task(turns.run(lambda pipe: pipe.set(key, "behind")))

    with pytest.raises(TimeoutError):
        await first
    assert await behind == [True]  # queued behind it, then sent on its own
    assert await redis.get(key) == b"behind"
    await redis.delete(key)


async def test_a_cancelled_caller_leaves_the_others_their_replies(redis, key):
    turns = Turns(redis)

    cancelled = asyncio.create_task(turns.run(lambda pipe: pipe.incr(key)))
    kept = asyncio.create_task(turns.run(lambda pipe: pipe.incr(key)))
    await asyncio.sleep(0)
    cancelled.cancel()

    assert await kept == [2]  # both ran: the cancelled caller's command was already queued
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert await redis.get(key) == b"2"
    await redis.delete(key)


async def _script_exists_calls(redis: Any) -> int:
    stats = await redis.info("commandstats")
    return stats.get("cmdstat_script|exists", {}).get("calls", 0)


def _new_script(redis: Any) -> Any:
    """A script Redis has never seen (as after it restarted empty): its text is unique."""
    return redis.register_script(
        f"-- {uuid.uuid4().hex}\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])"
    )


async def test_a_turn_of_script_calls_is_one_trip_and_a_script_redis_lacks_is_loaded(redis, key):
    turns = Turns(redis)
    unknown = _new_script(redis)

    assert await turns.run(ScriptCall(unknown, [key], [1])) == [1]  # NOSCRIPT, then loaded
    asked_before = await _script_exists_calls(redis)
    replies = await asyncio.gather(*(turns.run(ScriptCall(unknown, [key], [n])) for n in (2, 3)))

    assert replies == [[3], [6]]
    assert await _script_exists_calls(redis) == asked_before  # no SCRIPT EXISTS first
    await redis.delete(key)


class Commands(Counted):
    """A Redis client whose pipelines' commands are counted."""

    def __init__(self, redis: Any) -> None:
        super().__init__(redis)
        self.commands = 0

    def pipeline(self, **options: Any) -> Any:
        pipe = super().pipeline(**options)
        execute = pipe.execute

        async def counted(**kwargs: Any) -> Any:
            self.commands += len(pipe.command_stack)
            return await execute(**kwargs)

        pipe.execute = counted
        return pipe


async def test_callers_sharing_a_read_in_one_turn_get_one_reply_read_after_they_asked(redis, key):
    counted = Commands(redis)
    turns = Turns(counted)

    def read(pipe: Any) -> Any:
        return pipe.get(key)

    written = turns.run(lambda pipe: pipe.set(key, "written"))
    replies = await asyncio.gather(written, *(turns.shared(("read", key), read) for _ in range(5)))

    assert replies == [[True]] + [[b"written"]] * 5  # asked after the write: read after it
    assert (counted.pipelines, counted.commands) == (1, 2)
    await redis.delete(key)


async def test_a_shared_read_asked_for_while_one_is_in_flight_is_read_again_after(redis, key):
    counted = Commands(redis)
    turns = Turns(counted)

    def read(pipe: Any) -> Any:
        return pipe.get(key)

    early = asyncio.create_task(turns.shared(("read", key), read))
    await asyncio.sleep(0)  # its pipeline is on its way
    await redis.set(key, "meanwhile")
    late = await turns.shared(("read", key), read)

    await early  # (whether it was read before the write or after is the race's)
    assert late == [b"meanwhile"]  # not the reply already on its way
    assert counted.commands == 2
    await redis.delete(key)


async def test_reads_with_different_keys_are_not_shared(redis, key):
    turns = Turns(Commands(redis))
    await redis.set(key, "a")
    await redis.set(f"{key}:other", "b")

    replies = await asyncio.gather(
        turns.shared(("read", key), lambda pipe: pipe.get(key)),
        turns.shared(("read", f"{key}:other"), lambda pipe: pipe.get(f"{key}:other")),
    )

    assert replies == [[b"a"], [b"b"]]
    await redis.delete(key, f"{key}:other")


async def test_a_cancelled_sharer_leaves_the_others_the_reply(redis, key):
    turns = Turns(redis)
    await redis.set(key, "kept")

    def read(pipe: Any) -> Any:
        return pipe.get(key)

    cancelled = asyncio.create_task(turns.shared(("read", key), read))
    kept = asyncio.create_task(turns.shared(("read", key), read))
    await asyncio.sleep(0)
    cancelled.cancel()

    assert await kept == [b"kept"]
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    await redis.delete(key)


async def test_a_failed_shared_read_fails_every_sharer_and_is_never_left_unretrieved(key):
    away = redis_client("redis://127.0.0.1:1/0")  # nothing listens there
    turns = Turns(away)
    loop = asyncio.get_running_loop()
    unhandled: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: unhandled.append(context))

    def read(pipe: Any) -> Any:
        return pipe.get(key)

    results = await asyncio.gather(
        *(turns.shared(("read", key), read) for _ in range(2)), return_exceptions=True
    )
    gone = asyncio.create_task(turns.shared(("read", key), read))  # its only caller leaves
    await asyncio.sleep(0)
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    sending = turns.sending
    assert sending is not None
    await sending  # the read fails with no one left to hear it
    del gone
    gc.collect()

    assert all(isinstance(result, RedisConnectionError) for result in results), results
    assert unhandled == []  # no "Future exception was never retrieved"
    loop.set_exception_handler(None)
    await away.aclose()
