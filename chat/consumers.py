"""The chat socket: one per browser tab, joined to any number of rooms.

Thin by design: each client frame is parsed (chat.requests), handed to one selector or
service, and the result or ChatError becomes one reply frame. Channel-layer events carry
frames already encoded (chat.events), so a broadcast costs each recipient one send.
"""

import logging
import time
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from . import events, requests, selectors, services
from .errors import ChatError, ErrorCode
from .models import Room
from .presence import presence

logger = logging.getLogger(__name__)


@dataclass
class JoinedRoom:
    room: Room
    group: str


class ChatConsumer(AsyncWebsocketConsumer):
    """Speaks the protocol in docs/protocol.md at /ws/chat/."""

    async def connect(self) -> None:
        """Accept every handshake that passed the Origin check; anonymous sockets may read."""
        self.user = self.scope["user"]
        self.joined: dict[str, JoinedRoom] = {}
        self.groups_refreshed_at = time.monotonic()
        await self.accept()

    async def disconnect(self, code: int) -> None:
        """Leave every group this socket joined and update presence: undo all of join."""
        for slug in list(getattr(self, "joined", {})):
            await self._leave_room(slug)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Answer one client frame; a bad frame gets an error and changes nothing."""
        ref = None
        try:
            frame, ref = requests.decode(text_data)
            request = requests.parse(frame)
            await self.handlers[type(request)](self, request, ref)
            await self._refresh_groups_if_due()
        except ChatError as error:
            await self.send_frame(events.error_frame(error, ref))
        except Exception:
            logger.exception("Unexpected failure answering a frame from %s", self.channel_name)
            error = ChatError(ErrorCode.SERVER_ERROR)
            await self.send_frame(events.error_frame(error, ref))

    # Client frames ------------------------------------------------------------------------

    async def on_join(self, request: requests.Join, ref: str | None) -> None:
        """Runs on `join`: subscribe (first time) and send the messages the client lacks."""
        room = await database_sync_to_async(self._room_for_join)(request.room)
        # Subscribe before reading, so nothing posted in between is missed. A resync adds
        # the socket again too: a layer may have dropped it from the group (the in-memory
        # layer does when a message waits in its queue past `expiry`).
        group = events.room_group(room.pk)
        await self.channel_layer.group_add(group, self.channel_name)
        if request.room not in self.joined:
            self.joined[request.room] = JoinedRoom(room=room, group=group)
            if self.user.is_authenticated:
                first = presence.add(
                    room_id=room.pk,
                    username=self.user.get_username(),
                    channel_name=self.channel_name,
                )
                if first:
                    await self._announce_presence(room, online=True)
        page = await database_sync_to_async(selectors.messages_for_join)(
            room=room, since=request.since
        )
        await self.send_frame(
            {
                "type": "joined",
                "room": room.slug,
                "name": room.name,
                "topic": room.topic,
                "messages": [events.message_dict(m) for m in page.messages],
                "last_seq": page.last_seq,
                "online": presence.online(room_id=room.pk),
                "has_more": page.has_more,
            },
            ref,
        )

    async def on_leave(self, request: requests.Leave, ref: str | None) -> None:
        """Runs on `leave`: the socket hears nothing more from the room (idempotent)."""
        await self._leave_room(request.room)
        await self.send_frame({"type": "left", "room": request.room}, ref)

    async def on_send(self, request: requests.Send, ref: str | None) -> None:
        """Runs on `send`: store (or find the retried original) and ack after commit."""
        joined = self._require_member(request.room)
        message, _created = await database_sync_to_async(services.message_create)(
            room=joined.room, author=self.user, body=request.body, client_id=request.client_id
        )
        await self.send_frame(
            {
                "type": "ack",
                "room": request.room,
                "client_id": request.client_id,
                "id": message.pk,
                "seq": message.seq,
            },
            ref,
        )

    async def on_typing(self, request: requests.Typing, ref: str | None) -> None:
        """Runs on `typing`: tell the room's other sockets; nothing is stored."""
        joined = self._require_member(request.room)
        frame = events.typing_frame(room_slug=request.room, username=self.user.get_username())
        await self.channel_layer.group_send(
            joined.group, events.typing_event(frame=frame, sender_channel=self.channel_name)
        )

    async def on_history(self, request: requests.History, ref: str | None) -> None:
        """Runs on `history`: a page of older messages, oldest first."""
        joined = self._require_joined(request.room)
        page = await database_sync_to_async(selectors.messages_before)(
            room=joined.room, seq=request.before, limit=request.limit
        )
        await self.send_frame(
            {
                "type": "history",
                "room": request.room,
                "messages": [events.message_dict(m) for m in page.messages],
                "has_more": page.has_more,
            },
            ref,
        )

    async def on_ping(self, request: requests.Ping, ref: str | None) -> None:
        """Runs on `ping`: prove the connection is alive and tell each joined room's last seq,
        so a client that missed the last broadcast of a quiet room notices and resyncs."""
        last = {}
        if self.joined:
            by_id = await database_sync_to_async(selectors.rooms_last_seq)(
                room_ids=[joined.room.pk for joined in self.joined.values()]
            )
            last = {slug: by_id.get(j.room.pk, 0) for slug, j in self.joined.items()}
        await self.send_frame({"type": "pong", "rooms": last}, ref)

    handlers = {
        requests.Join: on_join,
        requests.Leave: on_leave,
        requests.Send: on_send,
        requests.Typing: on_typing,
        requests.History: on_history,
        requests.Ping: on_ping,
    }

    # Channel-layer events -----------------------------------------------------------------

    async def chat_broadcast(self, event: dict[str, Any]) -> None:
        """Runs when a room's frame (message, deletion, presence) is broadcast."""
        await self.send(text_data=event["text"])

    async def chat_typing(self, event: dict[str, Any]) -> None:
        """Runs when someone types in a room; the typist's own socket stays quiet."""
        if event["sender"] != self.channel_name:
            await self.send(text_data=event["text"])

    async def chat_room_closed(self, event: dict[str, Any]) -> None:
        """Runs when a room is archived: leave it and tell the client why."""
        slug = event["room"]
        if slug in self.joined:
            await self._leave_room(slug, announce=False)
        await self.send_frame(events.room_closed_frame(room_slug=slug, reason=event["reason"]))

    # Helpers ------------------------------------------------------------------------------

    async def send_frame(self, frame: dict[str, Any], ref: str | None = None) -> None:
        if ref is not None:
            frame["ref"] = ref
        await self.send(text_data=events.encode(frame))

    def _room_for_join(self, slug: str) -> Room:
        if not requests.is_slug(slug):
            raise ChatError(ErrorCode.NOT_FOUND, "No such room.")
        return selectors.room_get_joinable(slug=slug, user=self.user)

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

    async def _refresh_groups_if_due(self) -> None:
        """Re-add this socket to its groups now and then: the channel layer forgets a group
        member after `group_expiry` (24 h by default), even on a socket that never left."""
        now = time.monotonic()
        if now - self.groups_refreshed_at < settings.CHAT_GROUP_REFRESH_SECONDS:
            return
        self.groups_refreshed_at = now
        for joined in self.joined.values():
            await self.channel_layer.group_add(joined.group, self.channel_name)

    async def _leave_room(self, slug: str, *, announce: bool = True) -> None:
        joined = self.joined.pop(slug, None)
        if joined is None:
            return
        await self.channel_layer.group_discard(joined.group, self.channel_name)
        if self.user.is_authenticated:
            last = presence.remove(
                room_id=joined.room.pk,
                username=self.user.get_username(),
                channel_name=self.channel_name,
            )
            if last and announce:
                await self._announce_presence(joined.room, online=False)

    async def _announce_presence(self, room: Room, *, online: bool) -> None:
        frame = events.presence_frame(
            room_slug=room.slug, username=self.user.get_username(), online=online
        )
        await self.channel_layer.group_send(
            events.room_group(room.pk), events.broadcast_event(frame)
        )
