"""Issue 15's reading comfort in real Chromium: rooms named in any script, the dark palette
that follows the system setting, and the empty room's invitation to say hello."""

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.axe import describe, violations
from tests.support.browser import TIMEOUT_MS, new_page, say, sign_in
from tests.support.live_server import LiveSite

pytestmark = [pytest.mark.browser, pytest.mark.own_database]

EMPTY = "No messages yet — say hello to start the conversation"


def create_room(page: Page, site: LiveSite, name: str) -> str:
    """Make a room from the lobby's form and land in it; its address."""
    page.goto(f"{site.base_url}/")
    page.get_by_label("Room name").fill(name)
    page.get_by_role("button", name="Create room").click()
    expect(page.locator("#room-name")).to_have_text(name, timeout=TIMEOUT_MS)
    expect(page.locator("#status")).to_have_text("Connected", timeout=TIMEOUT_MS)
    return page.url


def watch_empty_state(page: Page) -> None:
    """Record, every frame from now on, whether the empty-room line was ever on screen."""
    page.evaluate(
        """() => {
          window.emptySeen = false;
          const look = () => {
            const line = document.getElementById("empty-log");
            if (line && line.checkVisibility()) window.emptySeen = true;
            requestAnimationFrame(look);
          };
          look();
        }"""
    )


def test_a_room_named_in_japanese_invites_a_first_message_that_clears_it_live(
    browser: Browser, live_site: LiveSite
) -> None:
    alice = sign_in(new_page(browser), live_site, "alice")
    bob = sign_in(new_page(browser), live_site, "bob")
    try:
        url = create_room(alice, live_site, "日本語チーム")
        assert "/chat/room-" in url
        alice_empty = alice.get_by_role("log").get_by_text(EMPTY)
        expect(alice_empty).to_be_visible()

        bob.goto(url)
        expect(bob.locator("#status")).to_have_text("Connected", timeout=TIMEOUT_MS)
        expect(bob.get_by_text(EMPTY)).to_be_visible()

        say(alice, "こんにちは")
        expect(alice.get_by_role("log").get_by_text("こんにちは")).to_be_visible()
        expect(alice_empty).to_be_hidden()
        expect(bob.get_by_role("log").get_by_text("こんにちは")).to_be_visible(timeout=TIMEOUT_MS)
        expect(bob.get_by_text(EMPTY)).to_be_hidden()

        # Switching rooms in the page loads the room's history: never "empty" meanwhile.
        greek = create_room(alice, live_site, "Ελληνικά")
        alice.goto(url.replace(url.rstrip("/").split("/")[-1], "general"))
        expect(alice.locator("#status")).to_have_text("Connected", timeout=TIMEOUT_MS)
        say(alice, "back in general")
        expect(alice.get_by_role("log").locator("li[data-seq]")).not_to_have_count(0)
        watch_empty_state(alice)
        alice.locator(".room-nav a", has_text="日本語チーム").click()
        expect(alice.get_by_role("log").get_by_text("こんにちは")).to_be_visible()
        assert alice.evaluate("window.emptySeen") is False
        # ...while a room that has none says so once its (empty) history is in.
        alice.locator(".room-nav a", has_text="Ελληνικά").click()
        expect(alice).to_have_url(greek)
        expect(alice.get_by_role("log").get_by_text(EMPTY)).to_be_visible(timeout=TIMEOUT_MS)
    finally:
        alice.context.close()
        bob.context.close()


def test_the_dark_palette_follows_the_system_and_passes_axe(
    browser: Browser, live_site: LiveSite
) -> None:
    alice = sign_in(new_page(browser, color_scheme="dark"), live_site, "alice")
    bob = sign_in(new_page(browser), live_site, "bob")
    try:
        # The dark palette is the one in use (chat.css), not the light one.
        background = alice.evaluate("getComputedStyle(document.documentElement).backgroundColor")
        assert background == "rgb(18, 20, 24)"

        say(bob, "hello @alice, **welcome** to `general` — see https://example.com")
        expect(alice.locator("#notices .notification")).to_be_visible(timeout=TIMEOUT_MS)
        say(alice, "thanks bob")
        expect(alice.get_by_role("log").locator("li[data-seq]")).not_to_have_count(0)
        found = violations(alice)
        assert not found, f"a room with messages, dark:\n{describe(found)}"

        alice.goto(f"{live_site.base_url}/")
        expect(alice.locator("#room-list")).to_be_visible()
        found = violations(alice)
        assert not found, f"the lobby, dark:\n{describe(found)}"
    finally:
        alice.context.close()
        bob.context.close()
