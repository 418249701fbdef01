"""Issue 15: every action is reachable by keyboard and visible on focus (WCAG 2.1.1, 2.4.7,
2.4.11). On each page, Tab runs through the whole page until focus comes back to where it
started; every element it stops on must be drawn where it is (a box, visible, opaque, in the
viewport once the browser has scrolled it in, on top at its centre) and must show a focus
indicator: a 2 px outline (or an equivalent shadow, border or background change) at 3:1
against what is behind it. On a room's page every button of every message (Edit, Delete,
React, Reply, Thread, a reaction, "1 reply") is one of those stops."""

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.support.a11y import MINE, PAGES, THEIRS, install_colour, opened, seed_conversation
from tests.support.live_server import LiveSite

pytestmark = [pytest.mark.browser, pytest.mark.own_database]

# More Tab stops than any page has (a room with a page of messages has about 60): a page
# where focus never comes back is a keyboard trap, not a long page.
MAX_STOPS = 400

# What the element that has focus looks like, and what it looks like without focus (it is
# blurred for a moment, then focused again without scrolling, so Tab goes on from it).
PROBE = (Path(__file__).parent.parent / "support" / "focus_probe.js").read_text(encoding="utf-8")


def tab_through(page: Page) -> list[dict[str, Any]]:
    """Tab from the top of the page until focus is back on its first stop; each stop as
    PROBE saw it."""
    install_colour(page)
    page.evaluate("() => { document.activeElement?.blur(); window.scrollTo(0, 0); }")
    stops: list[dict[str, Any]] = []
    outside = 0  # Tabs in a row that left the document (past its last stop)
    for _ in range(MAX_STOPS):
        page.keyboard.press("Tab")
        stop = page.evaluate(PROBE)
        if stop is None:
            outside += 1
            assert outside < 3, "Tab leaves the page and never comes back"
            continue
        outside = 0
        if stops and stop["id"] == stops[0]["id"]:
            return stops
        stops.append(stop)
    raise AssertionError(f"focus never came back to the first stop in {MAX_STOPS} Tabs")


@pytest.fixture(scope="module")
def seeded(browser: Browser, live_site: LiveSite) -> LiveSite:
    seed_conversation(browser, live_site)
    return live_site


@pytest.mark.parametrize(("who", "path", "what"), PAGES, ids=[p[2] for p in PAGES])
def test_every_tab_stop_is_visible_and_shows_focus(
    browser: Browser, seeded: LiveSite, who: str | None, path: str, what: str
) -> None:
    with opened(browser, seeded, who, path) as page:
        stops = tab_through(page)
        assert len(stops) > 2, f"{what}: only {stops}"
        bad = [f"{s['desc']}: {'; '.join(s['problems'])}" for s in stops if s["problems"]]
        assert not bad, f"{what}:\n" + "\n".join(bad)


def test_tab_reaches_every_action_of_every_message(browser: Browser, seeded: LiveSite) -> None:
    with opened(browser, seeded, "alice", "/chat/general/") as page:
        tab_through(page)
        missed = page.evaluate(
            """() => Array.from(document.querySelectorAll(
                 "#messages li.message :is(button, a[href], input, select, textarea)"))
               .filter((el) => !window.__focused.has(el))
               .map((el) => (el.getAttribute("aria-label") || el.textContent).trim())"""
        )
        assert missed == [], f"Tab never reached: {missed}"
        actions = page.evaluate(
            """(bodies) => bodies.map((body) => {
                 const li = Array.from(document.querySelectorAll("#messages li[data-seq]"))
                   .find((line) => line.querySelector(".body").textContent.trim() === body);
                 return Array.from(li.querySelectorAll("button"), (b) => b.textContent.trim());
               })""",
            [THEIRS, MINE],
        )
        theirs, mine = actions
        assert {"React", "Reply", "Thread"} <= set(theirs), theirs
        assert {"React", "Reply", "Thread", "Edit", "Delete", "👍 1", "1 reply"} <= set(mine), mine
