"""Test data: users, rooms and messages, made the quick way."""

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import F
from django.test import Client

from chat import formatting
from chat.models import Message, Room

PASSWORD = "correct-horse-battery-9"
# Every way a room name can slugify into the direct-message namespace (chat.models),
# fullwidth letters included.
DM_LOOKALIKE_NAMES = [
    "Dm 3 5",
    "dm-3-5",
    "DM_3_5",
    "\uff44\uff4d \uff13 \uff15",
    "dm",
    "Dm-anything",
]


@pytest.fixture
def make_user(db: None) -> Callable[..., AbstractBaseUser]:
    counter = itertools.count(1)

    def make(username: str | None = None, **extra: Any) -> AbstractBaseUser:
        name = username or f"user{next(counter)}"
        return get_user_model().objects.create_user(username=name, password=PASSWORD, **extra)

    return make


@pytest.fixture
def alice(make_user: Callable[..., AbstractBaseUser]) -> AbstractBaseUser:
    return make_user("alice")


@pytest.fixture
def bob(make_user: Callable[..., AbstractBaseUser]) -> AbstractBaseUser:
    return make_user("bob")


@pytest.fixture
def staff(make_user: Callable[..., AbstractBaseUser]) -> AbstractBaseUser:
    return make_user("moderator", is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client_for(staff: AbstractBaseUser) -> Client:
    """A Django test client signed in as the staff user (a superuser)."""
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def general(db: None) -> Room:
    """The public room every fresh install has (a data migration makes it; transactional
    tests flush the database afterwards, so make it again when it is gone)."""
    room, _ = Room.objects.get_or_create(
        slug="general", defaults={"name": "General", "topic": "Say hello to everyone."}
    )
    return room


@pytest.fixture
def make_room(db: None) -> Callable[..., Room]:
    def make(slug: str, *, members: tuple[AbstractBaseUser, ...] = (), **fields: Any) -> Room:
        fields.setdefault("name", slug.replace("-", " ").title())
        room = Room.objects.create(slug=slug, **fields)
        room.members.add(*members)
        return room

    return make


def post_messages(room: Room, author: AbstractBaseUser, count: int) -> list[Message]:
    """Store `count` messages directly, numbered after the room's counter (fast setup)."""
    start = Room.objects.get(pk=room.pk).last_seq
    rows = Message.objects.bulk_create(
        Message(
            room=room,
            author=author,
            body=f"message {start + i}",
            body_html=formatting.render(f"message {start + i}"),
            seq=start + i,
            rev=start + i,
        )
        for i in range(1, count + 1)
    )
    Room.objects.filter(pk=room.pk).update(last_seq=F("last_seq") + count)
    return rows
