"""Notification settings and @ suggestions (issue 13), as people use them: a member mutes a
room and hears nothing of it, not even a mention, then asks for every message; the choice
reaches their other tab at once; typing "@" in the composer suggests the room's members and
@room / @here, by keyboard."""

import json

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.browser import (
    TIMEOUT_MS,
    expect_message_once,
    new_page,
    say,
    sign_in,
    sign_in_to_general,
)
from tests.support.live_server import LiveSite

pytestmark = [pytest.mark.browser, pytest.mark.own_database]


def record_notifications(page: Page) -> list[tuple[str, str]]:
    """(reason, body) of every `notification` frame the page's sockets receive from now on."""
    heard: list[tuple[str, str]] = []

    def on_frame(payload: str | bytes) -> None:
        frame = json.loads(payload)
        if frame.get("type") == "notification":
            heard.append((frame["reason"], frame["message"]["body"]))

    page.on("websocket", lambda socket: socket.on("framereceived", on_frame))
    return heard


def general_in_sidebar(page: Page):
    return page.locator('#nav-rooms li[data-room="general"]')


def test_a_muted_room_stays_quiet_and_all_messages_notify_on_every_tab(
    browser: Browser, live_site: LiveSite
) -> None:
    alice = sign_in_to_general(browser, live_site, "alice")
    bob = new_page(browser)
    heard = record_notifications(bob)
    sign_in(bob, live_site, "bob")
    other_tab = bob.context.new_page()
    other_tab.goto(f"{live_site.base_url}/chat/general/")
    expect(other_tab.locator("#status")).to_have_text("Connected", timeout=TIMEOUT_MS)
    try:
        level = bob.get_by_label("Notify me of")
        expect(level).to_have_value("mentions")  # a room's default
        expect(bob.locator("#notify-save")).to_be_hidden()  # with JS, choosing saves

        level.select_option("mute")
        for page in (bob, other_tab):  # every tab of bob's, at once, no reload
            expect(general_in_sidebar(page)).to_have_attribute("data-notify", "mute")
            expect(general_in_sidebar(page).locator(".badge.muted")).to_be_visible()
        expect(other_tab.get_by_label("Notify me of")).to_have_value("mute")

        say(alice, "@bob are you there?")
        expect_message_once(bob, "alice", "@bob are you there?")

        level.select_option("all")
        expect(other_tab.get_by_label("Notify me of")).to_have_value("all", timeout=TIMEOUT_MS)
        expect(general_in_sidebar(other_tab).locator(".badge.muted")).to_have_count(0)
        say(alice, "lunch at noon")
        banner = bob.locator("#notices .notification")
        expect(banner).to_contain_text("New message from alice: lunch at noon")
        # The mention sent while muted never came; the plain message did, once.
        assert heard == [("message", "lunch at noon")]

        other_tab.reload()  # it was saved, not only shown
        expect(other_tab.get_by_label("Notify me of")).to_have_value("all")
    finally:
        alice.context.close()
        bob.context.close()


def test_typing_at_suggests_members_and_room_and_here_by_keyboard(
    browser: Browser, live_site: LiveSite
) -> None:
    alice = sign_in_to_general(browser, live_site, "alice")
    bob = sign_in_to_general(browser, live_site, "bob")
    try:
        composer = alice.get_by_label("Message", exact=True)
        suggestions = alice.get_by_role("listbox", name="People to mention")
        composer.press_sequentially("thanks @b")
        expect(suggestions).to_be_visible()
        expect(composer).to_have_attribute("aria-expanded", "true")
        expect(suggestions.get_by_role("option")).to_have_text(["@bob"])
        expect(suggestions.get_by_role("option", name="@bob")).to_have_attribute(
            "aria-selected", "true"
        )
        composer.press("Enter")  # takes the suggestion; does not send
        expect(composer).to_have_value("thanks @bob ")
        expect(suggestions).to_be_hidden()
        composer.press_sequentially("ok")
        composer.press("Enter")  # now it sends
        expect_message_once(bob, "alice", "thanks @bob ok")
        expect(bob.locator("#notices .notification")).to_contain_text("alice mentioned you")
        # Its link, to the room on screen, takes the banner away, and nothing else: it
        # reloaded the page, which lost the other banners and the title's count.
        # By keyboard, focus goes to the composer, not the page's body.
        bob.evaluate("window.sameDocument = true")
        bob.locator("#notices .notification").get_by_role("link").focus()
        bob.keyboard.press("Enter")
        expect(bob.locator("#notices .notification")).to_have_count(0)
        assert bob.evaluate("window.sameDocument") is True
        expect(bob.get_by_label("Message", exact=True)).to_be_focused()

        # "@" alone lists the members but oneself; ↓ moves; @here and @room say whom they
        # reach; Esc closes.
        composer.press_sequentially("@")
        expect(suggestions.get_by_role("option")).to_have_text(
            [
                "@bob",
                "@carol",
                "@moderator",
                "@room everyone in the room",
                "@here everyone connected now",
            ]
        )
        composer.press("ArrowDown")
        expect(suggestions.get_by_role("option", name="@carol")).to_have_attribute(
            "aria-selected", "true"
        )
        composer.press_sequentially("he")
        expect(suggestions.get_by_role("option")).to_have_text(["@here everyone connected now"])
        composer.press("Escape")
        expect(suggestions).to_be_hidden()
        expect(composer).to_have_value("@he")
        composer.press("Tab")  # no suggestions open: Tab leaves the composer as usual
        expect(composer).not_to_be_focused()
    finally:
        alice.context.close()
        bob.context.close()
