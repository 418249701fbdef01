"""Chromium for the browser tests: the fixture and the steps every such test takes.

Tests ask for the fixture as `browser` (tests/conftest.py registers this module's fixtures).
"""

import os
import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from tests.support.deps import need
from tests.support.live_server import LiveSite

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
# The status pill when connected: over a WebSocket, and over the HTTP fallback.
CONNECTED = "Connected"
CONNECTED_HTTP = "Connected (HTTP)"


@pytest.fixture(scope="module", name="browser")
def browser_fixture() -> Iterator[Browser]:
    """Headless Debian Chromium driven by Playwright (its own browser download is not used)."""
    need(
        "chromium",
        os.path.exists(CHROMIUM) or shutil.which("chromium") is not None,
        f"no Chromium at {CHROMIUM} or on PATH (apt-get install chromium)",
    )
    executable = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    # An `expect` waits as long as any other step: its default 5 s is less than a page of
    # history takes to load on a loaded CI machine (a passing check returns at once).
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


def wait_until(page: Page, function: str, arg: Any = None, *, timeout_ms: int = TIMEOUT_MS) -> None:
    """Call `function` (a JavaScript function's source) in the page with `arg` until it
    returns something truthy, or fail after `timeout_ms`.

    Not `Page.wait_for_function`: its polling calls `eval` in the page after the first
    check, which the site's Content-Security-Policy refuses (no 'unsafe-eval'), so it failed
    whenever that first check came too early (an image still loading on a slow machine).
    Each `page.evaluate` is DevTools' own evaluation, which the policy does not cover."""
    deadline = time.monotonic() + timeout_ms / 1000
    while not page.evaluate(function, arg):
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout_ms} ms: {function[:200]}")
        time.sleep(0.05)


def new_page(browser: Browser, **context_options: Any) -> Page:
    """A page in a fresh browser profile (its own cookies and sessionStorage); options go to
    `browser.new_context` (e.g. `color_scheme="dark"`)."""
    context = browser.new_context(**context_options)
    context.set_default_timeout(TIMEOUT_MS)
    return context.new_page()


def sign_in(page: Page, site: LiveSite, username: str, *, status: str = CONNECTED) -> Page:
    """Log in through the form and land, connected, in #general (`status`: what the pill
    says then, CONNECTED_HTTP where the page is kept off WebSockets)."""
    page.goto(f"{site.base_url}/accounts/login/?next=/chat/general/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(site.passwords[username])
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{site.base_url}/chat/general/", timeout=TIMEOUT_MS)
    expect(page.locator("#status")).to_have_text(status, timeout=TIMEOUT_MS)
    return page


def sign_in_to_general(browser: Browser, site: LiveSite, username: str) -> Page:
    """A fresh browser profile logs in through the form and lands, connected, in #general."""
    return sign_in(new_page(browser), site, username)


def say(page: Page, body: str) -> None:
    """Type `body` in the composer and press Enter."""
    composer = page.get_by_label("Message", exact=True)
    composer.fill(body)
    composer.press("Enter")


def outbox_line(page: Page, body: str) -> Locator:
    """The line of the user's outbox (not yet confirmed by the server) that shows `body`."""
    return page.get_by_role("log").locator("li.outbox").filter(has_text=body)


def expect_message_once(page: Page, author: str, body: str) -> None:
    """The log shows the stored message exactly once and no unconfirmed line is left."""
    log = page.get_by_role("log")
    stored = log.locator("li[data-seq]").filter(has_text=body)
    expect(stored).to_have_count(1, timeout=TIMEOUT_MS)
    expect(stored.locator(".author")).to_have_text(author, timeout=TIMEOUT_MS)
    # An unconfirmed line is a message line without a seq (day dividers are lines too).
    expect(log.locator("li.message:not([data-seq])")).to_have_count(0, timeout=TIMEOUT_MS)


def join_room(browser: Browser, site: LiveSite, username: str, slug: str) -> None:
    """`username` puts the room in their rooms with its page's "Join room" button (nothing
    to do if it is there already: the page offers "Leave room" instead)."""
    page = sign_in_to_general(browser, site, username)
    try:
        page.goto(f"{site.base_url}/chat/{slug}/")
        join = page.get_by_role("button", name="Join room")
        if join.is_visible():
            join.click()
        expect(page.get_by_role("button", name="Leave room")).to_be_visible(timeout=TIMEOUT_MS)
    finally:
        page.context.close()


# Pages errors are collected in (`window.__errors`: uncaught errors and CSP violations), for
# tests that check nothing broke while they clicked around: `open_as(..., watch=True)`.
WATCH_ERRORS = """
window.__errors = [];
window.addEventListener("error", (e) => window.__errors.push(String(e.message)));
document.addEventListener("securitypolicyviolation", (e) => window.__errors.push("csp"));
"""


@pytest.fixture
def profiles() -> Iterator[list[Page]]:
    """The pages a test opened with `open_as`, a browser profile each, closed after it."""
    opened: list[Page] = []
    yield opened
    for page in opened:
        page.context.close()


def open_as(
    browser: Browser,
    site: LiveSite,
    profiles: list[Page],
    username: str,
    *,
    init_script: str | None = None,
    **context_options: object,
) -> Page:
    """A fresh browser profile (`context_options`, e.g. accept_downloads) signed in as
    `username` and connected in #general, with `init_script` run in every document first;
    added to `profiles` (the fixture) to be closed after the test."""
    context = browser.new_context(**context_options)
    context.set_default_timeout(TIMEOUT_MS)
    if init_script:
        context.add_init_script(init_script)
    page = context.new_page()
    profiles.append(page)
    return sign_in(page, site, username)


def nav_item(page: Page, slug: str):
    return page.locator(f".room-nav li[data-room='{slug}']")


def create_room(browser: Browser, site: LiveSite, name: str) -> str:
    """Alice makes a room from the lobby's form (once per module's site); its slug (the
    name's, with a random suffix: docs/security.md, "Direct messages and room names")."""
    page = sign_in_to_general(browser, site, "alice")
    try:
        page.goto(f"{site.base_url}/")
        link = page.locator(f".room-list a:text-is('{name}')")
        if not link.count():
            page.get_by_label("Room name").fill(name)
            page.get_by_role("button", name="Create room").click()
            expect(page.locator("#room-name")).to_have_text(name, timeout=TIMEOUT_MS)
            page.goto(f"{site.base_url}/")
        href = link.get_attribute("href")
        assert href is not None
        return href.strip("/").split("/")[-1]
    finally:
        page.context.close()
