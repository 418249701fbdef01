"""In real Chromium, two users live: reactions are put on from the palette by keyboard and
by mouse, toggled from the bar (by keyboard, keeping focus), and reach the other user at
once; after a reload the server-rendered bar shows the same and still toggles."""

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.browser import WATCH_ERRORS, open_as, say
from tests.support.live_server import LiveSite

pytestmark = [pytest.mark.browser, pytest.mark.own_database]


def line(page: Page, text: str):
    return page.get_by_role("log").locator("li[data-seq]").filter(has_text=text)


def party(page: Page):
    return line(page, "lunch?").locator('.reactions .reaction[data-emoji="🎉"]')


def test_two_users_react_live_by_keyboard_and_mouse_and_a_reload_shows_the_same(
    browser: Browser, live_site: LiveSite, profiles: list[Page]
) -> None:
    alice = open_as(browser, live_site, profiles, "alice", init_script=WATCH_ERRORS)
    bob = open_as(browser, live_site, profiles, "bob", init_script=WATCH_ERRORS)
    expect(alice.locator("#online li")).to_have_text(["alice", "bob"])
    say(bob, "lunch?")
    expect(line(alice, "lunch?")).to_have_count(1)

    # Alice, by keyboard: from the author's name, Tab to React, Enter opens the palette
    # (focus on its first emoji), arrows move, Enter picks and closes it.
    line(alice, "lunch?").locator(".author").focus()
    alice.keyboard.press("Tab")
    react = line(alice, "lunch?").get_by_role("button", name="Add reaction")
    expect(react).to_be_focused()
    alice.keyboard.press("Enter")
    expect(react).to_have_attribute("aria-expanded", "true")
    expect(alice.get_by_role("button", name="thumbs up")).to_be_focused()
    for _ in range(4):  # 👍 👎 ❤️ 😂 🎉
        alice.keyboard.press("ArrowRight")
    expect(alice.get_by_role("button", name="party")).to_be_focused()
    alice.keyboard.press("Enter")
    expect(line(alice, "lunch?").locator(".palette")).to_have_count(0)
    expect(react).to_be_focused()

    for page, mine in ((alice, "true"), (bob, "false")):
        expect(party(page)).to_have_text("🎉 1")
        expect(party(page)).to_have_attribute("aria-pressed", mine)
        expect(party(page)).to_have_attribute("title", "alice reacted with 🎉")

    # Bob, by keyboard, from the bar: his joins hers, and the bar drawn again keeps his place.
    party(bob).focus()
    bob.keyboard.press("Enter")
    for page in (alice, bob):
        expect(party(page)).to_have_text("🎉 2")
        expect(party(page)).to_have_attribute("title", "alice and bob reacted with 🎉")
    expect(party(bob)).to_have_attribute("aria-pressed", "true")
    expect(party(bob)).to_be_focused()

    # Alice takes hers back; Escape closes a palette without reacting.
    party(alice).click()
    for page in (alice, bob):
        expect(party(page)).to_have_text("🎉 1")
        expect(party(page)).to_have_attribute("title", "bob reacted with 🎉")
    expect(party(alice)).to_have_attribute("aria-pressed", "false")
    line(alice, "lunch?").hover()
    react.click()
    alice.keyboard.press("Escape")
    expect(line(alice, "lunch?").locator(".palette")).to_have_count(0)

    # After a reload the server renders the same bar, and it still toggles.
    bob.reload()
    expect(bob.locator("#status")).to_have_text("Connected")
    expect(party(bob)).to_have_text("🎉 1")
    expect(party(bob)).to_have_attribute("aria-pressed", "true")
    party(bob).click()
    for page in (alice, bob):
        expect(line(page, "lunch?").locator(".reactions")).to_be_hidden()
    assert alice.evaluate("window.__errors") == []
    assert bob.evaluate("window.__errors") == []
