"""User text (message bodies, room names and topics, usernames) holding HTML, JavaScript, SQL
and template syntax reaches every page as escaped text: room page, lobby and admin. The
Chromium test in test_security_browser.py proves that none of it runs."""

import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils.html import escape

from chat.formatting import render
from chat.models import Message, Profile, Room

pytestmark = pytest.mark.django_db

# Each holds a character that HTML escaping changes, so its raw form must never appear.
PAYLOADS = [
    '<img src=x onerror="window.__pwned=1">',
    "<script>window.__pwned=1</script>",
    '<a href="javascript:window.__pwned=1">click me</a>',
    '"></div></li></ol><svg onload="window.__pwned=1">',
    "</script><script>window.__pwned=1</script>",
    "'; DROP TABLE chat_message; --",
    "{{ 7|add:1 }} {% now 'Y' %}",
]
MARKUP = [text for text in PAYLOADS if "<" in text]
# Template syntax with nothing to escape: it must show as written, never evaluated.
TEMPLATE = "{{ 7|add:1 }}{% debug %}{{ settings.SECRET_KEY }}"
EVIL_NAME = '<img src=x onerror="window.__pwned=1">'


@pytest.fixture
def evil(make_user):
    """A user whose name is markup (signup refuses such names; the database does not)."""
    return make_user(EVIL_NAME)


@pytest.fixture
def hostile_room(evil, alice):
    room = Room.objects.create(
        slug="hostile", name="<script>window.__pwned=1</script>", topic=PAYLOADS[0] + TEMPLATE
    )
    room.members.add(alice)
    for seq, body in enumerate([*PAYLOADS, TEMPLATE], start=1):
        Message.objects.create(
            room=room, author=evil, body=body, body_html=render(body), seq=seq, rev=seq
        )
    Room.objects.filter(pk=room.pk).update(last_seq=len(PAYLOADS) + 1)
    return room


@pytest.fixture
def staff_client(staff) -> Client:
    client = Client()
    client.force_login(staff)
    return client


def assert_inert(html: str, *texts: str) -> None:
    """Each text is on the page, escaped, and never raw."""
    for text in texts:
        assert text not in html, f"raw {text!r} in the page"
        assert escape(text) in html, f"{text!r} is not shown"


def test_the_room_page_shows_hostile_text_escaped(client, evil, hostile_room):
    html = client.get("/chat/hostile/").content.decode()

    assert_inert(html, *MARKUP, hostile_room.name, EVIL_NAME)
    # A formatted body escapes only & < > " (markdown-it): an apostrophe is harmless text.
    for text in PAYLOADS:
        if text not in MARKUP:
            assert f"<p>{text}</p>" in html
    assert TEMPLATE in html
    assert "<script>" not in html.replace('<script id="chat-config" type="application/json">', "")


def test_a_hostile_display_name_and_status_are_shown_as_text(evil, hostile_room):
    """Beside every message, in its title and initials, and on the account page."""
    name = '"><img src=x onerror=window.__pwned=1>'
    Profile.objects.create(user=evil, display_name=name, status=PAYLOADS[1])
    client = Client()
    client.force_login(evil)

    room = client.get("/chat/hostile/").content.decode()
    account = client.get("/account/").content.decode()

    assert_inert(room, name, EVIL_NAME)
    author = (
        f'data-username="{escape(EVIL_NAME)}" title="@{escape(EVIL_NAME)}">{escape(name)}</button>'
    )
    assert author in room
    assert 'data-initials="&quot;"' in room
    assert_inert(account, name, PAYLOADS[1])


def test_a_hostile_username_cannot_break_out_of_the_page_config(evil, hostile_room):
    client = Client()
    client.force_login(evil)
    html = client.get("/chat/hostile/").content.decode()

    config = re.search(
        r'<script id="chat-config" type="application/json">(.*?)</script>', html, re.S
    )
    assert config is not None
    assert json.loads(config.group(1))["username"] == EVIL_NAME
    assert "<" not in config.group(1)
    assert_inert(html, EVIL_NAME)  # the header's "Signed in as"


def test_the_people_page_shows_a_hostile_username_escaped(evil, alice):
    client = Client()
    client.force_login(alice)

    html = client.get("/people/").content.decode()

    assert_inert(html, EVIL_NAME)


def test_the_lobby_shows_hostile_room_names_and_topics_escaped(client, hostile_room):
    html = client.get("/").content.decode()

    assert_inert(html, hostile_room.name, PAYLOADS[0])
    assert TEMPLATE in html


def test_the_room_form_shows_rejected_hostile_input_escaped(alice):
    client = Client()
    client.force_login(alice)
    too_long = PAYLOADS[3] * 2

    response = client.post("/rooms/new/", {"name": too_long, "topic": PAYLOADS[1]})

    assert response.status_code == 400
    assert_inert(response.content.decode(), too_long, PAYLOADS[1])


@pytest.mark.parametrize(
    "page",
    [
        "/admin/",
        "/admin/chat/room/",
        "/admin/chat/room/{room}/change/",
        "/admin/chat/room/{room}/delete/",
        "/admin/chat/room/{room}/history/",
        "/admin/chat/message/",
        "/admin/chat/message/?room__id__exact={room}",
        "/admin/chat/message/{message}/change/",
        "/admin/auth/user/",
        "/admin/auth/user/{evil}/change/",
    ],
)
def test_the_admin_shows_hostile_text_escaped(staff_client, evil, hostile_room, page):
    message = hostile_room.messages.get(seq=2)
    staff_client.post(  # leaves a "recent action" naming the room on the admin's index
        f"/admin/chat/room/{hostile_room.pk}/change/",
        {
            "name": hostile_room.name,
            "slug": "hostile",
            "topic": hostile_room.topic,
            "memberships-TOTAL_FORMS": "0",  # the membership inline, unchanged
            "memberships-INITIAL_FORMS": "0",
        },
    )
    url = page.format(room=hostile_room.pk, message=message.pk, evil=evil.pk)

    response = staff_client.get(url)

    assert response.status_code == 200
    html = response.content.decode()
    shown = [t for t in (hostile_room.name, EVIL_NAME, message.body) if escape(t) in html]
    assert shown, f"{url} shows none of the hostile text"
    assert_inert(html, *shown)


def test_sql_in_text_is_stored_as_text(evil, hostile_room):
    body = "'; DROP TABLE chat_message; --"

    assert Message.objects.filter(body=body).count() == 1
    assert Message.objects.count() == len(PAYLOADS) + 1
    assert get_user_model().objects.filter(username=EVIL_NAME).exists()
