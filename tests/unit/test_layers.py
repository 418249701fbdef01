"""The in-process channel layer: Channels' in-memory layer with a cheaper expiry sweep."""

import asyncio

from chat.realtime.layers import InProcessChannelLayer


async def test_expired_messages_and_memberships_still_go_within_a_second_or_so():
    layer = InProcessChannelLayer(expiry=0.1, group_expiry=1)
    await layer.group_add("room.1", "test.listener")
    await layer.send("test.stale", {"type": "old"})

    await asyncio.sleep(2.5)  # group expiry is checked in whole seconds
    await layer.group_send("room.1", {"type": "new"})

    assert "test.stale" not in layer.channels  # the expired message was swept
    assert "test.listener" not in layer.groups.get("room.1", {})  # and the old membership


async def test_the_sweep_runs_at_most_once_a_second(monkeypatch):
    layer = InProcessChannelLayer()
    sweeps = []
    monkeypatch.setattr(
        "channels.layers.InMemoryChannelLayer._clean_expired", lambda self: sweeps.append(1)
    )
    await layer.group_add("room.1", "test.listener")

    for _ in range(50):
        await layer.group_send("room.1", {"type": "hello"})

    assert len(sweeps) == 1
    assert (await layer.receive("test.listener"))["type"] == "hello"
