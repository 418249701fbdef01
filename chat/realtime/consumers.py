"""The chat socket: one per browser tab, joined to any number of rooms.

Thin by design: each client frame is parsed (chat.protocol.requests), handed to one selector or
service, and the result or ChatError becomes one reply frame. Room broadcasts reach the
socket through its process's fan-out (chat.realtime.fanout), already encoded, as one send.
"""

import asyncio
import collections
import logging
import uuid
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from chatsite.patches import daphne_frames

from .. import addresses, selectors, services
from ..models import Room
from ..protocol import events, requests
from ..protocol.errors import ChatError, ErrorCode
from . import limits, transport
from .fanout import run_eagerly
from .outages import Fallbacks, redis_away
from .presence import GUEST
from .publisher import publish
from .runtime import runtime_for_loop

logger = logging.getLogger(__name__)

# Frames answered `unavailable` while the channel layer or Redis is away (a join waited out
# its subscription's patience): every socket's, so logged once an outage, not per frame.
UNANSWERED = Fallbacks("the channel layer (answering frames)", logger)


@dataclass
class JoinedRoom:
    room: Room
    group: str
    counted: bool = False  # registered in presence (a quiet join is not)


class ChatConsumer(AsyncWebsocketConsumer):
    """Speaks the protocol in docs/protocol.md at /ws/chat/, and over HTTP where WebSockets
    are blocked (chat/realtime/fallback.py runs it behind /fallback/chat/)."""

    # No channel of its own: the process's fan-out delivers room events to the socket, so
    # a socket costs the layer nothing and each broadcast costs the socket one send.
    channel_layer_alias = None

    ended = False  # websocket.disconnect was handled
    counted = False  # counted against its cap (its user's, or an anonymous one's address)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Run the socket, and undo what it did however it ends: an exception escaping a
        handler (a send that raised) ends the app without websocket.disconnect, and daphne
        closes the socket (1011) without telling it, so `disconnect` runs here instead.

        Messages are read and handled in this task, one after another, as channels'
        AsyncConsumer.__call__ does for a consumer without a channel layer, minus the task it
        starts per receive and the asyncio.wait around it, which an idle socket would hold
        for as long as it is open (about 2.5 KB)."""
        self.scope = scope
        self.channel_layer = None  # channel_layer_alias is None
        self.base_send = send
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass
        finally:
            if not self.ended:
                self.ended = True
                try:
                    await self.disconnect(1011)
                except Exception:
                    logger.exception("Cleanup failed for a socket that ended abnormally")

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        """Runs when the socket closed: cleanup, exactly once. Not channels' own, which also
        hops to the database thread to close stale connections once the socket is gone, as
        its dispatch does (see `dispatch`: nothing here needs it); this consumer is in no
        channel-layer group of its own for it to leave (the fan-out's are the process's).
        With 5,000 sockets closing at once those hops were a fifth of the CPU it cost."""
        self.ended = True
        await self.disconnect(message["code"])
        raise StopConsumer()

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Call the handler without channels' per-message close_old_connections thread hop
        (django/channels#2090): every database call here goes through
        database_sync_to_async, which closes stale connections itself."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        """Accept every handshake that passed the Origin check; anonymous sockets may read."""
        self.user = self.scope["user"]
        self.socket_id = uuid.uuid4().hex
        self.runtime = runtime_for_loop()
        self.limits = self.runtime.limits
        self.limit_key = limits.socket_key(
            user_id=self.user.pk, address=addresses.scope_address(self.scope)
        )
        self.joined: dict[str, JoinedRoom] = {}
        self.fanout = self.runtime.fanout
        self.presence = self.runtime.presence
        # Broadcasts bypass the session middleware's send wrapper (chat/realtime/transport.py).
        self.raw_send = self.scope.get(transport.SCOPE_KEY, self.base_send)
        # Under daphne, a broadcast's ready-made frame goes to the transport (None elsewhere).
        self.write_frame = daphne_frames.frame_writer(self.raw_send)
        self.backlog: collections.deque[str] | None = None  # frames behind a blocked send
        self.draining: asyncio.Task | None = None
        await self.accept()
        await self.fanout.add(events.SITE_GROUP, self)
        if not self.fanout.live:  # an outage began before this socket could hear of it
            await self.layer_lost()
        cap, what = (
            (settings.CHAT_MAX_SOCKETS_PER_USER, "open sockets per user")
            if self.user.is_authenticated
            else (settings.CHAT_MAX_ANONYMOUS_SOCKETS_PER_ADDRESS, "anonymous sockets per address")
        )
        if not await self.limits.socket_opened(self.limit_key, self.socket_id, cap):
            error = ChatError(ErrorCode.LIMIT_REACHED, f"At most {cap} {what}.")
            await self.send_frame(events.error_frame(error))
            await self.close(code=4008)
            return
        self.counted = True
        if self.user.is_authenticated:
            # Anything addressed to the user (a logout, a deactivation) reaches every tab.
            await self.fanout.add(events.user_group(self.user.pk), self)

    async def disconnect(self, code: int) -> None:
        """Leave every group this socket joined and update presence: undo all of join.

        Each step runs whatever the others do, and all of them run to the end even if the
        server gives up waiting for this socket (daphne cancels a slow disconnect): each
        forgets the socket locally at once, then tells Redis; whatever Redis or the layer
        refuses (it is away) is owed and made once it answers: a presence or socket-cap
        removal by that registry's heartbeat (`RedisPresence.remove`), a leave of a layer
        group by the fan-out (`Fanout._group_discard`). A removal Redis does not answer
        (paused) fails when its pipeline does (redis_turns.TIMEOUT_SECONDS) and is owed."""
        steps: list[tuple[Awaitable[None], str]] = [
            (self._leave_room(slug), f"leaving room {slug[:80]!r}")
            for slug in list(getattr(self, "joined", {}))
        ]
        if getattr(self, "draining", None) is not None:
            self.draining.cancel()
        if getattr(self, "fanout", None) is not None:
            steps.append((self.fanout.discard(events.SITE_GROUP, self), "the site group"))
        if self.counted:
            self.counted = False
            steps.append(
                (self.limits.socket_closed(self.limit_key, self.socket_id), "the socket cap")
            )
            if self.user.is_authenticated:
                group = events.user_group(self.user.pk)
                steps.append((self.fanout.discard(group, self), "the user's group"))
        # Each step runs at once as far as it can without waiting (in memory, every one goes
        # to its end): only a step that waits (for Redis) costs a task, not every step of
        # every socket when thousands close at once.
        waiting = [
            rest
            for step, what in steps
            if (rest := run_eagerly(self._cleanup(step, what))) is not None
        ]
        if waiting:
            await asyncio.shield(asyncio.gather(*waiting))

    async def _cleanup(self, step: Awaitable[None], what: str) -> None:
        try:
            await step
        except Exception:
            logger.exception("Cleanup of socket %s failed at %s; going on", self.socket_id, what)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Answer one client frame; a bad frame gets an error and changes nothing."""
        ref = None
        try:
            if text_data is not None and _too_big(text_data):
                raise ChatError(
                    ErrorCode.BAD_REQUEST,
                    f"Frames can be at most {settings.CHAT_MAX_FRAME_BYTES} bytes.",
                )
            frame, ref = requests.decode(text_data)
            request = requests.parse(frame)
            await self.handlers[type(request)](self, request, ref)
        except ChatError as error:
            await self.send_frame(events.error_frame(error, ref))
        except Exception as failure:
            if redis_away(failure):  # expected in an outage, which the client waits out
                UNANSWERED.failed("Could not answer a frame: the channel layer or Redis is away")
                error = ChatError(ErrorCode.UNAVAILABLE)
            else:
                logger.exception(
                    "Unexpected failure answering a frame on socket %s", self.socket_id
                )
                error = ChatError(ErrorCode.SERVER_ERROR)
            await self.send_frame(events.error_frame(error, ref))
        else:
            UNANSWERED.answered()

    # Client frames ------------------------------------------------------------------------

    async def on_join(self, request: requests.Join, ref: str | None) -> None:
        """Runs on `join`: subscribe (first time) and send the messages the client lacks."""
        await self._check_rate(limits.JOIN, settings.CHAT_JOIN_RATE_LIMIT)
        if (
            request.room not in self.joined
            and len(self.joined) >= settings.CHAT_MAX_ROOMS_PER_SOCKET
        ):
            raise ChatError(
                ErrorCode.LIMIT_REACHED,
                f"A socket can be in at most {settings.CHAT_MAX_ROOMS_PER_SOCKET} rooms.",
            )
        room = await self.runtime.joinable.run((request.room, self.user))
        # Subscribe before reading, so nothing posted in between is missed.
        joined = await self._subscribe(request.room, room)
        await self._count_online(joined, online=not request.quiet)
        page = await self.runtime.reader.run((room, self.user, request.since))
        present = await self.presence.in_room(room_id=room.pk)
        messages, cut = events.messages_within(
            page.messages,
            budget=settings.CHAT_FRAME_BUDGET_BYTES,
            keep_newest=request.since is None,
        )
        await self.send_page(
            events.joined_frame(
                room_slug=room.slug,
                name=room.name,
                topic=room.topic,
                messages=messages,
                last_seq=page.last_seq,
                online=present.online,
                guests=present.guests,
                presence_v=present.v,
                has_more=page.has_more or cut,
                read=page.read,
                unread=page.unread,
                thread_reads=page.thread_reads,
            ),
            ref,
        )

    async def on_leave(self, request: requests.Leave, ref: str | None) -> None:
        """Runs on `leave`: the socket hears nothing more from the room (idempotent)."""
        await self._leave_room(request.room)
        await self.send_frame(events.left_frame(room_slug=request.room), ref)

    async def on_send(self, request: requests.Send, ref: str | None) -> None:
        """Runs on `send`: store (or find the retried original) and ack after commit."""
        joined = self._require_member(request.room)
        await self._check_rate(limits.SEND, settings.CHAT_RATE_LIMIT)
        here: frozenset[int] = frozenset()
        if services.here_wanted(request.body):
            members = await database_sync_to_async(selectors.notifiable_member_ids)(
                room=joined.room
            )
            here = frozenset(await self.limits.connected(members))
        draft = services.MessageDraft(
            room=joined.room,
            author=self.user,
            body=request.body,
            client_id=request.client_id,
            here=here,
            attachments=request.attachments,
            reply_to=request.reply_to,
            thread=request.thread,
            also_in_room=request.also_in_room,
        )
        message, created = await self.runtime.writer.run(draft)
        if created:
            # Ack once this process has fanned the message out (or after a bound), so senders
            # cannot outrun the fan-out: a full room slows its senders down instead of
            # overflowing the layer and dropping broadcasts.
            await self.fanout.fanned_out(
                joined.group, message.seq, within=settings.CHAT_ACK_WAITS_FOR_FANOUT
            )
        await self.send_frame(
            events.ack_frame(
                room_slug=request.room,
                client_id=request.client_id,
                message_id=message.pk,
                seq=message.seq,
            ),
            ref,
        )

    async def on_typing(self, request: requests.Typing, ref: str | None) -> None:
        """Runs on `typing`: tell the room's other sockets; nothing is stored."""
        joined = self._require_member(request.room)
        await self._check_rate(limits.TYPING, settings.CHAT_TYPING_RATE_LIMIT)
        frame = events.typing_frame(room_slug=request.room, username=self.user.get_username())
        publish(
            joined.group,
            events.typing_event(group=joined.group, frame=frame, sender=self.socket_id),
        )

    async def on_history(self, request: requests.History, ref: str | None) -> None:
        """Runs on `history`: a page of older messages, oldest first."""
        joined = self._require_joined(request.room)
        await self._check_rate(limits.HISTORY, settings.CHAT_HISTORY_RATE_LIMIT)
        page = await database_sync_to_async(selectors.messages_before)(
            room=joined.room, seq=request.before, limit=request.limit
        )
        messages, cut = events.messages_within(
            page.messages, budget=settings.CHAT_FRAME_BUDGET_BYTES, keep_newest=True
        )
        await self.send_page(
            events.history_frame(
                room_slug=request.room, messages=messages, has_more=page.has_more or cut
            ),
            ref,
        )

    async def on_ping(self, request: requests.Ping, ref: str | None) -> None:
        """Runs on `ping`: prove the connection is alive and tell each joined room's last seq,
        so a client that missed the last broadcast of a quiet room notices and resyncs, and
        whether broadcasts are live (so a page that missed a `live` frame, or took a new
        connection for a new worker, learns it at its next ping)."""
        last = {}
        if self.joined:
            by_id = await database_sync_to_async(selectors.rooms_last_seq)(
                room_ids=[joined.room.pk for joined in self.joined.values()]
            )
            last = {slug: by_id.get(j.room.pk, 0) for slug, j in self.joined.items()}
        await self.send_frame(events.pong_frame(rooms=last, live=self.fanout.live), ref)

    async def on_edit(self, request: requests.Edit, ref: str | None) -> None:
        """Runs on `edit`: change the body of one's own recent message; the room hears
        `message_edited`."""
        joined = self._require_member(request.room)
        await self._check_rate(limits.EDIT, settings.CHAT_EDIT_RATE_LIMIT)
        message = await database_sync_to_async(services.message_edit)(
            room=joined.room, message_id=request.id, editor=self.user, body=request.body
        )
        await self.send_frame(
            events.edited_frame(room_slug=request.room, message_id=message.pk, seq=message.rev),
            ref,
        )

    async def on_delete(self, request: requests.Delete, ref: str | None) -> None:
        """Runs on `delete`: delete one's own message (staff: anyone's); the room hears
        `message_deleted`."""
        joined = self._require_member(request.room)
        await self._check_rate(limits.EDIT, settings.CHAT_EDIT_RATE_LIMIT)
        message = await database_sync_to_async(services.message_delete_as)(
            room=joined.room, message_id=request.id, user=self.user
        )
        await self.send_frame(
            events.deleted_frame(room_slug=request.room, message_id=message.pk, seq=message.rev),
            ref,
        )

    async def on_read(self, request: requests.Read, ref: str | None) -> None:
        """Runs on `read`: store how far the user has read; all their tabs hear `read`."""
        joined = self._require_member(request.room)
        await self._check_rate(limits.READ, settings.CHAT_READ_RATE_LIMIT)
        seq = await database_sync_to_async(services.room_mark_read)(
            room=joined.room, user=self.user, seq=request.seq
        )
        await self.send_frame(events.read_frame(room_slug=request.room, seq=seq), ref)

    async def on_react(self, request: requests.React, ref: str | None) -> None:
        """Runs on `react`: put a reaction on a message or take it back; the room hears
        `message_reactions` if that changed anything."""
        joined = self._require_member(request.room)
        await self._check_rate(limits.REACT, settings.CHAT_REACT_RATE_LIMIT)
        message = await database_sync_to_async(services.reaction_set)(
            room=joined.room,
            message_id=request.id,
            user=self.user,
            emoji=request.emoji,
            on=request.on,
        )
        await self.send_frame(
            events.reacted_frame(room_slug=request.room, message_id=message.pk, seq=message.rev),
            ref,
        )

    async def on_thread(self, request: requests.Thread, ref: str | None) -> None:
        """Runs on `thread`: a root message and its newest replies, for a room's reader."""
        joined = self._require_joined(request.room)
        await self._check_rate(limits.HISTORY, settings.CHAT_HISTORY_RATE_LIMIT)
        page = await database_sync_to_async(selectors.thread_page)(
            room=joined.room, root_id=request.id, user=self.user, limit=settings.CHAT_HISTORY_LIMIT
        )
        messages, cut = events.messages_within(
            page.messages, budget=settings.CHAT_FRAME_BUDGET_BYTES, keep_newest=True
        )
        await self.send_page(
            events.thread_frame(
                room_slug=request.room,
                root=events.message_dict(page.root),
                messages=messages,
                has_more=page.has_more or cut,
                read=page.read,
            ),
            ref,
        )

    async def on_thread_read(self, request: requests.ThreadRead, ref: str | None) -> None:
        """Runs on `thread_read`: store how far the user has read a thread; all their tabs
        hear `thread_read`."""
        joined = self._require_member(request.room)
        await self._check_rate(limits.READ, settings.CHAT_READ_RATE_LIMIT)
        root_id, seq = await database_sync_to_async(services.thread_mark_read)(
            room=joined.room, root_id=request.id, user=self.user, seq=request.seq
        )
        await self.send_frame(
            events.thread_read_frame(room_slug=request.room, root_id=root_id, seq=seq), ref
        )

    handlers = {
        requests.Join: on_join,
        requests.Leave: on_leave,
        requests.Send: on_send,
        requests.Typing: on_typing,
        requests.History: on_history,
        requests.Ping: on_ping,
        requests.Edit: on_edit,
        requests.Delete: on_delete,
        requests.Read: on_read,
        requests.React: on_react,
        requests.Thread: on_thread,
        requests.ThreadRead: on_thread_read,
    }

    # From the fan-out -----------------------------------------------------------------------

    def deliver(self, texts: Sequence[str], frames: bytes, longest: int) -> None:
        """Runs for each broadcast in a joined room, or each run of them a batch brought:
        the frames are already encoded, as JSON (`texts`) and as WebSocket frames joined
        (`frames`, the longest `longest` bytes), written as they are where daphne allows.

        The sends run at once; should the transport make one wait, later frames queue
        behind it, up to CHAT_SOCKET_BACKLOG, and beyond that are dropped for this socket
        only (its client notices the gap in seqs, or the pong, and resyncs). Nothing goes
        to a socket whose disconnect arrived while its cleanup runs: there is no one to read
        it, and uvicorn raises on such a send."""
        if self.ended:
            return
        if (
            self.backlog is None
            and self.write_frame is not None
            and self.write_frame(frames, longest)
        ):
            return
        for text in texts:
            if self.backlog is not None:
                if len(self.backlog) < settings.CHAT_SOCKET_BACKLOG:
                    self.backlog.append(text)
                continue
            rest = run_eagerly(self.raw_send({"type": "websocket.send", "text": text}))
            if rest is not None:
                self.backlog = collections.deque()
                self.draining = asyncio.create_task(self._drain(rest))

    async def _drain(self, rest: Awaitable[None]) -> None:
        try:
            await rest
            while self.backlog:
                await self.raw_send({"type": "websocket.send", "text": self.backlog.popleft()})
        except OSError as error:  # the socket closed meanwhile (see fanout._deliver)
            logger.debug("Socket %s closed with frames still to send: %r", self.socket_id, error)
        finally:
            self.backlog = None

    async def leave_room(self, *, room: str, text: str, announce: bool) -> None:
        """Runs when the socket must leave a room (archived, or the user banned from it):
        leave it, then send the frame that says why (`room_closed` or `removed`).
        `announce`: tell the room the user went offline (not when the room itself closed)."""
        if room in self.joined:
            await self._leave_room(room, announce=announce)
        await self.raw_send({"type": "websocket.send", "text": text})

    async def layer_lost(self) -> None:
        """Runs when this process lost the channel layer: broadcasts reach no one here until
        it is back, so the page says others' messages are late (`live`, not ok)."""
        await self.send_frame(events.live_frame(ok=False))

    async def layer_regained(self) -> None:
        """Runs when this process got the channel layer back after losing it: say so
        (`live`), and, since broadcasts may have been lost meanwhile, tell the client each
        room's last seq (an unasked `pong`), as a ping would, and it resyncs the rooms it is
        behind in."""
        await self.send_frame(events.live_frame(ok=True))
        await self.on_ping(requests.Ping(), None)

    async def recheck_room(self, *, room: str, reason: str) -> None:
        """Runs when who may read a room changed (made private): ask as a join would, and
        leave it, hearing `removed`, if this socket's user may no longer join it."""
        if room not in self.joined:
            return
        try:
            await self.runtime.joinable.run((room, self.user))
        except ChatError:
            frame = events.removed_frame(room_slug=room, reason=reason)
            await self.leave_room(room=room, text=events.encode(frame), announce=True)

    async def session_ended(self, *, reason: str) -> None:
        """Runs when the user's sessions end (logout, deactivated, deleted, new password):
        say why and close the socket."""
        await self.send_frame(events.session_ended_frame(reason=reason))
        await self.close(code=4001)

    # Helpers ------------------------------------------------------------------------------

    async def send_frame(self, frame: dict[str, Any], ref: str | None = None) -> None:
        if ref is not None:
            frame["ref"] = ref
        await self.send(text_data=events.encode(frame))

    async def send_page(self, frame: dict[str, Any], ref: str | None) -> None:
        """Send a frame of messages the client asked for: it may be larger than the cap on
        what a socket holds unread, so it is paced (chat/realtime/transport.py)."""
        if ref is not None:
            frame["ref"] = ref
        # Found at each page, not kept: an idle socket would hold it for nothing.
        send = transport.page_send(self.scope, self.raw_send)
        await send({"type": "websocket.send", "text": events.encode(frame)})

    async def _check_rate(self, kind: str, limit: str) -> None:
        wait = await self.limits.wait(kind, self.limit_key, limit)
        if wait:
            raise ChatError(
                ErrorCode.RATE_LIMITED, "Slow down: too many at once.", retry_after=wait
            )

    def _require_joined(self, slug: str) -> JoinedRoom:
        joined = self.joined.get(slug)
        if joined is None:
            raise ChatError(ErrorCode.NOT_JOINED, f"Join {slug[:80]!r} first.")
        return joined

    def _require_member(self, slug: str) -> JoinedRoom:
        """A joined room the socket may post in: signed in first, then joined."""
        if not self.user.is_authenticated:
            raise ChatError(ErrorCode.AUTH_REQUIRED, "Log in to post.")
        return self._require_joined(slug)

    async def _subscribe(self, slug: str, room: Room) -> JoinedRoom:
        """The socket's place in the room (known by the `slug` the client joined it by): made
        and added to the room's group the first time, its membership refreshed after that."""
        joined = self.joined.get(slug)
        if joined is None:
            joined = JoinedRoom(room=room, group=events.room_group(room.pk))
            await self.fanout.add(joined.group, self)
            self.joined[slug] = joined
        else:
            await self.fanout.refresh(joined.group)
        return joined

    async def _count_online(self, joined: JoinedRoom, *, online: bool) -> None:
        """Count the socket in the room's presence (a join), or stop (a quiet join)."""
        if not online and joined.counted:
            await self._uncount(joined, announce=True)
        elif online and not joined.counted:
            joined.counted = True
            room = joined.room
            added = await self.presence.add(
                room_id=room.pk,
                room_slug=room.slug,
                username=self._presence_name(),
                socket_id=self.socket_id,
            )
            if not self.user.is_authenticated:
                self.runtime.news.guests_changed(room.pk, room.slug)
            elif added.changed:
                self._announce_presence(room, online=True, v=added.v)

    async def _leave_room(self, slug: str, *, announce: bool = True) -> None:
        joined = self.joined.pop(slug, None)
        if joined is None:
            return
        try:
            await self.fanout.discard(joined.group, self)
        finally:
            await self._uncount(joined, announce=announce)

    async def _uncount(self, joined: JoinedRoom, *, announce: bool) -> None:
        """Take the socket out of the room's presence (it may stay subscribed)."""
        if not joined.counted:
            return
        joined.counted = False
        removed = await self.presence.remove(
            room_id=joined.room.pk, username=self._presence_name(), socket_id=self.socket_id
        )
        if not self.user.is_authenticated:
            self.runtime.news.guests_changed(joined.room.pk, joined.room.slug)
        elif removed.changed and announce:
            self._announce_presence(joined.room, online=False, v=removed.v)

    def _presence_name(self) -> str:
        """Signed-in users are listed by name; anonymous readers are counted as guests."""
        return self.user.get_username() if self.user.is_authenticated else GUEST

    def _announce_presence(self, room: Room, *, online: bool, v: int) -> None:
        self.runtime.news.presence_changed(
            room.pk, room.slug, self.user.get_username(), online=online, v=v
        )


def _too_big(text: str) -> bool:
    """Over CHAT_MAX_FRAME_BYTES once encoded (a character is at most 4 bytes)."""
    limit = settings.CHAT_MAX_FRAME_BYTES
    return len(text) > limit or (
        len(text) * 4 > limit and len(text.encode(errors="surrogatepass")) > limit
    )
