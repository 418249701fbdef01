"""Issue 15's page-by-page checks: the pages to visit, in the state people see them, and the
measures taken in the page (what has focus, whether it shows, contrast ratios).

Contrast is WCAG 2.x's: relative luminance of sRGB colours, (L1 + 0.05) / (L2 + 0.05), a
translucent colour first laid over what is behind it."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, expect

from tests.support.browser import TIMEOUT_MS, new_page, say, sign_in
from tests.support.live_server import STAFF, LiveSite

# Someone else's message and one of alice's, her message with bob's reaction and a reply of
# his in its thread: every kind of action a line can offer is on the room's page.
THEIRS = "a message from bob"
MINE = "a message from alice"
REPLY = "bob's reply in the thread"

# (who, path, what): the pages of issue 15's checks. None: signed out.
PAGES: list[tuple[str | None, str, str]] = [
    ("alice", "/", "the lobby"),
    ("alice", "/chat/general/", "a room"),
    ("alice", "/chat/@bob/", "a direct message"),
    ("alice", "/account/", "the account page"),
    ("alice", "/people/", "people"),
    ("alice", f"/search/?q={MINE.replace(' ', '+')}", "search results"),
    (STAFF, "/chat/general/settings/", "a room's settings"),
    (None, "/accounts/login/", "log in"),
]


def seed_conversation(browser: Browser, site: LiveSite) -> None:
    """Bob and alice each post in #general; bob reacts to alice's message and replies in
    its thread (through the pages, as people do)."""
    alice = sign_in(new_page(browser), site, "alice")
    bob = sign_in(new_page(browser), site, "bob")
    try:
        say(bob, THEIRS)
        say(alice, MINE)
        line = bob.get_by_role("log").locator("li[data-seq]").filter(has_text=MINE)
        expect(line).to_have_count(1, timeout=TIMEOUT_MS)
        line.hover()
        line.get_by_role("button", name="Add reaction").click()
        bob.get_by_role("button", name="thumbs up").click()
        expect(line.locator(".reaction")).to_have_text("👍 1")
        line.hover()
        line.get_by_role("button", name="Reply in a thread").click()
        bob.get_by_label("Reply in the thread").fill(REPLY)
        bob.get_by_label("Reply in the thread").press("Enter")
        expect(line.locator(".thread-link")).to_have_text("1 reply", timeout=TIMEOUT_MS)
    finally:
        alice.context.close()
        bob.context.close()


@contextmanager
def opened(
    browser: Browser, site: LiveSite, who: str | None, path: str, **context_options: Any
) -> Iterator[Page]:
    """`path` open in a fresh profile, signed in as `who` (None: signed out), settled: a room
    connected, the others loaded."""
    page = new_page(browser, **context_options)
    try:
        if who is not None:
            sign_in(page, site, who)
        page.goto(f"{site.base_url}{path}")
        if path.startswith("/chat/") and "/settings/" not in path:
            expect(page.locator("#status")).to_have_text("Connected", timeout=TIMEOUT_MS)
        page.wait_for_load_state("networkidle")
        yield page
    finally:
        page.context.close()


# Colour arithmetic in the page, where the computed styles are: `parse` reads "rgb(…)" and
# "rgba(…)" (what Chromium computes for this stylesheet), `behind` is the opaque colour an
# element is drawn on (its ancestors' backgrounds laid over each other, then the canvas),
# `ratio` is WCAG's contrast ratio.
COLOUR_JS = (Path(__file__).parent / "colour.js").read_text(encoding="utf-8")


def install_colour(page: Page) -> None:
    """Put `colour` (COLOUR_JS) on the page's window, for the page's measures."""
    page.evaluate(f"() => {{ {COLOUR_JS}\nwindow.__colour = colour; }}")
