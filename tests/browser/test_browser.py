"""Two people chat in real Chromium windows: the login form, room.js and the socket together."""

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.support.browser import (
    TIMEOUT_MS,
    expect_message_once,
    new_page,
    sign_in_to_general,
)
from tests.support.live_server import LiveSite

pytestmark = [pytest.mark.browser, pytest.mark.own_database]


def test_two_people_chat_in_the_browser(
    browser: Browser,
    live_site: LiveSite,
    tmp_path: Path,
) -> None:
    """Alice (Enter) and Bob (Send button) see each other online and each other's messages."""
    alice = sign_in_to_general(browser, live_site, "alice")
    bob = sign_in_to_general(browser, live_site, "bob")
    try:
        for page in (alice, bob):
            expect(page.locator("#online li")).to_have_text(["alice", "bob"], timeout=TIMEOUT_MS)

        alice.get_by_label("Message", exact=True).fill("Hi Bob, it's Alice!")
        alice.get_by_label("Message", exact=True).press("Enter")
        for page in (bob, alice):
            expect_message_once(page, "alice", "Hi Bob, it's Alice!")
        expect(alice.get_by_label("Message", exact=True)).to_have_value("")

        bob.get_by_label("Message", exact=True).fill("Hello Alice, Bob here.")
        bob.get_by_role("button", name="Send").click()
        for page in (alice, bob):
            expect_message_once(page, "bob", "Hello Alice, Bob here.")
    finally:
        alice.screenshot(path=tmp_path / "alice.png")
        bob.screenshot(path=tmp_path / "bob.png")
        alice.context.close()
        bob.context.close()


def test_guests_mentions_and_notifications_in_the_browser(
    browser: Browser,
    live_site: LiveSite,
) -> None:
    """A guest is counted, not named; a mention is highlighted for everyone, and only the
    mentioned user is notified."""
    alice = sign_in_to_general(browser, live_site, "alice")
    bob = sign_in_to_general(browser, live_site, "bob")
    guest = new_page(browser)
    guest.goto(f"{live_site.base_url}/chat/general/")
    try:
        for page in (alice, bob):
            expect(page.locator("#online li.guests")).to_have_text("1 guest", timeout=TIMEOUT_MS)
        expect(alice.locator("#online li:not(.guests)")).to_have_text(["alice", "bob"])

        bob.get_by_label("Message", exact=True).fill("@alice lunch?")
        bob.get_by_label("Message", exact=True).press("Enter")

        expect_message_once(alice, "bob", "@alice lunch?")
        expect(alice.locator("li.message .mention.me")).to_have_text("@alice", timeout=TIMEOUT_MS)
        expect(alice.locator("#notices .notification")).to_contain_text(
            "bob mentioned you", timeout=TIMEOUT_MS
        )
        expect(guest.locator("li.message .mention")).to_have_text("@alice", timeout=TIMEOUT_MS)
        expect(guest.locator("#notices .notification")).to_have_count(0)
    finally:
        for page in (alice, bob, guest):
            page.context.close()
