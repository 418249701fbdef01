"""In real Chromium, two users live: a reply quotes its original and jumps to it; a thread
opens in a side panel with its own composer, and the other user sees the reply count and
an unread dot at once, opens the panel, reads the reply, and the dot goes."""

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.browser import WATCH_ERRORS, open_as, say
from tests.support.live_server import LiveSite

pytestmark = [pytest.mark.browser, pytest.mark.own_database]

FOUND = re.compile(r"\bfound\b")
UNREAD = re.compile(r"\bunread\b")


def line(page: Page, text: str):
    """The main log's line whose body says `text` (a quote of it is in another line)."""
    body = page.locator(".body", has_text=text)
    return page.locator("#messages li[data-seq]").filter(has=body)


def test_two_users_reply_with_a_quote_and_follow_a_thread_live(
    browser: Browser, live_site: LiveSite, profiles: list[Page]
) -> None:
    alice = open_as(browser, live_site, profiles, "alice", init_script=WATCH_ERRORS)
    bob = open_as(browser, live_site, profiles, "bob", init_script=WATCH_ERRORS)
    expect(alice.locator("#online li")).to_have_text(["alice", "bob"])
    say(bob, "original idea")
    say(bob, "something else")
    expect(line(alice, "something else")).to_have_count(1)

    # A reply: the quote shows above it for both, as text; clicking it jumps to the original.
    line(alice, "original idea").hover()  # a line's actions show on hover or focus
    line(alice, "original idea").get_by_role("button", name="Reply with a quote").click()
    expect(alice.locator("#reply-bar")).to_contain_text("Replying to @bob: original idea")
    say(alice, "agreed")
    expect(alice.locator("#reply-bar")).to_be_hidden()
    for page in (alice, bob):
        quote = line(page, "agreed").locator(".quote")
        expect(quote).to_have_text("↪ @bob original idea")
    line(bob, "agreed").locator(".quote").click()
    expect(line(bob, "original idea")).to_have_class(FOUND)
    expect(line(bob, "original idea")).to_have_attribute("aria-current", "true")
    expect(line(bob, "original idea")).to_be_focused()

    # A thread: Alice opens it from the line and replies in the panel (Enter sends).
    line(alice, "something else").hover()
    opener = line(alice, "something else").get_by_role("button", name="Reply in a thread")
    opener.click()
    panel = alice.get_by_role("complementary", name="Thread")
    expect(panel).to_be_visible()
    expect(alice.locator("#thread-heading")).to_be_focused()
    expect(panel.locator("li.root")).to_contain_text("something else")
    thread_input = alice.get_by_label("Reply in the thread")
    thread_input.fill("thread reply one")
    thread_input.press("Enter")
    expect(panel.locator("li[data-id]").filter(has_text="thread reply one")).to_have_count(1)

    # Bob, live: the count and the dot on the root; the reply is not in the main log.
    replies = line(bob, "something else").locator(".thread-link")
    expect(replies).to_have_text("1 reply")
    expect(replies).to_have_class(UNREAD)
    expect(line(bob, "thread reply one")).to_have_count(0)
    replies.click()
    bob_panel = bob.get_by_role("complementary", name="Thread")
    expect(bob_panel.locator("li[data-id]").filter(has_text="thread reply one")).to_have_count(1)
    expect(replies).not_to_have_class(UNREAD)  # read: the dot is gone
    bob.keyboard.press("Escape")
    expect(bob_panel).to_be_hidden()
    expect(replies).to_be_focused()

    # Also sent to the room: in the thread and in the main log.
    alice.get_by_label("Also send to the room").check()
    thread_input.fill("shared too")
    thread_input.press("Enter")
    expect(line(bob, "shared too")).to_have_count(1)
    expect(replies).to_have_text("2 replies")
    expect(replies).to_have_class(UNREAD)

    # Esc in Alice's panel closes it and focus returns to what opened it.
    thread_input.press("Escape")
    expect(panel).to_be_hidden()
    expect(opener).to_be_focused()

    # A reload renders the quote and the count on the server, and the dot follows the mark.
    bob.reload()
    expect(line(bob, "agreed").locator(".quote")).to_have_text("↪ @bob original idea")
    expect(line(bob, "something else").locator(".thread-link")).to_have_text("2 replies")
    expect(line(bob, "something else").locator(".thread-link")).to_have_class(UNREAD)
    for page in (alice, bob):
        assert page.evaluate("window.__errors") == []
