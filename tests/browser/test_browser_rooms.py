"""What people see of presence, typing, many rooms, unread counts, direct messages, edits and
deletions, in real Chromium windows against a live server (issue 6).

Set CHATSITE_SCREENSHOT to a path (e.g. docs/room.png) to save the README's screenshot of
a room with presence, typing and unread badges.
"""

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.browser import (
    TIMEOUT_MS,
    create_room,
    expect_message_once,
    join_room,
    nav_item,
    new_page,
    say,
    sign_in,
    sign_in_to_general,
)
from tests.support.live_server import STAFF, LiveSite

pytestmark = [pytest.mark.browser, pytest.mark.own_database]


def test_one_tab_switches_rooms_and_counts_unread_live_across_tabs(
    browser: Browser,
    live_site: LiveSite,
) -> None:
    random_slug = create_room(browser, live_site, "Random")
    alice = sign_in_to_general(browser, live_site, "alice")
    alice_other_tab = sign_in_to_general(browser, live_site, "alice")
    bob = sign_in_to_general(browser, live_site, "bob")
    try:
        expect(alice.locator("#online li")).to_have_text(["alice", "bob"], timeout=TIMEOUT_MS)
        alice.evaluate("window.sameDocument = true")

        nav_item(alice, random_slug).locator("a").click()

        expect(alice).to_have_url(f"{live_site.base_url}/chat/{random_slug}/")
        expect(alice.locator("#room-name")).to_have_text("Random")
        assert alice.evaluate("window.sameDocument") is True  # no reload, same socket
        expect(alice.locator("#online li")).to_have_text(["alice"], timeout=TIMEOUT_MS)

        # Bob writes in general: alice's view of random does not show it; her sidebar, in
        # both her tabs, counts it as unread until a tab of hers reads general.
        say(bob, "news in general")
        expect_message_once(alice_other_tab, "bob", "news in general")
        expect(alice.get_by_role("log").filter(has_text="news in general")).to_have_count(0)
        # Her other tab, on general, reads it: the badge does not stay in this one.
        expect(nav_item(alice, "general").locator(".unread")).to_be_hidden(timeout=TIMEOUT_MS)

        say(bob, "still there?")
        expect_message_once(alice_other_tab, "bob", "still there?")
        alice_other_tab.wait_for_timeout(1500)  # on screen for a second: read
        alice_other_tab.get_by_role("link", name="Random").click()  # nobody reads general now
        expect(alice_other_tab.locator("#room-name")).to_have_text("Random")
        say(bob, "hello?")
        for page in (alice, alice_other_tab):
            expect(nav_item(page, "general").locator(".unread")).to_have_text(
                "1", timeout=TIMEOUT_MS
            )

        # Back to general, with the browser's Back button: the messages are there, once.
        alice.go_back()
        expect(alice).to_have_url(f"{live_site.base_url}/chat/general/")
        expect_message_once(alice, "bob", "hello?")
        expect_message_once(alice, "bob", "news in general")
        for page in (alice, alice_other_tab):
            expect(nav_item(page, "general").locator(".unread")).to_be_hidden(timeout=TIMEOUT_MS)
    finally:
        for page in (alice, alice_other_tab, bob):
            page.context.close()


def test_presence_typing_and_unread_badges_as_the_readme_shows_them(
    browser: Browser,
    live_site: LiveSite,
) -> None:
    random_slug = create_room(browser, live_site, "Random")
    join_room(browser, live_site, "bob", random_slug)  # alice made it: it is hers already
    alice = sign_in_to_general(browser, live_site, "alice")
    bob = sign_in_to_general(browser, live_site, "bob")
    guest = new_page(browser)
    guest.goto(f"{live_site.base_url}/chat/general/")
    try:
        expect(alice.locator("#online li")).to_have_text(
            ["alice", "bob", "1 guest"], timeout=TIMEOUT_MS
        )
        say(alice, "Morning all! The release is out.")
        say(bob, "Congrats! Notes are in Random.")
        expect_message_once(alice, "bob", "Congrats! Notes are in Random.")
        alice.get_by_role("link", name="Random").click()
        expect(alice.locator("#room-name")).to_have_text("Random")
        alice.wait_for_timeout(1500)  # on screen for a second: random is read
        alice.get_by_role("link", name="General").click()
        bob.get_by_role("link", name="Random").click()
        say(bob, "Release notes: faster joins, edits, DMs.")
        expect(nav_item(alice, random_slug).locator(".unread")).to_have_text(
            "1", timeout=TIMEOUT_MS
        )
        bob.get_by_role("link", name="General").click()
        say(bob, "Lunch at noon, @alice?")
        expect(alice.locator("li.message .mention.me")).to_have_text("@alice", timeout=TIMEOUT_MS)
        expect(alice.locator("#notices .notification")).to_contain_text("bob mentioned you")

        bob.get_by_label("Message", exact=True).press_sequentially("On my way", delay=20)

        expect(alice.locator("#typing")).to_have_text("bob is typing…", timeout=TIMEOUT_MS)
        screenshot = os.environ.get("CHATSITE_SCREENSHOT")
        if screenshot:
            alice.set_viewport_size({"width": 1100, "height": 640})
            alice.screenshot(path=Path(screenshot))
        bob.get_by_label("Message", exact=True).press("Enter")
        expect_message_once(alice, "bob", "On my way")
        expect(alice.locator("#typing")).to_have_text("")  # his message ends his typing
    finally:
        for page in (alice, bob, guest):
            page.context.close()


def test_edit_and_delete_own_messages_in_the_browser(
    browser: Browser,
    live_site: LiveSite,
) -> None:
    alice = sign_in_to_general(browser, live_site, "alice")
    bob = sign_in_to_general(browser, live_site, "bob")
    try:
        say(alice, "teh quick fox")
        expect_message_once(bob, "alice", "teh quick fox")
        posted = alice.get_by_role("log").locator("li[data-seq]").filter(has_text="teh quick fox")
        mine = alice.locator(f"li[data-id='{posted.get_attribute('data-id')}']")
        # Others may react to it (the line's actions), but not edit or delete it.
        theirs_before = bob.get_by_role("log").locator("li", has_text="teh quick fox")
        for action in ("Edit", "Delete"):
            expect(theirs_before.get_by_role("button", name=action)).to_have_count(0)

        mine.hover()
        mine.get_by_role("button", name="Edit").click()
        mine.get_by_label("Edit message").fill("the quick fox")
        mine.get_by_role("button", name="Save").click()

        theirs = bob.get_by_role("log").locator("li[data-seq]").filter(has_text="the quick fox")
        expect(theirs).to_have_count(1, timeout=TIMEOUT_MS)
        expect(theirs.locator(".edited")).to_have_text("(edited)")
        expect(bob.get_by_role("log")).not_to_contain_text("teh quick fox")

        alice.once("dialog", lambda dialog: dialog.accept())
        mine.hover()
        mine.get_by_role("button", name="Delete").click()
        for page in (bob, alice):
            expect(page.get_by_role("log")).not_to_contain_text("the quick fox", timeout=TIMEOUT_MS)

        bob.reload()  # the page and the replay agree: edited then deleted is gone
        expect(bob.locator("#status")).to_have_text("Connected", timeout=TIMEOUT_MS)
        expect(bob.get_by_role("log")).not_to_contain_text("quick fox")
    finally:
        alice.context.close()
        bob.context.close()


RECORD_NOTIFICATIONS = """
window.notified = [];
window.Notification = class {
  static permission = "granted";
  static requestPermission() { return Promise.resolve("granted"); }
  constructor(title, options) { window.notified.push({ title, body: options.body }); }
};
"""


def test_a_direct_message_reaches_the_recipient_in_another_room(
    browser: Browser,
    live_site: LiveSite,
) -> None:
    alice = new_page(browser)
    # The browser's notifications, recorded: as if alice had allowed them.
    alice.add_init_script(RECORD_NOTIFICATIONS)
    sign_in(alice, live_site, "alice")
    bob = sign_in_to_general(browser, live_site, "bob")
    try:
        bob.goto(f"{live_site.base_url}/chat/@alice/")
        expect(bob.locator("#room-name")).to_have_text("alice & bob", timeout=TIMEOUT_MS)
        expect(bob.locator("#status")).to_have_text("Connected", timeout=TIMEOUT_MS)

        say(bob, "a word in private")

        expect(alice.locator("#notices .notification")).to_contain_text(
            "bob sent you a message: a word in private", timeout=TIMEOUT_MS
        )
        expect(alice).to_have_title("(1) General · chatsite", timeout=TIMEOUT_MS)
        assert alice.evaluate("window.notified") == [
            {"title": "bob sent you a message", "body": "a word in private"}
        ]
        alice.goto(f"{live_site.base_url}/chat/@bob/")
        expect_message_once(alice, "bob", "a word in private")
        expect(alice).to_have_title("alice & bob · chatsite")
    finally:
        alice.context.close()
        bob.context.close()


def admin_page(browser: Browser, site: LiveSite) -> Page:
    """The moderator, signed in to the admin through its login form."""
    page = new_page(browser)
    page.goto(f"{site.base_url}/admin/login/?next=/admin/")
    page.get_by_label("Username").fill(STAFF)
    page.get_by_label("Password").fill(site.passwords[STAFF])
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("link", name="Announcements")).to_be_visible(timeout=TIMEOUT_MS)
    return page


def autocomplete(page: Page, field: str, choice: str) -> None:
    """Pick `choice` in one of the admin's autocomplete (select2) fields."""
    page.locator(f".field-{field} .select2-selection").click()
    page.locator(".select2-search__field").fill(choice)
    page.locator(".select2-results__option", has_text=choice).first.click()


def test_an_announcement_and_a_ban_from_the_admin_as_people_see_them(
    browser: Browser,
    live_site: LiveSite,
) -> None:
    quiet = create_room(browser, live_site, "Quiet corner")  # bob is banned from it only
    join_room(browser, live_site, "bob", quiet)
    alice = sign_in_to_general(browser, live_site, "alice")
    bob = sign_in_to_general(browser, live_site, "bob")
    guest = new_page(browser)
    guest.goto(f"{live_site.base_url}/chat/general/")
    expect(guest.locator("#status")).to_have_text("Connected", timeout=TIMEOUT_MS)
    admin = admin_page(browser, live_site)
    try:
        admin.goto(f"{live_site.base_url}/admin/chat/announcement/add/")
        admin.get_by_label("Body").fill("Maintenance at 22:00 UTC.")
        admin.get_by_role("button", name="Save", exact=True).click()

        for page in (alice, bob, guest):
            notice = page.locator("#notices .announcement")
            text = "Announcement: Maintenance at 22:00 UTC."
            expect(notice).to_have_text(text, timeout=TIMEOUT_MS)
            expect(notice).to_have_count(1)  # once, though the page follows several rooms

        for page in (alice, bob):
            page.get_by_role("link", name="Quiet corner").click()
        expect(alice.locator("#online li")).to_have_text(["alice", "bob"], timeout=TIMEOUT_MS)
        admin.goto(f"{live_site.base_url}/admin/chat/ban/add/")
        autocomplete(admin, "room", "Quiet corner")
        autocomplete(admin, "user", "bob")
        admin.get_by_label("Reason").fill("Cool off for a day.")
        admin.get_by_role("button", name="Save", exact=True).click()

        expect(bob.locator("#room-notice")).to_have_text("Cool off for a day.", timeout=TIMEOUT_MS)
        expect(bob.locator("#composer")).to_be_hidden()
        expect(nav_item(bob, quiet)).to_have_class(re.compile(r"\bclosed\b"))
        expect(alice.locator("#online li")).to_have_text(["alice"], timeout=TIMEOUT_MS)
        bob.reload()
        expect(bob.get_by_role("heading", name="Not allowed")).to_be_visible()
    finally:
        for page in (alice, bob, guest, admin):
            page.context.close()


def test_the_lobby_counts_who_is_online_and_what_is_unread_live(
    browser: Browser,
    live_site: LiveSite,
) -> None:
    alice = sign_in_to_general(browser, live_site, "alice")  # general is read: she is in it
    alice.wait_for_timeout(1500)
    alice.goto(f"{live_site.base_url}/")
    general = alice.locator("#room-list li[data-room='general']")
    expect(general.locator(".online-count")).to_have_text("", timeout=TIMEOUT_MS)
    try:
        bob = sign_in_to_general(browser, live_site, "bob")
        guest = new_page(browser)
        guest.goto(f"{live_site.base_url}/chat/general/")

        expect(general.locator(".online-count")).to_have_text(
            "1 online · 1 guest", timeout=TIMEOUT_MS
        )  # alice, on the lobby, is not counted
        say(bob, "is anyone around?")
        expect(general.locator(".unread")).to_have_text("1", timeout=TIMEOUT_MS)

        bob.context.close()
        guest.context.close()
        expect(general.locator(".online-count")).to_have_text("", timeout=TIMEOUT_MS)
    finally:
        alice.context.close()


def test_joining_starring_and_leaving_in_one_tab_changes_the_sidebar_of_another_live(
    browser: Browser,
    live_site: LiveSite,
) -> None:
    slug = create_room(browser, live_site, "Open house")  # alice's: bob is no member yet
    watching = sign_in_to_general(browser, live_site, "bob")
    acting = sign_in_to_general(browser, live_site, "bob")
    alice = sign_in_to_general(browser, live_site, "alice")
    try:
        watching.evaluate("window.sameDocument = true")
        expect(nav_item(watching, slug)).to_have_count(0)
        acting.goto(f"{live_site.base_url}/chat/{slug}/")
        expect(acting.locator("#status")).to_have_text("Connected", timeout=TIMEOUT_MS)

        acting.get_by_role("button", name="Join room").click()

        expect(acting.get_by_role("button", name="Leave room")).to_be_visible()
        entry = nav_item(watching, slug)
        expect(entry.locator("a")).to_have_text("Open house", timeout=TIMEOUT_MS)
        # The new entry is followed like the others: a message there is counted unread.
        # bob looks at another room meanwhile: a tab showing Open house reads the message
        # within a second, and its read mark clears the count in every tab (this test once
        # failed when that came before the check).
        acting.goto(f"{live_site.base_url}/chat/general/")
        expect(acting.locator("#status")).to_have_text("Connected", timeout=TIMEOUT_MS)
        alice.goto(f"{live_site.base_url}/chat/{slug}/")
        expect(alice.locator("#status")).to_have_text("Connected", timeout=TIMEOUT_MS)
        say(alice, "Welcome, bob")
        expect(entry.locator(".unread")).to_have_text("1", timeout=TIMEOUT_MS)
        # Read in the other tab, it is read in this one too.
        acting.goto(f"{live_site.base_url}/chat/{slug}/")
        expect(entry.locator(".unread")).to_be_hidden(timeout=TIMEOUT_MS)

        acting.get_by_role("button", name="Star").click()

        expect(acting.get_by_role("button", name="Unstar")).to_be_visible()
        first = watching.locator("#nav-rooms li").first
        expect(first).to_have_attribute("data-room", slug, timeout=TIMEOUT_MS)
        expect(first.locator(".starred")).to_be_visible()

        acting.get_by_role("button", name="Leave room").click()

        expect(acting.get_by_role("button", name="Join room")).to_be_visible()
        expect(nav_item(watching, slug)).to_have_count(0, timeout=TIMEOUT_MS)
        expect(nav_item(watching, "general")).to_have_count(1)
        assert watching.evaluate("window.sameDocument") is True  # never reloaded
    finally:
        for page in (watching, acting, alice):
            page.context.close()
