"""Which event loop a sync worker thread serves, as asgiref records it.

asgiref has no public way to ask this: `SyncToAsync` records the loop in its thread-local
(`threadlocal.main_event_loop`, `main_event_loop_pid`) for its own `AsyncToSync` to find.
The publisher (chat/realtime/publisher.py) reads the same record to queue a broadcast on that loop
instead of waiting for it.
"""

import asyncio
import os
import threading

from asgiref.sync import AsyncToSync, SyncToAsync

from .checks import fail, require_source

PATCH = "asgiref_loop"


def event_loop_of_this_thread() -> asyncio.AbstractEventLoop | None:
    """The running loop that this worker thread serves (as asgiref records it), if any."""
    if getattr(SyncToAsync.threadlocal, "main_event_loop_pid", None) != os.getpid():
        return None
    loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    return loop if loop is not None and loop.is_running() else None


def check() -> None:
    """Fail loudly unless asgiref still records a worker thread's loop where
    `event_loop_of_this_thread` reads it."""
    if not isinstance(getattr(SyncToAsync, "threadlocal", None), threading.local):
        raise fail(PATCH, "asgiref", "asgiref.sync.SyncToAsync.threadlocal", "does not exist")
    fields = ["threadlocal.main_event_loop =", "threadlocal.main_event_loop_pid ="]
    require_source(
        PATCH,
        "asgiref",
        getattr(SyncToAsync, "thread_handler", None),
        fields,
        label="asgiref.sync.SyncToAsync.thread_handler",
    )
    # asgiref's own reader of the record: the meaning publisher relies on is the same.
    require_source(
        PATCH,
        "asgiref",
        vars(AsyncToSync).get("__call__"),
        ['"main_event_loop_pid"', '"main_event_loop"'],
        label="asgiref.sync.AsyncToSync.__call__",
    )
