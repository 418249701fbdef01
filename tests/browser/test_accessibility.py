"""Issue 15: no serious or critical axe-core violation (WCAG 2.1 A/AA rules) on any page,
signed in or not, with the page in the state people see it: connected, messages shown,
someone online, a mention, a notification banner."""

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.axe import describe, violations
from tests.support.browser import TIMEOUT_MS, new_page, say, sign_in_to_general
from tests.support.live_server import STAFF, LiveSite

pytestmark = [pytest.mark.browser, pytest.mark.own_database]


def assert_accessible(page: Page, what: str) -> None:
    found = violations(page)
    assert not found, f"{what}:\n{describe(found)}"


def test_every_page_has_no_serious_or_critical_violation(
    browser: Browser, live_site: LiveSite
) -> None:
    base = live_site.base_url
    guest = new_page(browser)
    alice = sign_in_to_general(browser, live_site, "alice")
    bob = sign_in_to_general(browser, live_site, "bob")
    try:
        for path, what in [
            ("/", "the lobby, anonymous"),
            ("/accounts/login/", "log in"),
            ("/accounts/signup/", "sign up"),
            ("/admin/login/", "the admin's log in"),
            ("/chat/general/", "a room, anonymous"),
        ]:
            guest.goto(f"{base}{path}")
            assert_accessible(guest, what)

        say(bob, "hello @alice, **welcome** to `general`")
        expect(alice.locator("#notices .notification")).to_be_visible(timeout=TIMEOUT_MS)
        # Bob shows online (the guest's page, still open, may be listed too: as "1 guest").
        expect(alice.locator("#online li").filter(has_text="bob")).to_have_count(1)
        assert_accessible(alice, "a room, signed in, with a mention and a banner")

        alice.get_by_label("Message", exact=True).press_sequentially("@b")
        expect(alice.get_by_role("listbox", name="People to mention")).to_be_visible()
        assert_accessible(alice, "a room with the @ suggestions open")
        alice.keyboard.press("Escape")

        alice.goto(f"{base}/chat/@bob/")
        expect(alice.locator("#status")).to_have_text("Connected", timeout=TIMEOUT_MS)
        assert_accessible(alice, "a direct message")

        for path, what in [
            ("/", "the lobby, signed in"),
            ("/people/", "people"),
            ("/account/", "the account page"),
            ("/search/?q=welcome", "search results"),
        ]:
            alice.goto(f"{base}{path}")
            assert_accessible(alice, what)

        staff = sign_in_to_general(browser, live_site, STAFF)
        staff.goto(f"{base}/chat/general/settings/")
        assert_accessible(staff, "a room's settings")
        staff.context.close()
    finally:
        for page in (guest, alice, bob):
            page.context.close()
