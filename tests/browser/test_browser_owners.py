"""A private room made and run by its owner, as two people see it in real Chromium windows:
alice creates it, invites bob (the field suggests his name), bob's open tab gets it at
once, they talk, alice renames it and removes bob, and bob's tab loses it at once."""

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.browser import TIMEOUT_MS, expect_message_once, say, sign_in_to_general
from tests.support.live_server import LiveSite

pytestmark = [pytest.mark.browser, pytest.mark.own_database]


def nav_item(page: Page, slug: str):
    return page.locator(f".room-nav li[data-room='{slug}']")


def test_an_owner_invites_and_removes_a_member_whose_open_tab_follows_live(
    browser: Browser, live_site: LiveSite
) -> None:
    alice = sign_in_to_general(browser, live_site, "alice")
    bob = sign_in_to_general(browser, live_site, "bob")
    try:
        bob.evaluate("window.sameDocument = true")
        alice.goto(f"{live_site.base_url}/")
        alice.get_by_label("Room name").fill("Secret plans")
        alice.get_by_label("Private").check()
        alice.get_by_role("button", name="Create room").click()
        expect(alice.locator("#room-name")).to_have_text("Secret plans")
        slug = alice.url.rstrip("/").split("/")[-1]
        expect(alice.locator("#status")).to_have_text("Connected", timeout=TIMEOUT_MS)

        alice.get_by_role("link", name="Room settings").click()
        invite = alice.get_by_label("Invite by username")
        invite.press_sequentially("bo")
        expect(alice.locator("#invite-suggestions option[value='bob']")).to_have_count(
            1, timeout=TIMEOUT_MS
        )
        invite.fill("bob")
        alice.get_by_role("button", name="Invite").click()
        expect(alice.locator(".flash")).to_contain_text("bob is a member")

        entry = nav_item(bob, slug)
        expect(entry.locator("a")).to_have_text("Secret plans", timeout=TIMEOUT_MS)
        expect(entry.locator(".badge", has_text="private")).to_be_visible()
        entry.locator("a").click()
        expect(bob.locator("#room-name")).to_have_text("Secret plans")
        alice.goto(f"{live_site.base_url}/chat/{slug}/")
        expect(alice.locator("#status")).to_have_text("Connected", timeout=TIMEOUT_MS)
        say(bob, "Count me in")
        expect_message_once(alice, "bob", "Count me in")
        say(alice, "Welcome aboard")
        expect_message_once(bob, "alice", "Welcome aboard")

        alice.get_by_role("link", name="Room settings").click()
        alice.get_by_label("Room name").fill("Open secret")
        alice.get_by_role("button", name="Save").click()
        expect(bob.locator("#room-name")).to_have_text("Open secret", timeout=TIMEOUT_MS)
        expect(entry.locator("a")).to_have_text("Open secret")

        alice.get_by_role("button", name="Remove bob").click()
        expect(alice.locator(".flash")).to_contain_text("bob is no longer a member")

        expect(entry).to_have_count(0, timeout=TIMEOUT_MS)
        expect(bob.locator("#room-notice")).to_have_text(
            "You are no longer a member of this room.", timeout=TIMEOUT_MS
        )
        expect(bob.locator("#composer")).to_be_hidden()
        assert bob.evaluate("window.sameDocument") is True  # never reloaded
        assert bob.goto(f"{live_site.base_url}/chat/{slug}/").status == 404
    finally:
        for page in (alice, bob):
            page.context.close()
