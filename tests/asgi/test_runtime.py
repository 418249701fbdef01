"""The runtime of an event loop owns every background loop: it starts them, starts again one
that crashed, stops them all, and says whether each is alive (and /healthz and
`manage.py health` tell it)."""

import asyncio
import logging
import uuid

import pytest
import redis.asyncio
from channels.db import database_sync_to_async
from django.core.management import CommandError, call_command
from django.test import AsyncClient

from chat.realtime.agreement import SharedSettings
from chat.realtime.runtime import runtime_for_loop
from tests.support.redis_service import redis_url
from tests.support.waiting import until

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_loop_that_crashes_is_started_again_and_counted(caplog):
    caplog.set_level(logging.ERROR)
    runtime = runtime_for_loop()
    runs = []

    async def flaky() -> None:
        runs.append(1)
        if len(runs) < 3:
            raise RuntimeError("a bug in a loop (test)")
        await asyncio.Event().wait()

    runtime.start("flaky", flaky)
    await until(lambda: len(runs) == 3)

    assert runtime.health()["loops"]["flaky"] == {"alive": True, "crashes": 2}
    assert caplog.text.count("flaky crashed; starting it again") == 2
    await runtime.close()
    assert runtime.health()["loops"] == {}


async def test_starting_a_loop_that_is_alive_starts_nothing(caplog):
    runtime = runtime_for_loop()
    runs = []

    async def forever() -> None:
        runs.append(1)
        await asyncio.Event().wait()

    for _ in range(3):
        runtime.start("once", forever)
    await asyncio.sleep(0.05)

    assert runs == [1]
    await runtime.close()


async def test_a_loop_first_started_by_a_worker_threads_broadcast_may_use_the_database():
    """A worker thread's broadcast reaches the loop through `call_soon_threadsafe`, in a copy
    of the thread's context, where asgiref marks the database thread busy; a loop started
    from there inherited the mark, and each of its database calls was refused (as the
    rechecks of rooms of a local fan-out loop were in the revocation tests: e76fb1d, since
    reverted). Loops run in a context of their own."""
    runtime = runtime_for_loop()
    loop = asyncio.get_running_loop()
    answers: list[int] = []

    async def uses_the_database() -> None:
        answers.append(await database_sync_to_async(lambda: 42)())
        await asyncio.Event().wait()

    def from_a_worker_thread() -> None:
        loop.call_soon_threadsafe(runtime.start, "probe", uses_the_database)

    await database_sync_to_async(from_a_worker_thread)()

    await until(lambda: answers == [42])
    assert runtime.loops["probe"].crashes == 0
    await runtime.close()


async def test_close_stops_every_loop_the_sockets_started(connect, alice, general):
    socket = await connect(alice)
    await socket.join("general")
    await socket.request({"type": "send", "room": "general", "body": "hi", "client_id": "c1"})
    runtime = runtime_for_loop()
    tasks = [loop.task for loop in runtime.loops.values()]
    assert {"fanout receive", "fanout refresh", "publisher"} <= set(runtime.loops)

    await runtime.close()

    assert all(task.done() for task in tasks)


async def test_every_background_loop_belongs_to_the_runtime_with_redis(
    connect, alice, general, settings
):
    """The family: with Redis, the heartbeats too; no chat loop runs outside the runtime."""
    settings.CHAT_PRESENCE_REDIS_URL = settings.CHAT_LIMITS_REDIS_URL = redis_url()
    socket = await connect(alice)
    await socket.join("general")
    await socket.request({"type": "send", "room": "general", "body": "hi", "client_id": "c1"})
    runtime = runtime_for_loop()

    assert set(runtime.loops) == {
        "fanout receive",
        "fanout refresh",
        "publisher",
        "presence heartbeat",
        "socket cap heartbeat",
        "shared settings heartbeat",
    }
    assert all(loop["alive"] for loop in runtime.health()["loops"].values())
    owned = {loop.task for loop in runtime.loops.values()}
    strays = [
        task
        for task in asyncio.all_tasks()
        if task not in owned and "chat" in repr(task.get_coro()) and "Supervised" not in repr(task)
        and "ChatConsumer" not in repr(task.get_coro())  # the sockets themselves
        and "send_count" not in repr(task.get_coro())  # a pending guest count (one-shot)
        and "_write_all" not in repr(task.get_coro())  # a batch being written (one-shot)
    ]  # fmt: skip
    assert strays == []
    await socket.close()
    await runtime.close()


def swallowing(how: str, entered: set[str], name: str):
    """A dependency call that waits until cancelled and then does not raise CancelledError:
    it returns (Python 3.11's asyncio.wait_for, which redis-py connects and sends through,
    does so when its operation finishes as the cancel arrives) or raises another error (as
    asyncio.timeout turns a cancel into TimeoutError when both land together)."""

    async def call(*args, **kwargs):
        entered.add(name)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            if how == "raises":
                raise TimeoutError("swallowed a cancel (test)") from None
            return {"type": "chat.nothing"} if name == "fanout receive" else None

    return call


@pytest.mark.parametrize("how", ["returns", "raises"])
async def test_every_loop_stops_even_when_its_dependency_swallows_the_cancel(
    how, settings, monkeypatch, caplog
):
    """The family: every loop the runtime runs, each inside a call that swallows its cancel,
    and close() (a worker shutting down) still ends them all, at once."""
    settings.CHAT_PRESENCE_REDIS_URL = settings.CHAT_LIMITS_REDIS_URL = redis_url()
    settings.CHAT_PRESENCE_TTL = 0.3  # the heartbeats beat every 0.1 s
    settings.CHAT_GROUP_REFRESH_SECONDS = 0.05
    entered: set[str] = set()
    runtime = runtime_for_loop()  # starts the heartbeats, which run at the next await
    for registry, name in (
        (runtime.presence, "presence heartbeat"),
        (runtime.limits, "socket cap heartbeat"),
        (runtime.shared, "shared settings heartbeat"),
    ):
        monkeypatch.setattr(registry, "beat", swallowing(how, entered, name))
    monkeypatch.setattr(runtime.layer, "receive", swallowing(how, entered, "fanout receive"))
    monkeypatch.setattr(
        runtime.fanout, "_subscribe_again", swallowing(how, entered, "fanout refresh")
    )
    monkeypatch.setattr(runtime.layer, "group_send", swallowing(how, entered, "publisher"))
    monkeypatch.setattr(runtime.layer, "group_discard", swallowing(how, entered, "fanout leave"))
    runtime.fanout._start()
    runtime.publisher.enqueue("room.1", {"type": "chat.nothing"})
    runtime.fanout._owe("shard.1", "chat.test!gone")  # a leave the layer refused
    await until(lambda: entered == set(runtime.loops))
    tasks = [loop.task for loop in runtime.loops.values()]
    assert len(tasks) == 7

    async with asyncio.timeout(2):  # CLOSE_TIMEOUT is 5 s: nothing may be left to it
        await runtime.close()

    assert all(task.done() for task in tasks)
    assert "did not stop" not in caplog.text


async def test_healthz_says_which_loop_died(connect, alice, general):
    socket = await connect(alice)
    await socket.join("general")
    client = AsyncClient()
    well = await client.get("/healthz")
    assert well.status_code == 200
    assert well.json()["ok"] is True
    assert well.json()["dependencies"]["database"] is True

    runtime_for_loop().loops["fanout receive"].task.cancel()  # dead, as after a bug
    await asyncio.sleep(0)
    ill = await client.get("/healthz")

    assert ill.status_code == 503
    assert ill.json()["loops"]["fanout receive"]["alive"] is False
    await socket.close()


def test_manage_health_passes_when_everything_answers(settings, capsys):
    settings.REDIS_URL = ""  # the laptop's configuration: no Redis to ask
    call_command("health")

    assert capsys.readouterr().out.splitlines() == ["database: ok", "channel layer: ok"]


def test_manage_health_fails_and_names_what_does_not_answer(settings, capsys):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there

    with pytest.raises(CommandError, match="unhealthy"):
        call_command("health")

    assert "redis: NOT ANSWERING" in capsys.readouterr().out


async def test_a_worker_with_another_shard_count_is_reported_until_they_agree(settings, caplog):
    """Two workers' comparisons on one Redis: the second's 16 against the first's 8 is an
    error, said once; once the 8s stop beating, their value expires and 16 agrees."""
    client = redis.asyncio.Redis.from_url(redis_url())
    key = f"chat:test:{uuid.uuid4().hex}:fanout_shards"
    first, second = (SharedSettings(client, ttl=0.3, key=key) for _ in range(2))
    try:
        settings.CHAT_FANOUT_SHARDS = 8
        await first.beat()
        settings.CHAT_FANOUT_SHARDS = 16
        await second.beat()
        await second.beat()

        assert (first.agree, second.agree) == (True, False)
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert errors == [
            "CHAT_FANOUT_SHARDS is 16 here but 8 on another worker of this site: rooms'"
            " events between them are not delivered live. Give every worker the same value."
        ]

        await asyncio.sleep(1.2)  # the 8s' value outlives them by at most 1 s here
        await second.beat()
        assert second.agree is True
        assert "agrees with the other workers again (16)" in caplog.text
    finally:
        await client.delete(key)
        await client.aclose()


async def test_healthz_fails_while_the_workers_shard_counts_differ(settings):
    settings.CHAT_LIMITS_REDIS_URL = redis_url()
    runtime = runtime_for_loop()
    try:
        assert runtime.health()["dependencies"]["the other workers' CHAT_FANOUT_SHARDS"] is True
        runtime.shared.agree = False  # as a beat finds it

        ill = await AsyncClient().get("/healthz")

        assert ill.status_code == 503
        answers = ill.json()["dependencies"]
        assert answers["the other workers' CHAT_FANOUT_SHARDS (as the loops see it)"] is False
    finally:
        await runtime.close()
