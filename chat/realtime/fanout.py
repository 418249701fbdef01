"""Fan-out once per process, not once per socket.

Rooms are still Channels groups in name, and a broadcast is still a `group_send`. But the
member of the layer's group is this process's one channel, not every socket's, and the
layer group is a room's shard (`layer_events.carrier`), which carries the events of several
rooms in one message: the process receives a broadcast once and hands the already-encoded
frame to each local socket in the room. Per recipient that is one `send` on the socket — no
channel-layer message, no consumer dispatch, no thread hop, no JSON encoding, no task; under
daphne not even the framing: the frame's bytes are built once and written to each socket's
transport (chatsite/patches/daphne_frames.py).

Joins and leaves stay exact: a socket registers with the fan-out of its room, the process
joins the room's shard group with the first local member of any of its rooms and leaves it
with the last, and `disconnect` unregisters the socket from every room. Events of a shard's
rooms that have no socket here are dropped on arrival. A leave the layer refuses (Redis away)
is owed, and made as soon as the layer answers again.

The receive loop outlives the layer: when a receive fails (Redis killed, paused, restarted
empty) it logs the outage once, retries with backoff, joins its groups again once the layer
answers (a restarted Redis has forgotten them), logs that it is back, has the registries kept
in Redis put this process's entries back at once (`Runtime.layer_regained`), and tells each
local socket the rooms' latest seqs, so its client resyncs what the outage cost it. Its
sockets hear when the outage begins and when it ends (`live`), so a page can say that others'
messages are late rather than show itself connected and up to date.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from channels.layers import BaseChannelLayer
from django.conf import settings

from chatsite.patches.daphne_frames import text_frame

from ..protocol import events
from .layer_events import EVENT_BATCH, EVENT_STREAMS, carrier
from .layers import CHANNEL_PREFIX
from .outages import LAYER_PATIENCE, Outage, stop_if_cancelled

if TYPE_CHECKING:
    from .runtime import Runtime

logger = logging.getLogger(__name__)

# Seconds a socket's subscription (at connect, at a join) waits for a failing layer before
# its error propagates.
SUBSCRIBE_PATIENCE = LAYER_PATIENCE


class Member(Protocol):
    """What the fan-out needs of a socket (the chat consumer)."""

    socket_id: str

    def deliver(self, texts: Sequence[str], frames: bytes, longest: int) -> None: ...

    async def leave_room(self, *, room: str, text: str, announce: bool) -> None: ...

    async def session_ended(self, *, reason: str) -> None: ...

    async def layer_lost(self) -> None: ...

    async def layer_regained(self) -> None: ...

    async def recheck_room(self, *, room: str, reason: str) -> None: ...


class Fanout:
    """This process's subscriptions to layer groups, and the local sockets in each group
    (room, user or site) they carry."""

    def __init__(self, layer: BaseChannelLayer, runtime: "Runtime") -> None:
        self.layer = layer
        self.runtime = runtime
        self.channel_name: str | None = None
        self.members: dict[str, set[Member]] = {}  # group → its local sockets
        self.carried: dict[str, set[str]] = {}  # layer group → its groups with members here
        self.subscribed: set[str] = set()  # layer groups this process's channel is in
        self.lock = asyncio.Lock()  # group_add / group_discard for this process, in order
        self.fanned_out_seq: dict[str, int] = {}  # group → newest message seq handed out
        self.waiters: dict[str, list[tuple[int, asyncio.Future[None]]]] = {}
        self.outage = Outage("the channel layer (fan-out)")
        self.subscribing = Outage("the channel layer (subscribing sockets)")
        self.leaving = Outage("the channel layer (leaving groups)")
        self.owed: set[tuple[str, str]] = set()  # (layer group, channel) left only here

    async def fanned_out(self, group: str, seq: int, *, within: float) -> None:
        """Return once message `seq` of `group` was handed to this process's sockets, or
        after `within` seconds (a layer may lose the broadcast; the clients heal that)."""
        if self.fanned_out_seq.get(group, 0) >= seq or not self.outage.ok:
            return  # (while the layer is away, the broadcast will not come)
        future = asyncio.get_running_loop().create_future()
        self.waiters.setdefault(group, []).append((seq, future))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(future, within)

    def _mark_fanned_out(self, group: str, seq: int) -> None:
        if seq > self.fanned_out_seq.get(group, 0):
            self.fanned_out_seq[group] = seq
        waiting = self.waiters.get(group)
        if not waiting:
            return
        still = []
        for wanted, future in waiting:
            if future.done():
                continue
            if wanted <= seq:
                future.set_result(None)
            else:
                still.append((wanted, future))
        if still:
            self.waiters[group] = still
        else:
            del self.waiters[group]

    async def add(self, group: str, member: Member) -> None:
        """Deliver the group's broadcasts to `member`; returns once the process is subscribed
        to the group's carrier (should the layer fail for longer than SUBSCRIBE_PATIENCE, the
        member is not added and the error propagates)."""
        layer_group = carrier(group)
        self.members.setdefault(group, set()).add(member)
        self.carried.setdefault(layer_group, set()).add(group)
        if layer_group in self.subscribed:
            return
        try:
            async with self.lock:
                if layer_group in self.subscribed or layer_group not in self.carried:
                    return
                if self.channel_name is None:
                    self.channel_name = await self.layer.new_channel(CHANNEL_PREFIX)
                await self._group_add(layer_group)
                self.subscribed.add(layer_group)
                self._start()
        except BaseException:
            await self.discard(group, member)
            raise

    async def refresh(self, group: str) -> None:
        """Join the group's carrier again: a client resyncing may have found the layer lost
        track of this process (its membership expired, or Redis restarted empty)."""
        layer_group = carrier(group)
        async with self.lock:
            if layer_group in self.subscribed:
                await self._group_add(layer_group)

    async def _group_add(self, layer_group: str) -> None:
        """Add this process's channel to `layer_group`, trying again for up to
        SUBSCRIBE_PATIENCE seconds when the layer fails: a socket connecting or joining then
        waits out a blip (Redis restarting, or a new connection to it timing out while a
        storm of handshakes holds the event loop) instead of being closed with 1011. A
        failure that lasts longer propagates, as before. Logged once, like any outage."""
        await self.subscribing.retry(
            lambda: self.layer.group_add(layer_group, self.channel_name),
            deadline=time.monotonic() + SUBSCRIBE_PATIENCE,
        )

    async def discard(self, group: str, member: Member) -> None:
        """Stop delivering to `member`; the process leaves the group's carrier with the last
        member of any group it carries."""
        members = self.members.get(group)
        if members is None:
            return
        members.discard(member)
        if members:
            return
        del self.members[group]
        self.fanned_out_seq.pop(group, None)
        layer_group = carrier(group)
        carried = self.carried.get(layer_group, set())
        carried.discard(group)
        if carried:
            return
        self.carried.pop(layer_group, None)
        async with self.lock:
            if layer_group in self.carried or layer_group not in self.subscribed:
                return  # someone joined again while we waited
            self.subscribed.discard(layer_group)
            channel = self.channel_name
            if not self.subscribed:
                self._stop()
                # The receive is cancelled, and a layer may drop its channel with it
                # (channels-redis' pub/sub layer does): the next add takes a new one.
                self.channel_name = None
            await self._group_discard(layer_group, channel)

    async def _group_discard(self, layer_group: str, channel: str) -> None:
        """Take `channel` out of `layer_group`, whatever the layer does: a socket's leave or
        disconnect does not fail for it. Should the layer refuse (Redis away), the leave is
        owed, and `_leave_owed` tries it with backoff until the layer answers; left to the
        layer's `group_expiry` (a day), the process would receive and drop the group's
        broadcasts all that time. Logged once, like any outage. (A Redis that restarted
        needs no retry here: redis-py replaces a pooled connection the server closed when
        it hands it out.)"""
        try:
            await self.layer.group_discard(layer_group, channel)
        except Exception as error:
            self.leaving.failed(error)
            self._owe(layer_group, channel)

    def _owe(self, layer_group: str, channel: str) -> None:
        self.owed.add((layer_group, channel))
        self.runtime.start("fanout leave", self._settle_leaves)

    async def _settle_leaves(self) -> None:
        """Leave the owed groups once the layer answers; the loop then ends."""
        await self.leaving.retry(self._leave_owed)

    async def _leave_owed(self) -> None:
        """Leave the groups a failed `group_discard` left this process in (a group it has
        joined again since with the same channel stays)."""
        async with self.lock:
            for layer_group, channel in sorted(self.owed):
                if channel != self.channel_name or layer_group not in self.subscribed:
                    await self.layer.group_discard(layer_group, channel)
                self.owed.discard((layer_group, channel))

    def _start(self) -> None:
        self.runtime.start("fanout receive", self._receive_forever)
        self.runtime.start("fanout refresh", self._refresh_forever)

    def _stop(self) -> None:
        """No socket here needs the layer's broadcasts any more. A receive retrying through
        an outage stops with it: the outage ends here, or /healthz went on reporting the
        layer away, and acks stopped waiting for their broadcasts, long after it was back
        (until another outage ended), and the log said "Lost" with no end."""
        self.runtime.stop("fanout receive")
        self.runtime.stop("fanout refresh")
        self.outage.given_up("no socket here is subscribed any more")

    async def _receive_forever(self) -> None:
        """Receive and fan out until cancelled, whatever the layer or a socket does."""
        while True:
            stop_if_cancelled()
            try:
                event = await self.layer.receive(self.channel_name)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                await self._reconnect(error)
                continue
            try:
                await self.dispatch(event)
            except Exception:
                logger.exception("Could not fan out %s", event.get("type"))

    @property
    def live(self) -> bool:
        """Whether broadcasts reach this process now (its receive is not in an outage)."""
        return self.outage.ok

    async def _reconnect(self, error: Exception) -> None:
        """After a failed receive: tell the local sockets (at the outage's first failure),
        retry until the layer takes our groups again, then have every local socket's client
        check what it missed."""
        began = self.outage.ok
        delay = self.outage.failed(error)
        self._release_waiters()
        if began:
            await self._tell_members("told the layer is away", lambda member: member.layer_lost())
        await asyncio.sleep(delay)
        await self.outage.retry(self._subscribe_again)
        self.runtime.layer_regained()
        await self._tell_members("told to resync", lambda member: member.layer_regained())

    async def _subscribe_again(self) -> None:
        """Add the process to each of its layer groups again (idempotent for the layer)."""
        async with self.lock:
            for group in list(self.subscribed):
                await self.layer.group_add(group, self.channel_name)

    async def _tell_members(self, what: str, call: Callable[[Member], Awaitable[None]]) -> None:
        members = {member for group in self.members.values() for member in group}
        results = await asyncio.gather(
            *(call(member) for member in members), return_exceptions=True
        )
        failed = sum(isinstance(result, Exception) for result in results)
        if failed:
            logger.warning("%d socket(s) could not be %s", failed, what)

    def _release_waiters(self) -> None:
        """Acks waiting for a broadcast that the failed layer will not bring go now."""
        for waiting in self.waiters.values():
            for _, future in waiting:
                if not future.done():
                    future.set_result(None)
        self.waiters.clear()

    async def _refresh_forever(self) -> None:
        """Re-add the process to its groups now and then: the layer forgets a member after
        `group_expiry` (24 h by default) however long its sockets stay."""
        while True:
            stop_if_cancelled()
            await asyncio.sleep(settings.CHAT_GROUP_REFRESH_SECONDS)
            try:
                await self._subscribe_again()
            except Exception:
                logger.exception(
                    "Could not refresh the fan-out's groups; next try in %s s",
                    settings.CHAT_GROUP_REFRESH_SECONDS,
                )

    async def dispatch(self, event: dict[str, Any]) -> None:
        """Hand one layer event (or a batch of them, in order, or the batches of several
        groups) to every local socket in its group."""
        kind = event["type"]
        if kind == EVENT_STREAMS:
            for group, batch in event["streams"]:
                if group in self.members:  # else a room of the shard with no socket here
                    await self._dispatch_batch(group, batch)
            return
        if event["group"] not in self.members:
            return  # a room of the shard with no socket here (or none any more)
        if kind == EVENT_BATCH:
            await self._dispatch_batch(event["group"], event["events"])
            return
        members = list(self.members.get(event["group"], ()))
        if kind == events.EVENT_BROADCAST:
            self._broadcast(event["group"], [event])
        elif kind == events.EVENT_TYPING:
            text, sender = event["text"], event["sender"]
            frame = text_frame(text)
            for member in members:
                if member.socket_id != sender:
                    _deliver(member, (text,), frame, len(frame))
        elif kind == events.EVENT_LEAVE_ROOM:
            for member in members:
                try:
                    await member.leave_room(
                        room=event["room"], text=event["text"], announce=event["announce"]
                    )
                except Exception:
                    logger.exception("Taking a socket out of a room failed")
        elif kind == events.EVENT_SESSION_ENDED:
            for member in members:
                try:
                    await member.session_ended(reason=event["reason"])
                except Exception:
                    logger.exception("Ending a session on a socket failed")
        elif kind == events.EVENT_RECHECK_ROOM:
            for member in members:
                try:
                    await member.recheck_room(room=event["room"], reason=event["reason"])
                except Exception:
                    logger.exception("Checking a socket's right to a room failed")
        else:
            logger.warning("Unknown fan-out event %r", kind)

    async def _dispatch_batch(self, group: str, batch: list[dict[str, Any]]) -> None:
        """A batch's events in order; each run of broadcasts in it reaches a socket as one
        write of their frames joined (one system call per socket, not one per message)."""
        run: list[dict[str, Any]] = []
        for event in batch:
            if event["type"] == events.EVENT_BROADCAST:
                run.append(event)
                continue
            if run:
                self._broadcast(group, run)
                run = []
            try:
                await self.dispatch(event)
            except Exception:
                logger.exception("Could not fan out %s", event.get("type"))
        if run:
            self._broadcast(group, run)

    def _broadcast(self, group: str, run: list[dict[str, Any]]) -> None:
        """Hand broadcasts of `group`, in order, to every local socket in it."""
        texts = [event["text"] for event in run]
        frames = [text_frame(text) for text in texts]
        joined = frames[0] if len(frames) == 1 else b"".join(frames)
        longest = max(map(len, frames))
        for member in list(self.members.get(group, ())):
            _deliver(member, texts, joined, longest)
        seqs = [event["seq"] for event in run if "seq" in event]
        if seqs:
            self._mark_fanned_out(group, max(seqs))


def _deliver(member: Member, texts: Sequence[str], frames: bytes, longest: int) -> None:
    """One socket's failure must not cost the others their delivery. A socket that closed
    meanwhile is no failure: ASGI servers raise an OSError for a send after the close
    (uvicorn's ClientDisconnected), and its disconnect, already on its way, cleans up."""
    try:
        member.deliver(texts, frames, longest)
    except OSError as error:
        logger.debug("A socket closed before a broadcast reached it: %r", error)
    except Exception:
        logger.exception("Delivery to a socket failed")


def run_eagerly(coro: Coroutine[Any, Any, None]) -> Awaitable[None] | None:
    """Run `coro` until it first has to wait: None if it finished without waiting (daphne's
    send always does), else an awaitable that finishes it. So a socket whose transport
    blocks costs a task, and stalls nobody, while the others cost none (Python 3.12's
    eager task factory does the same)."""
    try:
        waiting_for = coro.send(None)
    except StopIteration:
        return None
    return _finish(coro, waiting_for)


async def _finish(coro: Coroutine[Any, Any, None], waiting_for: Any) -> None:
    """Drive a started coroutine to its end, awaiting each future it yields."""
    while True:
        try:
            if waiting_for is None:  # a bare yield, as in asyncio.sleep(0)
                await asyncio.sleep(0)
            else:
                # The coroutine's own `await` marked the future as yielded to a task (the flag
                # a Task clears when it takes one); clear it as a Task does, or awaiting the
                # future again here raises "await wasn't used with future".
                waiting_for._asyncio_future_blocking = False
                await waiting_for
        except GeneratorExit:
            # This driver is being closed, never to finish (its loop went away with it still
            # waiting): close the coroutine it drives too, rather than throw into one that
            # may be closed already.
            coro.close()
            raise
        except BaseException as error:
            try:
                waiting_for = coro.throw(error)
            except StopIteration:
                return
        else:
            try:
                waiting_for = coro.send(None)
            except StopIteration:
                return
