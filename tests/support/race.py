"""Threads that start together and report the first error any of them raised: the race
senders (tests/support/concurrent_sender.py, batch_sender.py) and the services' races
(tests/unit/test_services.py)."""

import threading
from collections.abc import Callable
from typing import TypeVar

Result = TypeVar("Result")


def run_together(
    threads: int, post: Callable[[int], Result], *, timeout: float | None = None
) -> list[Result]:
    """Run `post(t)` for each t in range(threads), each in a thread of its own, all released
    at once by a barrier; close each thread's database connection when it ends; raise the
    first error any thread raised (the process's exit code then says so). The results, in
    thread order; each thread is waited for at most `timeout` seconds."""
    from django.db import connection

    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []
    results: list = [None] * threads

    def run(t: int) -> None:
        try:
            barrier.wait()
            results[t] = post(t)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout)
    if errors:
        raise errors[0]
    return results
