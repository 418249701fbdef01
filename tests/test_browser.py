"""Two people chat in real Chromium windows: the login form, room.js and the socket together."""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.deps import need
from tests.live_server import LiveSite, live_site  # noqa: F401

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 10_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium driven by Playwright (its own browser download is not used)."""
    need(
        "chromium",
        os.path.exists(CHROMIUM) or shutil.which("chromium") is not None,
        f"no Chromium at {CHROMIUM} or on PATH (apt-get install chromium)",
    )
    executable = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


def sign_in_to_general(browser: Browser, site: LiveSite, username: str) -> Page:
    """A fresh browser profile logs in through the form and lands, connected, in #general."""
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(f"{site.base_url}/accounts/login/?next=/chat/general/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(site.passwords[username])
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{site.base_url}/chat/general/", timeout=TIMEOUT_MS)
    expect(page.locator("#status")).to_have_text("Connected", timeout=TIMEOUT_MS)
    return page


def expect_message_once(page: Page, author: str, body: str) -> None:
    """The log shows the stored message exactly once and no unconfirmed line is left."""
    log = page.get_by_role("log")
    stored = log.locator("li[data-seq]").filter(has_text=body)
    expect(stored).to_have_count(1, timeout=TIMEOUT_MS)
    expect(stored.locator(".author")).to_have_text(author, timeout=TIMEOUT_MS)
    expect(log.locator("li:not([data-seq])")).to_have_count(0, timeout=TIMEOUT_MS)


def test_two_people_chat_in_the_browser(
    browser: Browser,
    live_site: LiveSite,  # noqa: F811
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
