"""Finding a message again (issue 14): the header's Search finds an old message of a long
room, its snippet marks the hit, and the result opens the room at the message,
highlighted and in view, while the page still follows the room live."""

import re
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Browser, expect

from tests.support.browser import TIMEOUT_MS, expect_message_once, say, sign_in_to_general
from tests.support.live_server import RestartableSite
from tests.support.seed import insert_message

pytestmark = [pytest.mark.browser, pytest.mark.own_database]

HISTORY = 120  # messages in #general before the test: the one sought is far from the latest
SOUGHT = 10


def seed_history(database: str) -> None:
    """Store HISTORY messages of bob's in #general straight into the site's database (its
    search index follows by its triggers), the SOUGHT-th one the needle."""
    db = sqlite3.connect(database)
    with db:
        (room_id, last_seq) = db.execute(
            "SELECT id, last_seq FROM chat_room WHERE slug = 'general'"
        ).fetchone()
        (bob_id,) = db.execute("SELECT id FROM auth_user WHERE username = 'bob'").fetchone()
        start = datetime.now(UTC) - timedelta(days=3)
        for i in range(1, HISTORY + 1):
            seq = last_seq + i
            body = "where is the <needle> in this haystack?" if i == SOUGHT else f"hay {i}"
            insert_message(
                db,
                room_id=room_id,
                author_id=bob_id,
                body=body,
                seq=seq,
                created_at=start + timedelta(minutes=i),
            )
        db.execute("UPDATE chat_room SET last_seq = ? WHERE id = ?", [last_seq + HISTORY, room_id])
    db.close()


def test_a_search_result_opens_the_room_at_the_message_highlighted_and_live(
    browser: Browser, restartable_site: RestartableSite
) -> None:
    site = restartable_site
    seed_history(str(site.database))
    alice = sign_in_to_general(browser, site, "alice")
    bob = sign_in_to_general(browser, site, "bob")
    try:
        alice.get_by_role("link", name="Search").click()
        alice.get_by_label("Find").fill("needle in:general")
        alice.get_by_role("button", name="Search").click()
        expect(alice.locator("#search-count")).to_have_text("1 message found.")
        result = alice.locator("#search-results li")
        expect(result.locator("mark")).to_have_text("needle")
        expect(result.locator(".search-snippet")).to_contain_text("<needle>")  # text, not markup
        result.get_by_role("link", name="General").click()

        expect(alice).to_have_url(re.compile(r"/chat/general/\?at=\d+$"), timeout=TIMEOUT_MS)
        seq = alice.url.rsplit("=", 1)[1]
        found = alice.locator("#messages li.found")
        expect(found).to_have_count(1, timeout=TIMEOUT_MS)
        expect(found).to_have_attribute("data-seq", seq)
        expect(found.locator(".body")).to_have_text("where is the <needle> in this haystack?")
        expect(found).to_be_in_viewport()
        expect(alice.locator("#detached")).to_contain_text("newer ones are not shown")
        expect(alice.locator("#status")).to_have_text("Connected", timeout=TIMEOUT_MS)

        # The page still follows the room: bob's new message arrives, once.
        say(bob, "still live?")
        expect_message_once(alice, "bob", "still live?")
        alice.get_by_role("link", name="Jump to the latest messages").click()
        expect(alice.locator("#messages li.found")).to_have_count(0)
        expect(alice.locator("#messages li[data-seq]").last).to_contain_text("still live?")
    finally:
        alice.context.close()
        bob.context.close()
