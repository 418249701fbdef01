"""Notification settings (docs/protocol.md, "Notifications"): each member's per-room choice
of all messages / mentions / mute, and @room and @here, over the real ASGI application.

One table covers the family: every level against every way a message can be for someone,
in a room and in a direct message, for a member connected and one who is not."""

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.test import Client

from chat import services
from chat.models import Membership, Room
from chat.protocol import events
from chat.realtime.publisher import publish
from tests.support.sockets import frames_of, frames_until_pong

pytestmark = pytest.mark.django_db(transaction=True)

# What a member hears of each message, by their level (None: nothing). "mention" mentions
# every listener; "here" is sent while they are connected.
HEARS = {
    "all": {"plain": "message", "mention": "mention", "room": "room", "here": "here"},
    "mentions": {"plain": None, "mention": "mention", "room": "room", "here": "here"},
    "mute": {"plain": None, "mention": None, "room": None, "here": None},
}
BODIES = {"plain": "hello all", "mention": "hi {names}", "room": "@room look", "here": "@here?"}


async def notifications(tab, user) -> list[str]:
    """The reasons of the notifications that reached the user's tab so far, in order.

    A ping's pong can overtake a notification still on its way through the layer, so this
    sends a marker down the user's own group instead: the publisher keeps one order, and
    every notification sent before the marker arrives before it."""
    marker = events.announcement_frame(
        announcement_id=1, body="marker", created="2026-01-01T00:00:00+00:00"
    )
    publish(*events.user_broadcast(user.pk, marker))
    reasons = []
    while (frame := await tab.recv())["type"] != "announcement":
        if frame["type"] == "notification":
            reasons.append(frame["reason"])
    return reasons


def set_levels(room: Room, levels: dict) -> None:
    for user, level in levels.items():
        Membership.objects.filter(room=room, user=user).update(notify=level)


class UserInbox:
    """What reaches one user's group, without a socket: they are not connected (the socket
    registry does not count this), yet a notification for them would still arrive here."""

    def __init__(self, user) -> None:
        self.group = events.user_group(user.pk)
        self.layer = get_channel_layer()
        self.channel = None

    async def open(self) -> "UserInbox":
        self.channel = await self.layer.new_channel()
        await self.layer.group_add(self.group, self.channel)
        return self

    async def reasons(self) -> list[str]:
        """The reasons of the notifications that reached the group (sent on commit, before
        the sender's ack: all of them are in by the time this is asked)."""
        found = []
        while True:
            try:
                event = await asyncio.wait_for(self.layer.receive(self.channel), 0.5)
            except TimeoutError:
                return found
            frame = json.loads(event["text"])
            if frame["type"] == "notification":
                found.append(frame["reason"])


@pytest.mark.parametrize("kind", ["room", "direct"])
async def test_each_level_hears_exactly_what_the_table_says(
    connect, alice, make_user, make_room, kind
):
    people = {level: await database_sync_to_async(make_user)(f"p{level}") for level in HEARS}
    if kind == "room":
        room = await database_sync_to_async(make_room)("team", members=(alice, *people.values()))
    else:
        room = await database_sync_to_async(services.direct_group_get_or_create)(
            user=alice, others=list(people.values())
        )
    await database_sync_to_async(set_levels)(room, {u: level for level, u in people.items()})
    tabs = {level: await connect(user) for level, user in people.items()}
    sender = await connect(alice)
    await sender.join(room.slug)

    heard: dict[str, dict[str, str | None]] = {level: {} for level in HEARS}
    names = " ".join(f"@{user.get_username()}" for user in people.values())
    for what, body in BODIES.items():
        ack = await sender.request(
            {"type": "send", "room": room.slug, "body": body.format(names=names), "client_id": what}
        )
        assert ack["type"] == "ack", ack
        for level, tab in tabs.items():
            reasons = await notifications(tab, people[level])
            assert len(reasons) <= 1, reasons  # one per message, the strongest reason
            heard[level][what] = reasons[0] if reasons else None

    expected = HEARS
    if kind == "direct":  # every message of a DM is for its members: "dm", not "message"
        expected = {
            lvl: {w: "dm" if r == "message" else r for w, r in row.items()}
            for lvl, row in HEARS.items()
        }
    assert heard == expected
    assert await notifications(sender, alice) == []  # never for one's own messages


async def test_here_reaches_only_members_connected_now_and_room_reaches_everyone(
    connect, alice, bob, make_user, make_room
):
    away = await database_sync_to_async(make_user)("away")
    await database_sync_to_async(make_room)("team", members=(alice, bob, away))
    inbox = await UserInbox(away).open()
    bob_tab = await connect(bob)
    sender = await connect(alice)
    await sender.join("team")

    for n, body in enumerate(["@here standup", "@ROOM standup."]):
        ack = await sender.request(
            {"type": "send", "room": "team", "body": body, "client_id": f"e{n}"}
        )
        assert ack["type"] == "ack", ack

    assert await notifications(bob_tab, bob) == ["here", "room"]
    assert await inbox.reasons() == ["room"]  # not connected: @here passes them by


@pytest.mark.parametrize(
    ("sender_is", "members", "allowed"),
    [
        ("member", 14, True),  # fewer than CHAT_EVERYONE_MENTION_MEMBERS (15)
        ("member", 15, False),
        ("owner", 15, True),
        ("staff", 15, True),
    ],
)
@pytest.mark.parametrize("word", ["@room", "@here", "@Here."])
async def test_room_and_here_in_a_large_room_are_for_its_owners_and_staff_only(
    connect, make_user, make_room, sender_is, members, allowed, word
):
    sender = await database_sync_to_async(make_user)("sender", is_staff=sender_is == "staff")
    others = [await database_sync_to_async(make_user)(f"m{n}") for n in range(members - 1)]
    room = await database_sync_to_async(make_room)("big", members=(sender, *others))
    if sender_is == "owner":
        await database_sync_to_async(Membership.objects.filter(room=room, user=sender).update)(
            role=Membership.Role.OWNER
        )
    socket = await connect(sender)
    await socket.join("big")

    answer = await socket.request(
        {"type": "send", "room": "big", "body": f"{word} hello", "client_id": "w1"}
    )

    last_seq = await database_sync_to_async(Room.objects.values_list("last_seq", flat=True).get)(
        pk=room.pk
    )
    if allowed:
        assert answer["type"] == "ack"
        assert last_seq == 1
    else:
        assert (answer["type"], answer["code"]) == ("error", "forbidden")
        assert "owners" in answer["message"]
        assert last_seq == 0  # refused: nothing stored, no seq taken
        # A body that only looks like them is not refused: an address, a longer name.
        for n, body in enumerate(["mail me at team@room.example", "@roomy hello"]):
            ok = await socket.request(
                {"type": "send", "room": "big", "body": body, "client_id": f"x{n}"}
            )
            assert ok["type"] == "ack", (body, ok)


async def test_the_notify_form_saves_a_level_for_members_and_refuses_anything_else(
    connect, alice, bob, general
):
    await database_sync_to_async(services.membership_join)(room=general, user=alice)
    tab = await connect(alice)
    await frames_until_pong(tab)

    def post(user, data, slug="general"):
        client = Client()
        if user is not None:
            client.force_login(user)
        return client.post(f"/chat/{slug}/notify/", data)

    def level(user):
        row = Membership.objects.filter(room=general, user=user).values_list("notify", flat=True)
        return row.first()

    saved = await database_sync_to_async(post)(alice, {"notify": "mute"})
    assert saved.status_code == 302
    frames = await frames_of(tab, "membership", 1)
    assert [(f["room"], f["notify"]) for f in frames] == [("general", "mute")]

    for bad in ({"notify": "loud"}, {"notify": ""}, {}):
        await database_sync_to_async(post)(alice, bad)
        assert await database_sync_to_async(level)(alice) == "mute"
    assert await database_sync_to_async(post)(bob, {"notify": "all"}) is not None
    assert await database_sync_to_async(level)(bob) is None  # not a member: nothing made
    anonymous = await database_sync_to_async(post)(None, {"notify": "all"})
    assert anonymous.status_code == 302
    assert "/login" in anonymous["Location"]
    assert (
        await database_sync_to_async(post)(alice, {"notify": "all"}, "nowhere")
    ).status_code == 404
    assert all(f["type"] != "membership" for f in await frames_until_pong(tab))


def test_one_frame_for_many_users_is_encoded_once_and_addressed_to_each():
    """_notify sends one frame per reason to every user it is for (an @room in a large room
    reaches every member): the text is shared, not encoded per recipient."""
    frame = events.announcement_frame(
        announcement_id=7, body="hi", created="2026-01-01T00:00:00+00:00"
    )

    sent = events.users_broadcast([3, 5, 8], frame)

    assert [group for group, _ in sent] == ["user.3", "user.5", "user.8"]
    assert [event["group"] for _, event in sent] == ["user.3", "user.5", "user.8"]
    assert len({id(event["text"]) for _, event in sent}) == 1  # one encoding, shared
    assert sent[0][1] == events.user_broadcast(3, frame)[1]  # what one user's send would be
