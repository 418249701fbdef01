"""In real Chromium, two users live: a formatted message shows bold, code, a code block, a
safe link and a mention that opens a profile card, the same live and after a reload, and
again when edited; hostile markdown shows as text and nothing in it ever runs, with the
page's CSP switched off so that the sanitiser alone must hold. Notifications stay text."""

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.browser import open_as, say
from tests.support.live_server import LiveSite

pytestmark = [pytest.mark.browser, pytest.mark.own_database]

# Runs before any script of every document: records CSP violations and uncaught errors.
WATCH = """
window.__violations = [];
window.__errors = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(`${e.effectiveDirective} blocked ${e.blockedURI || "inline"}`);
});
window.addEventListener("error", (e) => window.__errors.push(String(e.message)));
window.addEventListener("unhandledrejection", (e) => window.__errors.push(String(e.reason)));
"""
# What an injected element would leave in the DOM, whether or not it ran.
INJECTED = (
    "#messages [onerror], #messages [onload], #messages [onclick], #messages [onmouseover],"
    " #messages [style], #messages img, #messages svg, #messages iframe, #messages script,"
    ' #messages a:not([href^="https:"]):not([href^="http:"]):not([href^="mailto:"])'
)
FORMATTED = (
    "**lunch** at `noon`, see https://example.com/menu @alice :tada:\n"
    "```\nif (a < b) { go(); }\n```"
)
HOSTILE = [
    "[click](javascript:window.top.__pwned=1)",
    "<javascript:window.top.__pwned=1>",
    "[x](&#106;avascript:window.top.__pwned=1)",
    '**<img src=x onerror="window.top.__pwned=1">**',
    "![x](x)<svg onload=window.top.__pwned=1>",
    '[<iframe src="javascript:window.top.__pwned=1">](https://example.com)',
    "`<script>window.top.__pwned=1</script>` <script>window.top.__pwned=1</script>",
    "> <style>body{display:none}</style>@bob",
]


def line(page: Page, text: str):
    return page.get_by_role("log").locator("li[data-seq]").filter(has_text=text)


def assert_nothing_ran(page: Page) -> None:
    """No injected code ran, none is in the log, and no script failed."""
    page.wait_for_load_state("load")
    assert page.evaluate("window.top.__pwned") is None
    injected = page.evaluate(
        "(selector) => Array.from(document.querySelectorAll(selector), (e) => e.outerHTML)",
        INJECTED,
    )
    assert injected == []
    assert page.evaluate("window.__errors") == []


def test_formatting_shows_live_and_reloaded_and_hostile_markdown_never_runs(
    browser: Browser, live_site: LiveSite, profiles: list[Page]
) -> None:
    # Alice reads with the CSP off (the sanitiser alone must hold); Bob under the real one.
    alice = open_as(browser, live_site, profiles, "alice", init_script=WATCH, bypass_csp=True)
    bob = open_as(browser, live_site, profiles, "bob", init_script=WATCH)  # under the CSP
    expect(alice.locator("#online li")).to_have_text(["alice", "bob"])

    say(bob, FORMATTED)

    for page, me in ((alice, True), (bob, False)):
        message = line(page, "lunch")
        expect(message.locator(".body strong")).to_have_text("lunch")
        expect(message.locator(".body p > code")).to_have_text("noon")
        expect(message.locator(".body pre code")).to_have_text("if (a < b) { go(); }\n")
        link = message.get_by_role("link", name="https://example.com/menu")
        expect(link).to_have_attribute("href", "https://example.com/menu")
        expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
        expect(link).to_have_attribute("target", "_blank")
        expect(message.locator(".body")).to_contain_text("\N{PARTY POPPER}")
        mention = message.locator(".body .mention")
        expect(mention).to_have_text("@alice")
        expect(mention).to_have_class("mention person me" if me else "mention person")
    # The code block is styled by chat.css (a monospace font, its own background).
    font = alice.evaluate(
        "() => getComputedStyle(document.querySelector('#messages pre code')).fontFamily"
    )
    assert "monospace" in font
    # The mention opens the profile card, as an author's name does.
    line(bob, "lunch").locator(".body .mention").click()
    expect(bob.get_by_role("dialog", name="alice")).to_be_visible()
    bob.keyboard.press("Escape")
    # The notification is the body as plain text, never its HTML.
    expect(alice.locator("#notices .notification")).to_contain_text(
        "bob mentioned you: **lunch** at `noon`"
    )

    # After a reload the server renders the same HTML the live line showed.
    live_html = line(alice, "lunch").locator(".body").inner_html()
    alice.reload()
    expect(alice.locator("#status")).to_have_text("Connected")
    expect(line(alice, "lunch").locator(".body")).to_have_count(1)
    assert line(alice, "lunch").locator(".body").inner_html() == live_html
    expect(line(alice, "lunch").locator(".body .mention")).to_have_class("mention person me")

    # An edit renders anew, live; the edit form starts from the markdown, not the HTML.
    line(bob, "lunch").get_by_role("button", name="Edit").click()
    editor = bob.get_by_label("Edit message")
    expect(editor).to_have_value(FORMATTED)
    editor.fill("~~lunch~~ *dinner*")
    bob.get_by_role("button", name="Save").click()
    expect(line(alice, "dinner").locator(".body s")).to_have_text("lunch")
    expect(line(alice, "dinner").locator(".body em")).to_have_text("dinner")

    for body in HOSTILE:
        say(bob, body)
    for page in (alice, bob):
        expect(page.locator("#messages li[data-seq]")).to_have_count(1 + len(HOSTILE))
        assert_nothing_ran(page)
    expect(line(alice, "click").locator(".body")).to_have_text(HOSTILE[0])
    expect(line(alice, "click").get_by_role("link")).to_have_count(0)
    framed = line(alice, "<iframe").get_by_role("link")  # a safe link whose text is markup
    expect(framed).to_have_attribute("href", "https://example.com")
    expect(framed).to_have_text('<iframe src="javascript:window.top.__pwned=1">')
    expect(line(alice, "<style>").locator(".body blockquote")).to_contain_text(
        "<style>body{display:none}</style>@bob"
    )
    alice.reload()
    expect(alice.locator("#status")).to_have_text("Connected")
    expect(alice.locator("#messages li[data-seq]")).to_have_count(1 + len(HOSTILE))
    alice.wait_for_timeout(200)  # an <img onerror> would fire once its load failed
    assert_nothing_ran(alice)
    assert bob.evaluate("window.__violations") == []
