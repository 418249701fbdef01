"""Navigating time (issue 14; issue 15's reading points): a room whose history spans several
days shows a divider above each day's first message in the viewer's time zone, a full date
on every time, a "New messages" line at the first message after the user's read mark with
a jump to it, a jump to the latest that counts what arrived meanwhile, and older messages
that load on scrolling up (or by the button, which keeps the focus) without moving what the
user reads."""

import re
import sqlite3
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.browser import TIMEOUT_MS, say, sign_in, sign_in_to_general
from tests.support.live_server import RestartableSite
from tests.support.seed import insert_message

pytestmark = [pytest.mark.browser, pytest.mark.own_database]

HISTORY = 200  # bob's messages in #general, 40 minutes apart: over five days
READ = 180  # alice has read up to the READ-th of them
STEP = timedelta(minutes=40)
ZONE = "Pacific/Kiritimati"  # UTC+14: the viewer's days are not the server's


def seed_history(database: str, read: int = READ) -> tuple[int, datetime]:
    """Store HISTORY messages of bob's in #general, the last one now, and alice's read mark
    at the `read`-th; returns the seq before the first one and the time of the last."""
    db = sqlite3.connect(database)
    now = datetime.now(UTC)
    with db:
        (room_id, last_seq) = db.execute(
            "SELECT id, last_seq FROM chat_room WHERE slug = 'general'"
        ).fetchone()
        users = dict(db.execute("SELECT username, id FROM auth_user").fetchall())
        for i in range(1, HISTORY + 1):
            seq = last_seq + i
            body = f"day talk {i}"
            insert_message(
                db,
                room_id=room_id,
                author_id=users["bob"],
                body=body,
                seq=seq,
                created_at=now - (HISTORY - i) * STEP,
            )
        db.execute("UPDATE chat_room SET last_seq = ? WHERE id = ?", [last_seq + HISTORY, room_id])
        db.execute(
            "INSERT INTO chat_readstate (user_id, room_id, seq, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (user_id, room_id) DO UPDATE SET seq = excluded.seq",
            [users["alice"], room_id, last_seq + read, now.isoformat(" ")],
        )
    db.close()
    return last_seq, now


def log_lines(page: Page) -> list[tuple[str, str]]:
    """The log's lines in order: ("day", its day), ("mark", ""), ("message", its datetime)."""
    lines = page.evaluate(
        """() => Array.from(document.querySelectorAll("#messages > li"), (li) =>
            li.classList.contains("day") ? ["day", li.dataset.day]
            : li.classList.contains("unread-mark") ? ["mark", ""]
            : ["message", li.querySelector("time").dateTime])"""
    )
    return [(kind, value) for kind, value in lines]


def assert_days_right(page: Page) -> int:
    """A divider sits above the first message of each day in the browser's time zone (above
    a "New messages" line glued to it) and nowhere else; returns how many there are."""
    zone = ZoneInfo(page.evaluate("() => Intl.DateTimeFormat().resolvedOptions().timeZone"))
    lines = log_lines(page)
    expected: list[tuple[str, str]] = []
    last_day = None
    for kind, value in lines:
        if kind != "message":
            continue
        day = datetime.fromisoformat(value).astimezone(zone).date().isoformat()
        if day != last_day:
            expected.append(("day", day))
        expected.append((kind, value))
        last_day = day
    shown = [line for line in lines if line[0] != "mark"]
    assert shown == expected
    marks = [i for i, line in enumerate(lines) if line[0] == "mark"]
    for i in marks:
        assert lines[i + 1][0] == "message"
    return sum(1 for kind, _ in lines if kind == "day")


def top_of(page: Page, seq: int) -> float:
    box = page.locator(f'#messages li[data-seq="{seq}"]').bounding_box()
    assert box is not None
    return box["y"]


def test_days_new_messages_line_jumps_and_older_history_that_keeps_the_view(
    browser: Browser, restartable_site: RestartableSite
) -> None:
    site = restartable_site
    base, now = seed_history(str(site.database))
    context = browser.new_context(timezone_id=ZONE, locale="en-GB")
    context.set_default_timeout(TIMEOUT_MS)
    alice = sign_in(context.new_page(), site, "alice")
    bob = sign_in_to_general(browser, site, "bob")
    try:
        log = alice.locator("#messages")
        expect(log.locator(f'li[data-seq="{base + HISTORY}"]')).to_be_in_viewport()

        # Day dividers in Kiritimati's days (the server drew them in UTC's), the last "Today".
        assert assert_days_right(alice) >= 2
        today = now.astimezone(ZoneInfo(ZONE))
        expect(log.locator("li.day").last).to_have_text("Today")
        # A plain list item, named by its text (axe allows only those directly in a list).
        expect(log.locator("li.day").last).not_to_have_attribute("role", "separator")
        # Every time is a <time datetime> whose title is the full date, in the viewer's zone.
        last_time = log.locator(f'li[data-seq="{base + HISTORY}"] time')
        expect(last_time).to_have_attribute("datetime", now.isoformat())
        # ICU versions differ on the commas.
        full_date = rf"^{today:%A},? {today.day} {today:%B %Y},? at {today:%H:%M}$"
        expect(last_time).to_have_attribute("title", re.compile(full_date))
        untitled = alice.evaluate(
            """() => Array.from(document.querySelectorAll("#messages li[data-id] time"))
                .filter((t) => !t.dateTime || !t.title).length"""
        )
        assert untitled == 0

        # "New messages" above the first message after alice's read mark; it is above the
        # view, so "Jump to first unread" shows and takes her there.
        mark = log.locator("li.unread-mark")
        expect(mark).to_have_count(1)
        expect(mark).to_have_text("New messages")
        first_unread = log.locator("li.unread-mark + li")
        expect(first_unread).to_have_attribute("data-seq", str(base + READ + 1))
        jump_unread = alice.get_by_role("button", name="Jump to first unread")
        expect(jump_unread).to_be_visible()
        jump_unread.click()
        expect(mark).to_be_in_viewport()
        expect(jump_unread).to_be_hidden()

        # Scrolled up: "Jump to latest", which counts what bob says meanwhile.
        jump_latest = alice.locator("#jump-latest")
        expect(jump_latest).to_have_text("Jump to latest")
        say(bob, "while you were up there")
        expect(jump_latest).to_have_text("1 new message", timeout=TIMEOUT_MS)
        say(bob, "and this")
        expect(jump_latest).to_have_text("2 new messages", timeout=TIMEOUT_MS)
        expect(log.locator("li[data-seq]").last.locator(".body")).not_to_be_in_viewport()
        jump_latest.click()
        expect(log.locator("li[data-seq]").last.locator(".body")).to_have_text("and this")
        expect(log.locator("li[data-seq]").last).to_be_in_viewport()
        expect(jump_latest).to_be_hidden()
        # The line stays while she is in the room, though the room is now read.
        expect(mark).to_have_count(1)

        # Scrolled to the top, the page before loads by itself; the message that was at the
        # top stays where it was on screen.
        oldest = base + HISTORY - 49
        before = alice.evaluate(
            f"""() => {{
                const log = document.getElementById("messages");
                log.scrollTop = 0;
                return document.querySelector('#messages li[data-seq="{oldest}"]')
                    .getBoundingClientRect().top;
            }}"""
        )
        expect(log.locator(f'li[data-seq="{oldest - 50}"]')).to_have_count(1)
        assert abs(top_of(alice, oldest) - before) <= 3
        assert assert_days_right(alice) >= 3

        # By keyboard: "Load older messages" loads the page before, keeps the focus and the
        # view.
        older = alice.get_by_role("button", name="Load older messages")
        older.focus()
        before = top_of(alice, oldest - 50)
        older.press("Enter")
        expect(log.locator(f'li[data-seq="{oldest - 100}"]')).to_have_count(1)
        expect(older).to_be_focused()
        assert abs(top_of(alice, oldest - 50) - before) <= 3
        assert_days_right(alice)
    finally:
        context.close()
        bob.context.close()


def test_jump_to_first_unread_loads_older_pages_until_it_is_there(
    browser: Browser, restartable_site: RestartableSite
) -> None:
    site = restartable_site
    base, _ = seed_history(str(site.database), read=20)  # far before the page shown
    alice = sign_in_to_general(browser, site, "alice")
    try:
        log = alice.locator("#messages")
        expect(log.locator(f'li[data-seq="{base + HISTORY}"]')).to_be_in_viewport()
        expect(log.locator(f'li[data-seq="{base + 21}"]')).to_have_count(0)
        # Not loaded yet: no line drawn at a wrong message, but the jump is offered.
        expect(log.locator("li.unread-mark")).to_have_count(0)
        jump_unread = alice.get_by_role("button", name="Jump to first unread")
        expect(jump_unread).to_be_visible()
        jump_unread.click()
        mark = log.locator("li.unread-mark")
        expect(mark).to_have_count(1)
        expect(log.locator("li.unread-mark + li")).to_have_attribute("data-seq", str(base + 21))
        expect(mark).to_be_in_viewport()
        expect(jump_unread).to_be_hidden()
        assert_days_right(alice)
    finally:
        alice.context.close()
