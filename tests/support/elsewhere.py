"""Another worker's broadcasts, as its publisher puts them on the channel layer.

What a process publishes reaches its own sockets without the layer (chat/realtime/fanout.py,
`deliver_here`), so a test of the layer's path into a process (its receive, its groups after
an outage or an expiry) needs a broadcast from somewhere else: `another_worker_broadcasts`,
or `readers_on_another_worker`, under which this process's sockets hear its own broadcasts
only through the layer, as another worker's sockets do."""

from typing import Any

import pytest
from channels.layers import get_channel_layer

from chat.protocol import events
from chat.realtime.fanout import Fanout
from chat.realtime.layer_events import carrier
from chat.realtime.runtime import runtime_for_loop

CREATED = "2026-01-01T00:00:00+00:00"


def a_room_group_here() -> str:
    """The layer group of a room that this process's fan-out has sockets in."""
    return next(group for group in runtime_for_loop().fanout.members if group.startswith("room."))


def announcement(group: str, n: int) -> dict:
    """A broadcast of a frame the protocol knows (the test Socket checks each one), told
    apart by its `id`."""
    frame = events.announcement_frame(announcement_id=n, body="probe", created=CREATED)
    return events.broadcast_event(group=group, frame=frame)


async def another_worker_broadcasts(group: str, n: int) -> None:
    """Announcement `n` to `group`, sent on the layer as another worker's publisher sends
    it (to the room's shard, no origin of this process)."""
    await get_channel_layer().group_send(carrier(group), announcement(group, n))


def readers_on_another_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process hands nothing to its own sockets and takes its own layer messages as
    another worker's: every broadcast reaches every socket through the layer, so a faulty
    layer's losses reach the readers, as they would on another worker."""

    async def hand_nothing(self: Fanout, message: dict[str, Any]) -> None:
        return None

    monkeypatch.setattr(Fanout, "deliver_here", hand_nothing)
    monkeypatch.setattr(Fanout, "is_own", lambda self, message: False)
