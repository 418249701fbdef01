"""run_eagerly (chat/realtime/fanout.py): a socket's send runs at once, and only a send that
really waits becomes a task. daphne's sends never wait; uvicorn's, the HTTP fallback's and
a full buffer's do, in every way a coroutine can wait."""

import asyncio

import pytest

from chat.realtime.fanout import run_eagerly


async def finished(coro) -> bool:
    """Run `coro` as the fan-out does; whether it had to wait."""
    rest = run_eagerly(coro)
    if rest is None:
        return False
    await asyncio.ensure_future(rest)
    return True


async def test_a_send_that_never_waits_finishes_at_once_without_a_task():
    done = []

    async def send():
        done.append(1)

    assert await finished(send()) is False
    assert done == [1]


async def _sleeping(done):
    await asyncio.sleep(0.01)
    await asyncio.sleep(0)
    await asyncio.sleep(0.01)
    done.append(1)


async def _on_event(done, event):
    await event.wait()
    done.append(1)


async def _under_a_lock(done, lock):
    async with lock:
        done.append(1)


async def _on_a_shielded_future(done, future):
    await asyncio.shield(future)
    done.append(1)


@pytest.mark.parametrize("way", ["sleep", "event", "lock", "shielded future"])
async def test_a_send_that_really_waits_is_finished_whatever_it_waits_on(way):
    done: list[int] = []
    loop = asyncio.get_running_loop()
    event, lock, future = asyncio.Event(), asyncio.Lock(), loop.create_future()
    await lock.acquire()
    send = {
        "sleep": lambda: _sleeping(done),
        "event": lambda: _on_event(done, event),
        "lock": lambda: _under_a_lock(done, lock),
        "shielded future": lambda: _on_a_shielded_future(done, future),
    }[way]()
    running = asyncio.ensure_future(finished(send))
    await asyncio.sleep(0.005)
    event.set()
    lock.release()
    future.set_result(None)

    assert await running is True
    assert done == [1]


async def test_an_error_while_waiting_reaches_the_send():
    future = asyncio.get_running_loop().create_future()
    seen = []

    async def send():
        try:
            await future
        except ConnectionError as error:
            seen.append(str(error))

    running = asyncio.ensure_future(finished(send()))
    await asyncio.sleep(0)
    future.set_exception(ConnectionError("the peer went away"))

    await running
    assert seen == ["the peer went away"]


@pytest.mark.parametrize("send_closed_first", [False, True])
async def test_a_driver_closed_while_its_send_waits_closes_the_send_quietly(send_closed_first):
    """A send still waiting when its loop goes away (a socket's cleanup on a Redis that never
    answers, at shutdown): the garbage collector closes the driver and the send, in either
    order. Closing the driver closes the send (its `finally` runs); it threw into a send
    closed first, and "cannot reuse already awaited coroutine" was raised at collection."""
    future = asyncio.get_running_loop().create_future()
    cleaned = []

    async def send():
        try:
            await future
        finally:
            cleaned.append(1)

    coro = send()
    rest = run_eagerly(coro)
    assert rest is not None
    rest.send(None)  # the driver now waits on the future, as its task would
    if send_closed_first:
        coro.close()
    rest.close()

    assert cleaned == [1]
    future.cancel()
