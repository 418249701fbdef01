"""Rooms made and run by their owners, as two people see them in real Chromium windows: a
private room (alice creates it, invites bob, who gets it at once, they talk, she renames it
and removes him, and his tab loses it at once); a public room in bob's open lobby (it
appears, is renamed, marked joined from his other tab, archived away and un-archived back);
and on bob's open room page, owners made and an archived room opened again."""

import re

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


def lobby_item(page: Page, slug: str):
    return page.locator(f"#room-list li[data-room='{slug}']")


def open_lobby_following_general(page: Page, site: LiveSite) -> None:
    """Open the lobby and wait until its socket follows the rooms: general counts someone
    online there (the other user, on its page)."""
    page.goto(f"{site.base_url}/")
    page.evaluate("window.sameDocument = true")
    expect(lobby_item(page, "general").locator(".online-count")).to_contain_text(
        "1 online", timeout=TIMEOUT_MS
    )


def test_a_lobby_lists_rooms_made_renamed_joined_archived_and_unarchived_live(
    browser: Browser, live_site: LiveSite
) -> None:
    alice = sign_in_to_general(browser, live_site, "alice")
    bob = sign_in_to_general(browser, live_site, "bob")
    bob_elsewhere = bob.context.new_page()  # bob's other tab
    try:
        open_lobby_following_general(bob, live_site)

        alice.goto(f"{live_site.base_url}/")
        alice.get_by_label("Room name").fill("Town square")
        alice.get_by_label("Topic").fill("Everyone welcome")
        alice.get_by_role("button", name="Create room").click()
        expect(alice.locator("#room-name")).to_have_text("Town square")
        slug = alice.url.rstrip("/").split("/")[-1]

        item = lobby_item(bob, slug)
        expect(item.locator("a")).to_have_text("Town square", timeout=TIMEOUT_MS)
        expect(item.locator(".topic")).to_have_text("Everyone welcome")
        expect(item.locator(".member-count")).to_have_text("1 member")
        expect(item.locator(".joined")).to_have_count(0)
        # Listed by name, as a reload would list it.
        names = bob.locator("#room-list li a").all_text_contents()
        assert names == sorted(names, key=str.lower), names

        alice.get_by_role("link", name="Room settings").click()
        alice.get_by_label("Room name").fill("Town hall")
        alice.get_by_label("Topic").fill("Meet here")
        alice.get_by_role("button", name="Save").click()
        expect(item.locator("a")).to_have_text("Town hall", timeout=TIMEOUT_MS)
        expect(item.locator(".topic")).to_have_text("Meet here")

        bob_elsewhere.goto(f"{live_site.base_url}/chat/{slug}/")
        bob_elsewhere.get_by_role("button", name="Join room").click()
        expect(bob_elsewhere.get_by_role("button", name="Leave room")).to_be_visible()
        expect(item.locator(".joined")).to_have_text("joined", timeout=TIMEOUT_MS)
        bob_elsewhere.close()

        alice.get_by_role("button", name="Archive this room").click()
        expect(alice.locator("#room-notice")).to_be_visible()
        expect(item).to_have_count(0, timeout=TIMEOUT_MS)

        alice.get_by_role("link", name="Room settings").click()
        alice.get_by_role("button", name="Un-archive this room").click()
        expect(alice.locator("#composer")).to_be_visible()
        expect(item.locator("a")).to_have_text("Town hall", timeout=TIMEOUT_MS)
        expect(item.locator(".joined")).to_have_text("joined")
        assert bob.evaluate("window.sameDocument") is True  # never reloaded
    finally:
        for page in (alice, bob):
            page.context.close()


def test_an_open_room_page_follows_its_owners_and_reopens_when_unarchived(
    browser: Browser, live_site: LiveSite
) -> None:
    alice = sign_in_to_general(browser, live_site, "alice")
    bob = sign_in_to_general(browser, live_site, "bob")
    try:
        alice.goto(f"{live_site.base_url}/")
        alice.get_by_label("Room name").fill("Workshop")
        alice.get_by_role("button", name="Create room").click()
        expect(alice.locator("#room-name")).to_have_text("Workshop")
        slug = alice.url.rstrip("/").split("/")[-1]
        bob.goto(f"{live_site.base_url}/chat/{slug}/")
        bob.get_by_role("button", name="Join room").click()
        expect(bob.get_by_role("button", name="Leave room")).to_be_visible()
        expect(bob.locator("#status")).to_have_text("Connected", timeout=TIMEOUT_MS)
        bob.evaluate("window.sameDocument = true")
        settings_link = bob.get_by_role("link", name="Room settings")
        expect(settings_link).to_be_hidden()

        alice.goto(f"{live_site.base_url}/chat/{slug}/settings/")
        alice.get_by_role("button", name="Make owner: bob").click()
        expect(alice.locator(".flash")).to_contain_text("bob is an owner")
        expect(settings_link).to_be_visible(timeout=TIMEOUT_MS)
        expect(nav_item(bob, slug)).to_have_attribute("data-owner", "")

        alice.get_by_role("button", name="Archive this room").click()
        expect(bob.locator("#room-notice")).to_have_text(
            "This room has been archived.", timeout=TIMEOUT_MS
        )
        expect(bob.locator("#composer")).to_be_hidden()
        expect(settings_link).to_be_visible()  # an owner's way to un-archive it
        # A page rendered archived lists it nowhere in the sidebar; un-archived, it comes
        # back there live (seen running it as users: only a reload brought it back).
        bob.reload()
        expect(bob.locator("#room-notice")).to_contain_text("This room is archived")
        expect(nav_item(bob, slug)).to_have_count(0)
        bob.evaluate("window.sameDocument = true")

        alice.get_by_role("link", name="Room settings").click()
        alice.get_by_role("button", name="Un-archive this room").click()
        expect(alice.locator("#composer")).to_be_visible()
        expect(bob.locator("#room-notice")).to_be_hidden(timeout=TIMEOUT_MS)
        expect(bob.locator("#composer")).to_be_visible()
        expect(nav_item(bob, slug)).to_be_visible()
        expect(nav_item(bob, slug)).to_have_class(re.compile(r"\bcurrent\b"))
        expect(alice.locator("#status")).to_have_text("Connected", timeout=TIMEOUT_MS)
        say(bob, "Back in business")
        expect_message_once(alice, "bob", "Back in business")
        expect_message_once(bob, "bob", "Back in business")
        assert bob.evaluate("window.sameDocument") is True  # never reloaded
    finally:
        for page in (alice, bob):
            page.context.close()
