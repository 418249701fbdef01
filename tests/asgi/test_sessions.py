"""A logout or a deactivation reaches the user's open sockets at once: they are told why and
closed, and a new socket with the old cookie is anonymous."""

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from tests.support.sockets import RECEIVE_TIMEOUT

pytestmark = pytest.mark.django_db(transaction=True)


async def expect_closed(socket, reason: str) -> None:
    ended = await socket.recv_until("session_ended")
    closed = await socket.communicator.receive_output(RECEIVE_TIMEOUT)
    socket.open = False
    assert ended == {"type": "session_ended", "reason": reason}
    assert closed == {"type": "websocket.close", "code": 4001}


async def test_logging_out_closes_every_tab_of_that_user_only(connect, alice, bob, general):
    client = Client()
    await database_sync_to_async(client.force_login)(alice)
    cookie = client.cookies["sessionid"].value
    tabs = [await connect(alice, cookie=cookie), await connect(alice, cookie=cookie)]
    other = await connect(bob)
    for socket in (*tabs, other):
        await socket.join("general")

    await database_sync_to_async(client.post)("/accounts/logout/")

    for tab in tabs:
        await expect_closed(tab, "You logged out.")
    assert (await other.request({"type": "ping"}))["type"] == "pong"
    # The old cookie no longer signs anyone in: a new socket may read but not post.
    again = await connect(alice, cookie=cookie)
    await again.join("general")
    refused = await again.request(
        {"type": "send", "room": "general", "body": "still me?", "client_id": "x"}
    )
    assert refused["code"] == "auth_required"
    await other.close()
    await again.close()


async def test_deactivating_a_user_closes_their_sockets(connect, alice, general):
    socket = await connect(alice)
    await socket.join("general")

    alice.is_active = False
    await database_sync_to_async(alice.save)()  # as the admin's user form does

    await expect_closed(socket, "This account was deactivated.")
    again = await connect(alice)  # her session no longer authenticates her
    await again.join("general")
    refused = await again.request({"type": "typing", "room": "general"})
    assert refused["code"] == "auth_required"
    await again.close()
