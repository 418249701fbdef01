"""Joins that arrive together are read together (chat/realtime/join_reads.py): one trip to
the database thread for the batch, each socket still answered as if it joined alone, and a
database that fails fails only the batch it was reading."""

import asyncio
from typing import Any

import pytest
from django.db import OperationalError

from chat import selectors
from tests.support.factories import post_messages

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def reads(monkeypatch) -> dict[str, list[int]]:
    """The size of each batch read, in order, of room checks and of join pages."""
    sizes: dict[str, list[int]] = {"rooms_joinable": [], "room_join_pages": []}
    for name, batches in sizes.items():
        real = getattr(selectors, name)

        def counting(
            requests: Any, real: Any = real, batches: list[int] = batches, **options: Any
        ) -> Any:
            batches.append(len(requests))
            return real(requests, **options)

        monkeypatch.setattr(selectors, name, counting)
    return sizes


async def test_sockets_joining_at_once_are_read_in_batches_each_with_its_own_answer(
    connect, alice, bob, general, reads
):
    await asyncio.to_thread(post_messages, general, bob, 3)
    sockets = [await connect() for _ in range(12)] + [await connect(alice)]

    replies = await asyncio.gather(*(socket.join("general") for socket in sockets))

    for batches in reads.values():
        assert sum(batches) == len(sockets)
        assert len(batches) < len(sockets)  # what came while a batch was read waited for the next
    for reply in replies:
        assert reply["last_seq"] == 3
        assert [m["seq"] for m in reply["messages"]] == [1, 2, 3]


def fail_pages_once(monkeypatch: Any, error: Exception) -> list[Exception]:
    """selectors.room_join_pages raises `error` on its next call only; the list empties
    once it has."""
    real, failures = selectors.room_join_pages, [error]

    def failing_once(requests: Any, **options: Any) -> Any:
        if failures:
            raise failures.pop()
        return real(requests, **options)

    monkeypatch.setattr(selectors, "room_join_pages", failing_once)
    return failures


async def test_a_join_read_when_the_connection_died_is_read_again(connect, general, monkeypatch):
    failures = fail_pages_once(
        monkeypatch, OperationalError("server closed the connection unexpectedly")
    )
    socket = await connect()

    reply = await socket.join("general")

    assert reply["room"] == "general"
    assert failures == []


async def test_a_read_that_fails_answers_its_joins_with_an_error_and_the_next_join_works(
    connect, general, monkeypatch
):
    fail_pages_once(monkeypatch, RuntimeError("a bug"))  # not a lost connection: not retried
    socket = await connect()

    refused = await socket.request({"type": "join", "room": "general"})
    joined = await socket.join("general")

    assert (refused["type"], refused["code"]) == ("error", "server_error")
    assert joined["room"] == "general"
