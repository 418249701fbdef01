"""Issue 15's phone layout, on a 375 x 812 touch screen: the room page is one screen (its header
on top, the composer at the bottom, the message list the one thing that scrolls), the rooms
and the account's links are a drawer, the room's tools fold behind a button, every control is
44 px or more, a tap shows a line's actions, and the newest message is never left cut off
below the list's edge: not when an on-screen keyboard shrinks the page, not after switching
rooms, not when an image loads."""

import io
import re
from collections.abc import Iterator

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from tests.support.axe import describe, violations
from tests.support.browser import (
    TIMEOUT_MS,
    create_room,
    join_room,
    new_page,
    say,
    sign_in,
    wait_until,
)
from tests.support.live_server import LiveSite

pytestmark = [pytest.mark.browser, pytest.mark.own_database]

PHONE = {"viewport": {"width": 375, "height": 812}, "has_touch": True, "is_mobile": True}
# What an on-screen keyboard leaves of the phone's screen.
KEYBOARD_UP = {"width": 375, "height": 480}
MIN_TARGET_PX = 44

# Every element whose content scrolls (overflow auto or scroll, with more than it shows).
SCROLLERS = """() => Array.from(document.querySelectorAll("*")).filter((node) => {
  const style = getComputedStyle(node);
  const scrolls = (overflow, more) => /(auto|scroll)/.test(overflow) && more > 1;
  return node.checkVisibility() && (
    scrolls(style.overflowY, node.scrollHeight - node.clientHeight) ||
    scrolls(style.overflowX, node.scrollWidth - node.clientWidth));
}).map((node) => node.id || node.className)"""

# The controls a finger must hit, as shown now, and their size: links in running text (a
# paragraph's, a message's links and @mentions) are exempt, as WCAG 2.5.5 has it; a checkbox's
# label counts.
TARGETS = """() => Array.from(document.querySelectorAll(
  "a[href], button, input:not([type=hidden]):not([type=file]), select, textarea, [role=option]"
)).filter((node) => {
  if (!node.checkVisibility({ visibilityProperty: true }) || node.closest("[inert]")) return false;
  const box = node.getBoundingClientRect();
  if (box.width === 0 || box.bottom < 0 || box.top > innerHeight) return false;
  if (node.closest(".message .body")) return false;  // a message's text: its links, @mentions
  const inline = node.tagName === "A" && getComputedStyle(node).display === "inline";
  return !(inline && node.closest("p, .hint"));
}).map((node) => {
  // A box to tick is hit through its label too.
  const label = /checkbox|radio/.test(node.type) &&
    (node.closest("label") || document.querySelector(`label[for="${node.id}"]`));
  const box = (label || node).getBoundingClientRect();
  const name = node.getAttribute("aria-label") || node.textContent.trim() || node.id;
  const tag = node.tagName.toLowerCase();
  return { name: `${tag} ${name}`.slice(0, 60), width: box.width, height: box.height };
})"""

# The newest message line's bottom against its list's: ≤ 1 px means it shows whole.
NEWEST_CUT_PX = """() => {
  const list = document.querySelector(".log ol.messages");
  const lines = list.querySelectorAll("li.message");
  const newest = lines[lines.length - 1];
  return newest.getBoundingClientRect().bottom - list.getBoundingClientRect().bottom;
}"""


def phone(browser: Browser, site: LiveSite, username: str) -> Page:
    return sign_in(new_page(browser, **PHONE), site, username)


def tall_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (120, 400), (30, 90, 200)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def pages() -> Iterator[list[Page]]:
    opened: list[Page] = []
    yield opened
    for page in opened:
        page.context.close()


def fill_room(page: Page, count: int, tag: str) -> None:
    """`count` messages of two lines each on a phone, the last one shown."""
    for n in range(count):
        say(page, f"{tag} {n}: a message long enough to wrap onto a second line on a phone")
    last = page.get_by_role("log").get_by_text(f"{tag} {count - 1}:")
    expect(last).to_be_visible(timeout=TIMEOUT_MS)


def test_a_room_on_a_phone_is_one_screen_that_the_message_list_scrolls(
    browser: Browser, live_site: LiveSite, pages: list[Page]
) -> None:
    alice = phone(browser, live_site, "alice")
    pages.append(alice)
    fill_room(alice, 25, "screen")
    alice.reload()
    expect(alice.locator("#status")).to_have_text("Connected", timeout=TIMEOUT_MS)

    # The page itself does not scroll, either way; the list is the one thing that does.
    extent = alice.evaluate(
        "() => [document.scrollingElement.scrollWidth, document.scrollingElement.scrollHeight]"
    )
    assert extent[0] <= PHONE["viewport"]["width"], extent
    assert extent[1] <= PHONE["viewport"]["height"], extent
    assert alice.evaluate(SCROLLERS) == ["messages"]

    # The room's name on top, the composer and Send at the bottom, the drawer out of sight.
    assert alice.locator("#room-name").bounding_box()["y"] < 40
    composer = alice.locator("#composer-input").bounding_box()
    assert 812 - 90 < composer["y"] + composer["height"] <= 812, composer
    expect(alice.get_by_role("button", name="Send")).to_be_in_viewport(ratio=1)
    expect(alice.locator(".room-nav")).not_to_be_in_viewport()
    expect(alice.get_by_role("navigation", name="Your rooms")).to_be_hidden()

    # Most of the screen is messages: at least five two-line messages show whole.
    whole = alice.evaluate(
        """() => {
          const list = document.getElementById("messages").getBoundingClientRect();
          return Array.from(document.querySelectorAll("#messages li.message")).filter((li) => {
            const box = li.getBoundingClientRect();
            return box.top >= list.top && box.bottom <= list.bottom + 1;
          }).length;
        }"""
    )
    assert whole >= 5, whole
    assert alice.evaluate(NEWEST_CUT_PX) <= 1

    # The placeholder names the box (its label is hidden here) and fits it on its one line:
    # the wide screen's keyboard hints were cut off mid-word ("Write a message — Enter s").
    placeholder, fits = alice.evaluate(PLACEHOLDER_FITS)
    assert placeholder
    assert fits, placeholder
    alice.set_viewport_size({"width": 1280, "height": 800})  # a wide screen: the hints
    assert "Enter sends" in alice.locator("#composer-input").get_attribute("placeholder")


# The composer's placeholder, and whether it fits its box's width on one line.
PLACEHOLDER_FITS = """() => {
  const input = document.getElementById("composer-input");
  const style = getComputedStyle(input);
  const context = document.createElement("canvas").getContext("2d");
  context.font = `${style.fontSize} ${style.fontFamily}`;
  const room = input.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  return [input.placeholder, context.measureText(input.placeholder).width <= room];
}"""


def test_the_drawer_holds_the_rooms_and_account_and_is_modal(
    browser: Browser, live_site: LiveSite, pages: list[Page]
) -> None:
    slug = create_room(browser, live_site, "Phone drawer")
    join_room(browser, live_site, "bob", slug)
    bob = phone(browser, live_site, "bob")
    pages.append(bob)
    toggle = bob.get_by_role("button", name="Rooms and people")
    expect(toggle).to_have_attribute("aria-expanded", "false")

    toggle.tap()
    drawer = bob.locator("#room-drawer")
    expect(drawer).to_be_in_viewport()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    # Focus is in the drawer, on the room shown; the rest of the page is inert.
    expect(bob.locator("#room-drawer a[aria-current='page']")).to_be_focused()
    assert bob.evaluate("document.querySelector('.room-main').inert")
    account = drawer.get_by_role("navigation", name="Account")
    for name in ["Lobby", "Search", "People", "Account (bob)", "Log out"]:
        expect(account.get_by_text(name, exact=True)).to_be_visible()
    expect(drawer.get_by_role("heading", name="Online")).to_be_visible()
    found = violations(bob)
    assert not found, f"the drawer open:\n{describe(found)}"

    # Escape closes it and gives focus back to its button.
    bob.keyboard.press("Escape")
    expect(drawer).not_to_be_in_viewport()
    expect(toggle).to_be_focused()
    assert not bob.evaluate("document.querySelector('.room-main').inert")

    # So does a tap beside it.
    toggle.tap()
    expect(drawer).to_be_in_viewport()
    bob.mouse.click(360, 400)
    expect(drawer).not_to_be_in_viewport()

    # A room picked in it opens in place and the drawer closes. Focus goes to the room's
    # log, not the composer: on a touch screen that would bring the keyboard up over it.
    toggle.tap()
    drawer.get_by_role("link", name="Phone drawer").tap()
    expect(bob.locator("#room-name")).to_have_text("Phone drawer")
    expect(drawer).not_to_be_in_viewport()
    expect(bob.locator("ol#messages[data-room]")).to_be_focused()
    # The site header's links are in the drawer instead: the header is not shown.
    expect(bob.locator(".site-header")).to_be_hidden()


def test_the_rooms_tools_fold_behind_room_options(
    browser: Browser, live_site: LiveSite, pages: list[Page]
) -> None:
    alice = phone(browser, live_site, "alice")
    pages.append(alice)
    options = alice.get_by_role("button", name="Room options")
    notify = alice.get_by_label("Notify me of")
    expect(notify).to_be_hidden()
    options.tap()
    expect(options).to_have_attribute("aria-expanded", "true")
    expect(notify).to_be_visible()
    expect(notify).to_be_in_viewport(ratio=1)
    alice.keyboard.press("Escape")
    expect(notify).to_be_hidden()
    expect(options).to_be_focused()

    # Tab past its last control closes it: left open, it covered the messages Tab went on
    # to, their focus ring included (seen running it as users).
    options.press("Enter")
    expect(notify).to_be_visible()
    for _ in range(10):
        alice.keyboard.press("Tab")
        if not alice.evaluate(IN_TOOLS):
            break
    expect(notify).to_be_hidden()
    expect(options).to_have_attribute("aria-expanded", "false")
    options.focus()  # and so does Shift+Tab back past the toggle
    options.press("Enter")
    expect(notify).to_be_visible()
    alice.keyboard.press("Shift+Tab")
    expect(options).to_be_focused()
    expect(notify).to_be_visible()  # still open on its own toggle
    alice.keyboard.press("Shift+Tab")
    expect(notify).to_be_hidden()

    # A direct message's panel starts at its first control, the "Add people" field.
    alice.goto(f"{live_site.base_url}/chat/@bob/")
    expect(alice.locator("#status")).to_have_text("Connected", timeout=TIMEOUT_MS)
    options.press("Enter")
    expect(alice.get_by_label("Add people")).to_be_focused()


IN_TOOLS = "() => document.getElementById('room-tools').contains(document.activeElement)"


def test_every_control_on_a_phone_is_at_least_44_px(
    browser: Browser, live_site: LiveSite, pages: list[Page]
) -> None:
    alice = phone(browser, live_site, "alice")
    pages.append(alice)
    say(alice, "a line of mine, to show its actions")
    mine = alice.locator("#messages li.message[data-seq]").filter(has_text="a line of mine")
    expect(mine).to_have_count(1, timeout=TIMEOUT_MS)
    mine.locator(".body").tap()
    expect(mine.get_by_role("button", name="Edit")).to_be_visible()

    seen: dict[str, dict] = {}

    def collect(state: str) -> None:
        for target in alice.evaluate(TARGETS):
            seen[f"{state}: {target['name']}"] = target

    collect("room")
    alice.get_by_role("button", name="Room options").tap()
    collect("room options")
    alice.keyboard.press("Escape")
    alice.get_by_role("button", name="Rooms and people").tap()
    collect("drawer")
    alice.keyboard.press("Escape")
    mine.get_by_role("button", name="Add reaction").tap()
    collect("reaction palette")
    # …and on every other page a phone opens.
    for path in ["/", "/people/", "/account/", "/search/?q=mine", "/chat/@bob/"]:
        alice.goto(f"{live_site.base_url}{path}")
        collect(path)

    assert any("Edit" in name for name in seen)
    assert any("Log out" in name for name in seen)
    small = {
        name: f"{t['width']:.0f} x {t['height']:.0f}"
        for name, t in seen.items()
        if t["width"] < MIN_TARGET_PX - 0.5 or t["height"] < MIN_TARGET_PX - 0.5
    }
    assert not small, f"controls under {MIN_TARGET_PX} px: {small}"


def test_a_tap_on_a_line_shows_its_actions_one_line_at_a_time(
    browser: Browser, live_site: LiveSite, pages: list[Page]
) -> None:
    alice = phone(browser, live_site, "alice")
    pages.append(alice)
    say(alice, "first tap line")
    say(alice, "second tap line")
    lines = alice.locator("#messages li.message[data-seq]")
    first = lines.filter(has_text="first tap line")
    second = lines.filter(has_text="second tap line")
    expect(second).to_have_count(1, timeout=TIMEOUT_MS)
    expect(first.get_by_role("button", name="Delete")).to_be_hidden()

    first.locator(".body").tap()
    expect(first.get_by_role("button", name="Delete")).to_be_in_viewport()
    second.locator(".body").tap()
    expect(second.get_by_role("button", name="Delete")).to_be_in_viewport()
    expect(first.get_by_role("button", name="Delete")).to_be_hidden()
    # A tap on the newest line's actions, at the list's bottom, leaves them in sight.
    assert alice.evaluate(NEWEST_CUT_PX) <= 1
    second.locator(".body").tap()
    expect(second.get_by_role("button", name="Delete")).to_be_hidden()


def test_the_newest_message_is_never_left_cut_off(
    browser: Browser, live_site: LiveSite, pages: list[Page]
) -> None:
    """The family: whatever changes the list's box or its lines while it is read at its
    bottom (a keyboard, a room switch, an image that loads), its newest line shows whole."""
    slug = create_room(browser, live_site, "Phone images")
    join_room(browser, live_site, "carol", slug)
    carol = phone(browser, live_site, "carol")
    pages.append(carol)
    fill_room(carol, 12, "keyboard")

    # The on-screen keyboard comes up while the composer has focus: the page shrinks to
    # what is left, the composer stays at its bottom, and so does the newest message.
    carol.get_by_label("Message", exact=True).tap()
    carol.set_viewport_size(KEYBOARD_UP)
    composer = carol.locator("#composer-input")
    expect(composer).to_be_in_viewport(ratio=1)
    box = composer.bounding_box()
    assert box["y"] + box["height"] <= KEYBOARD_UP["height"]
    wait_until(carol, f"() => ({NEWEST_CUT_PX})() <= 1")
    carol.set_viewport_size(PHONE["viewport"])
    wait_until(carol, f"() => ({NEWEST_CUT_PX})() <= 1")

    # The other room: long lines and, newest, a tall image, whose thumbnail loads after the
    # line is drawn.
    carol.goto(f"{live_site.base_url}/chat/{slug}/")
    expect(carol.locator("#status")).to_have_text("Connected", timeout=TIMEOUT_MS)
    fill_room(carol, 12, "images")
    carol.locator("#composer-file").set_input_files(
        files=[{"name": "tall.png", "mimeType": "image/png", "buffer": tall_png()}]
    )
    expect(carol.locator("#composer-files .file-chip.done")).to_have_count(1, timeout=TIMEOUT_MS)
    say(carol, "the image")
    newest = carol.locator("#messages li.message[data-seq]").filter(has_text="the image")
    expect(newest.locator("img")).to_have_count(1, timeout=TIMEOUT_MS)
    wait_until(carol, f"() => ({NEWEST_CUT_PX})() <= 1")

    # Back in general, then to the image room by the drawer: its newest line whole, once
    # its image has loaded too.
    carol.goto(f"{live_site.base_url}/chat/general/")
    expect(carol.locator("#status")).to_have_text("Connected", timeout=TIMEOUT_MS)
    carol.get_by_role("button", name="Rooms and people").tap()
    carol.locator("#room-drawer").get_by_role("link", name="Phone images").tap()
    expect(carol.locator("#messages li.message img")).to_have_count(1, timeout=TIMEOUT_MS)
    wait_until(
        carol,
        "() => Array.from(document.querySelectorAll('#messages img')).every((img) => img.complete)",
    )
    wait_until(carol, f"() => ({NEWEST_CUT_PX})() <= 1")


def test_the_newest_lines_show_before_any_module_has_run(
    browser: Browser, live_site: LiveSite, pages: list[Page]
) -> None:
    """On a slow phone the modules come last: the server-rendered list already starts at its
    newest line (pin.js, a classic script at the end of the content), not at its oldest."""
    bob = phone(browser, live_site, "bob")
    pages.append(bob)
    fill_room(bob, 20, "before modules")
    reader = new_page(browser, **PHONE)
    pages.append(reader)
    reader.route(re.compile(r"/static/chat/(?!pin\.)[^/]+\.js$"), lambda route: route.abort())
    reader.goto(f"{live_site.base_url}/chat/general/")
    expect(reader.locator("#status")).to_have_text("Offline")  # no module ran
    newest = reader.locator("#messages li.message").last
    expect(newest).to_contain_text("before modules 19:")
    assert reader.evaluate(NEWEST_CUT_PX) <= 1
    expect(reader.locator("#messages li.message").first).not_to_be_in_viewport()
