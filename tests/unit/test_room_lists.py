"""Lists of rooms (templates/chat/_room_list.html, its rows from {% room_items %}): what each
row says of its room, in the markup that sidebar.js and counts.js read."""

from html.parser import HTMLParser
from typing import Any

import pytest
from django.template.loader import render_to_string
from django.urls import set_script_prefix

from chat.models import Room


class Rows(HTMLParser):
    """Each <li>: its attributes, its link's attributes and text, and its spans' text by
    class (None: the span is hidden)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, Any]] = []
        self._in: tuple[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "li":
            self.rows.append({"li": found, "a": {}, "name": "", "spans": {}})
        elif tag == "a":
            self.rows[-1]["a"] = found
            self._in = ("name", "")
        elif tag == "span":
            key = found["class"] or ""
            self.rows[-1]["spans"][key] = None if "hidden" in found else ""
            self._in = ("span", key) if "hidden" not in found else None

    def handle_endtag(self, tag: str) -> None:
        if tag in {"a", "span"}:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == ("name", ""):
            self.rows[-1]["name"] += data
        elif self._in is not None:
            self.rows[-1]["spans"][self._in[1]] += data


def rows(rooms: list[Room], **context: Any) -> list[dict[str, Any]]:
    parser = Rows()
    parser.feed(render_to_string("chat/_room_list.html", {"rooms": rooms, **context}))
    return parser.rows


def room(slug: str = "plans", **fields: Any) -> Room:
    """An unsaved room with the annotations a list's selector adds."""
    annotations = {"read_mark": None, "unread": 0}
    names = ("read_mark", "unread", "starred", "is_owner", "member_count", "is_member", "notify")
    for name in (*names, "people"):
        if name in fields:
            annotations[name] = fields.pop(name)
    made = Room(slug=slug, name=fields.pop("name", slug.title()), last_seq=7, **fields)
    for name, value in annotations.items():
        setattr(made, name, value)
    return made


COUNTS = {"data-room", "data-last-seq", "data-read", "data-unread"}


@pytest.mark.parametrize(
    ("fields", "flags"),
    [
        ({}, set()),
        ({"is_private": True}, {"data-private"}),
        (
            {"is_private": True, "is_direct": True, "direct_key": "1:2"},
            {"data-private", "data-direct"},
        ),
        ({"starred": True}, {"data-starred"}),
        ({"is_owner": True}, {"data-owner"}),
        ({"starred": False, "is_owner": False}, set()),
    ],
)
def test_a_row_carries_its_rooms_flags_as_data_attributes(fields, flags):
    [row] = rows([room(**fields)])

    assert set(row["li"]) - COUNTS == flags
    assert all(row["li"][flag] is None for flag in flags)  # bare attributes


@pytest.mark.parametrize(
    ("fields", "values", "muted"),
    [
        ({}, {}, False),  # not a member: no setting
        ({"notify": "all"}, {"data-notify": "all"}, False),
        ({"notify": "mentions"}, {"data-notify": "mentions"}, False),
        ({"notify": "mute"}, {"data-notify": "mute"}, True),
        (
            {"is_private": True, "is_direct": True, "direct_key": "1:2:3", "people": 3},
            {"data-private": None, "data-direct": None, "data-people": "3"},
            False,
        ),
        ({"people": 3}, {}, False),  # a head count is a DM's only
    ],
)
def test_a_row_carries_the_users_notification_setting_and_a_dms_head_count(fields, values, muted):
    [row] = rows([room(**fields)])

    assert {k: v for k, v in row["li"].items() if k not in COUNTS} == values
    assert ("badge muted" in row["spans"]) is muted


@pytest.mark.parametrize(
    ("read_mark", "unread", "read", "badge"),
    [(None, 0, "", None), (0, 0, "0", None), (4, 3, "4", "3")],
)
def test_a_row_carries_the_counter_the_read_mark_and_the_unread_count(
    read_mark, unread, read, badge
):
    [row] = rows([room(read_mark=read_mark, unread=unread)])

    assert row["li"]["data-last-seq"] == "7"
    assert row["li"]["data-read"] == read
    assert row["li"]["data-unread"] == str(unread)
    assert row["spans"]["badge unread"] == badge  # None: hidden while nothing is unread


def test_the_room_on_screen_is_marked_current_and_no_other():
    listed = rows([room("plans"), room("games")], current="games")

    assert [row["li"].get("class") for row in listed] == [None, "current"]
    assert [row["a"].get("aria-current") for row in listed] == [None, "page"]


def test_a_rows_link_is_the_rooms_page_under_any_script_prefix():
    plans = room("plans")
    try:
        set_script_prefix("/chat-site/")
        [row] = rows([plans])
        assert row["a"]["href"] == plans.get_absolute_url() == "/chat-site/chat/plans/"
    finally:
        set_script_prefix("/")
    [row] = rows([plans])
    assert row["a"]["href"] == "/chat/plans/"


def test_a_rows_text_is_escaped():
    html = render_to_string(
        "chat/_room_list.html",
        {"rooms": [room(name='<b>"Tom" & Jerry</b>', topic="<i>hi</i>")], "show_topics": True},
    )

    assert "&lt;b&gt;&quot;Tom&quot; &amp; Jerry&lt;/b&gt;</a>" in html
    assert '<span class="topic">&lt;i&gt;hi&lt;/i&gt;</span>' in html
    assert "<b>" not in html
    assert "<i>" not in html


@pytest.mark.parametrize(
    ("fields", "badges"),
    [
        ({}, set()),
        ({"starred": True}, {"badge starred"}),
        ({"is_private": True}, {"badge"}),  # "private"
        ({"is_private": True, "is_direct": True, "direct_key": "1:2"}, set()),
    ],
)
def test_a_row_shows_a_badge_for_a_star_and_a_private_room_but_not_a_direct_one(fields, badges):
    [row] = rows([room(**fields)])

    shown = set(row["spans"]) - {"badge unread", "online-count"}
    assert shown == badges
    assert row["spans"].get("badge") in {None, "private"}
    assert row["spans"].get("badge starred") in {None, "★"}


@pytest.mark.parametrize(
    ("count", "is_member", "text"),
    [(0, False, "0 members"), (1, True, "1 member"), (2, False, "2 members")],
)
def test_the_lobbys_rows_count_members_and_mark_the_users_rooms(count, is_member, text):
    lobby_room = room(member_count=count, is_member=is_member, topic="About")
    [lobby] = rows([lobby_room], show_members=True, show_topics=True)
    [sidebar] = rows([lobby_room])

    assert lobby["spans"]["member-count"] == text
    assert ("badge joined" in lobby["spans"]) is is_member
    assert lobby["spans"]["topic"] == "About"
    assert set(sidebar["spans"]) == {"badge unread", "online-count"}


def test_every_row_has_a_place_for_its_online_count():
    listed = rows([room("plans"), room("games")])

    assert [row["spans"]["online-count"] for row in listed] == ["", ""]
    assert [row["name"] for row in listed] == ["Plans", "Games"]
