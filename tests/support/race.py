"""The runner of the race senders (tests/support/concurrent_sender.py, batch_sender.py):
threads that start together and report the first error any of them raised."""

import threading
from collections.abc import Callable


def run_together(threads: int, post: Callable[[int], None]) -> None:
    """Run `post(t)` for each t in range(threads), each in a thread of its own, all released
    at once by a barrier; close each thread's database connection when it ends; raise the
    first error any thread raised (the process's exit code then says so)."""
    from django.db import connection

    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def run(t: int) -> None:
        try:
            barrier.wait()
            post(t)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        raise errors[0]
