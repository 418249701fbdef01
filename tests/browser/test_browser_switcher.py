"""The room switcher (issue 15, "Everything by keyboard"): Ctrl+K anywhere, the composer
included, opens a modal combobox over the user's rooms and direct messages; typing narrows
it, ↑/↓ and Enter open a room in place, Esc closes it and gives focus back; unread rooms come
first with their counts; a sidebar button opens it too, on a phone as well; axe finds nothing
serious with it open."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.axe import describe, violations
from tests.support.browser import (
    TIMEOUT_MS,
    create_room,
    join_room,
    nav_item,
    new_page,
    say,
    sign_in,
    sign_in_to_general,
)
from tests.support.live_server import LiveSite

pytestmark = [pytest.mark.browser, pytest.mark.own_database]

# Alice's rooms besides #general; in the sidebar by name: Harbor, Orbit, Orchard.
NAMES = ("Orchard", "Orbit", "Harbor")


@pytest.fixture(scope="module")
def rooms(browser: Browser, live_site: LiveSite) -> dict[str, str]:
    """Each of NAMES → its slug: rooms alice made, so they are in her sidebar."""
    return {name: create_room(browser, live_site, name) for name in NAMES}


@pytest.fixture
def alice(browser: Browser, live_site: LiveSite, rooms: dict[str, str]) -> Iterator[Page]:
    page = sign_in_to_general(browser, live_site, "alice")
    yield page
    page.context.close()


def composer(page: Page):
    return page.get_by_label("Message", exact=True)


def switcher(page: Page):
    return page.get_by_role("dialog", name="Jump to a room")


def combobox(page: Page):
    return switcher(page).get_by_role("combobox", name="Room or person")


def options(page: Page):
    return switcher(page).get_by_role("option")


def option_names(page: Page):
    return options(page).locator(".switcher-name")


def test_ctrl_k_opens_the_switcher_from_the_composer_and_escape_gives_focus_back(
    alice: Page,
) -> None:
    box = composer(alice)
    box.press_sequentially("half a thought")
    box.press("Control+k")
    expect(switcher(alice)).to_be_visible()
    expect(combobox(alice)).to_be_focused()
    expect(combobox(alice)).to_have_attribute("aria-expanded", "true")
    expect(combobox(alice)).to_have_attribute("aria-controls", "switcher-list")
    expect(box).to_have_value("half a thought")  # nothing typed into the composer
    # Modal: the page behind it is inert, so Tab reaches nothing of it (past the dialog's
    # last stop, focus leaves for the browser's own controls: the body is then active).
    for _ in range(5):
        alice.keyboard.press("Tab")
        where = alice.evaluate(
            """() => document.getElementById("switcher").contains(document.activeElement)
                || document.activeElement === document.body"""
        )
        assert where, "Tab left the dialog for the page behind it"

    alice.keyboard.press("Escape")
    expect(switcher(alice)).to_be_hidden()
    expect(box).to_be_focused()
    expect(box).to_have_value("half a thought")

    box.press("Control+k")  # again, and Ctrl+K once more closes it
    expect(combobox(alice)).to_be_focused()
    combobox(alice).press("Control+k")
    expect(switcher(alice)).to_be_hidden()
    expect(box).to_be_focused()


def test_typing_narrows_the_rooms_word_starts_first_and_says_when_none_match(
    alice: Page,
) -> None:
    composer(alice).press("Control+k")
    # Nothing unread: the sidebar's order, the room on screen last.
    expect(option_names(alice)).to_have_text(["Harbor", "Orbit", "Orchard", "General"])
    combobox(alice).press_sequentially("OR")  # case-insensitive; Harbor only inside a word
    expect(option_names(alice)).to_have_text(["Orbit", "Orchard", "Harbor"])
    combobox(alice).press_sequentially("c")
    expect(option_names(alice)).to_have_text(["Orchard"])
    combobox(alice).press_sequentially("zzz")
    expect(options(alice)).to_have_count(0)
    expect(switcher(alice).get_by_role("status")).to_have_text(
        "No room or person matches “ORczzz”."
    )
    expect(combobox(alice)).to_have_attribute("aria-expanded", "false")
    for _ in range(3):
        combobox(alice).press("Backspace")
    expect(option_names(alice)).to_have_text(["Orchard"])


def test_arrows_and_enter_open_the_highlighted_room_in_place(
    alice: Page, live_site: LiveSite, rooms: dict[str, str]
) -> None:
    alice.evaluate("window.__samePage = true")
    composer(alice).press("Control+k")
    combobox(alice).press_sequentially("or")
    first, second = options(alice).nth(0), options(alice).nth(1)
    expect(first).to_have_attribute("aria-selected", "true")
    expect(combobox(alice)).to_have_attribute("aria-activedescendant", first.get_attribute("id"))
    combobox(alice).press("ArrowDown")
    expect(second).to_have_attribute("aria-selected", "true")
    expect(first).to_have_attribute("aria-selected", "false")
    expect(combobox(alice)).to_have_attribute("aria-activedescendant", second.get_attribute("id"))
    combobox(alice).press("ArrowDown")
    combobox(alice).press("ArrowUp")
    expect(second).to_have_text("Orchard")
    combobox(alice).press("Enter")

    expect(switcher(alice)).to_be_hidden()
    expect(alice).to_have_url(f"{live_site.base_url}/chat/{rooms['Orchard']}/")
    expect(alice.locator("#room-name")).to_have_text("Orchard")
    expect(nav_item(alice, rooms["Orchard"]).get_by_role("link")).to_have_attribute(
        "aria-current", "page"
    )
    expect(composer(alice)).to_be_focused()  # ready to type
    assert alice.evaluate("window.__samePage === true")  # switched in place, no reload
    say(alice, "by keyboard")
    expect(
        alice.get_by_role("log").locator("li[data-seq]").filter(has_text="by keyboard")
    ).to_have_count(1)

    # ArrowUp from the first option wraps to the last; the room on screen is offered last.
    composer(alice).press("Control+k")
    combobox(alice).press("ArrowUp")
    expect(options(alice).last).to_have_attribute("aria-selected", "true")
    expect(options(alice).last).to_contain_text("Orchard")
    expect(options(alice).last).to_contain_text("open now")


def test_unread_rooms_come_first_with_their_counts(
    alice: Page, browser: Browser, live_site: LiveSite, rooms: dict[str, str]
) -> None:
    harbor = rooms["Harbor"]
    join_room(browser, live_site, "bob", harbor)
    bob = sign_in_to_general(browser, live_site, "bob")
    try:
        bob.goto(f"{live_site.base_url}/chat/{harbor}/")
        expect(bob.locator("#status")).to_have_text("Connected", timeout=TIMEOUT_MS)
        say(bob, "ahoy")
        say(bob, "anyone?")
        expect(nav_item(alice, harbor).locator(".unread")).to_have_text("2", timeout=TIMEOUT_MS)
    finally:
        bob.context.close()

    composer(alice).press("Control+k")
    first = options(alice).first
    expect(first.locator(".switcher-name")).to_have_text("Harbor")
    expect(first.locator(".unread")).to_have_text("2 unread")
    expect(first).to_have_attribute("aria-selected", "true")
    expect(options(alice).filter(has_text="Orbit").locator(".unread")).to_have_count(0)
    combobox(alice).press("Enter")
    expect(alice.locator("#room-name")).to_have_text("Harbor")
    expect(alice.get_by_role("log")).to_contain_text("anyone?")


def test_the_sidebar_button_opens_it_by_click_and_gets_focus_back(
    alice: Page, live_site: LiveSite, rooms: dict[str, str]
) -> None:
    button = alice.get_by_role("button", name="Jump to… Ctrl+K")
    expect(button).to_be_visible()
    expect(button).to_have_attribute("aria-keyshortcuts", "Control+K")
    button.click()
    expect(combobox(alice)).to_be_focused()
    switcher(alice).get_by_role("button", name="Close").click()
    expect(switcher(alice)).to_be_hidden()
    expect(button).to_be_focused()

    button.focus()
    alice.keyboard.press("Enter")
    expect(combobox(alice)).to_be_focused()
    alice.keyboard.press("Escape")
    expect(button).to_be_focused()

    button.click()  # a click on an option opens it too
    options(alice).filter(has_text="Orbit").click()
    expect(alice).to_have_url(f"{live_site.base_url}/chat/{rooms['Orbit']}/")
    expect(alice.locator("#room-name")).to_have_text("Orbit")


def test_no_serious_or_critical_axe_violation_with_the_switcher_open(alice: Page) -> None:
    composer(alice).press("Control+k")
    expect(options(alice).first).to_be_visible()
    found = violations(alice)
    assert not found, describe(found)
    combobox(alice).press_sequentially("nothing like it")
    expect(options(alice)).to_have_count(0)
    found = violations(alice)
    assert not found, describe(found)


def test_on_a_phone_the_button_and_the_switcher_fit_the_screen(
    browser: Browser, live_site: LiveSite, rooms: dict[str, str]
) -> None:
    phone = sign_in(
        new_page(browser, viewport={"width": 375, "height": 812}, has_touch=True),
        live_site,
        "alice",
    )
    try:
        # On a phone the button is at the top of the drawer.
        phone.get_by_role("button", name="Rooms and people").tap()
        button = phone.get_by_role("button", name="Jump to… Ctrl+K")
        expect(button).to_be_in_viewport()
        button.tap()
        dialog = switcher(phone)
        expect(dialog).to_be_visible()
        box = dialog.bounding_box()
        assert box is not None
        assert box["x"] >= 0, box
        assert box["x"] + box["width"] <= 375, box
        assert box["y"] >= 0, box
        assert box["y"] + box["height"] <= 812, box
        for index in range(options(phone).count()):
            expect(options(phone).nth(index)).to_be_in_viewport()
        expect(switcher(phone).get_by_role("button", name="Close")).to_be_in_viewport()
        options(phone).filter(has_text="Orchard").tap()
        expect(phone.locator("#room-name")).to_have_text("Orchard")
        # The drawer closed behind it, and focus is not left in it.
        expect(phone.locator("#room-drawer")).not_to_be_in_viewport()
        assert not phone.evaluate(
            "document.getElementById('room-drawer').contains(document.activeElement)"
        )
    finally:
        phone.context.close()


def test_ctrl_k_works_in_the_lobby_too(
    alice: Page, live_site: LiveSite, rooms: dict[str, str]
) -> None:
    alice.goto(f"{live_site.base_url}/")
    alice.locator("body").press("Control+k")
    expect(combobox(alice)).to_be_focused()
    combobox(alice).press_sequentially("orch")
    expect(option_names(alice)).to_have_text(["Orchard"])
    combobox(alice).press("Enter")
    expect(alice).to_have_url(f"{live_site.base_url}/chat/{rooms['Orchard']}/")
    expect(alice.locator("#room-name")).to_have_text("Orchard")


def test_every_way_to_the_room_on_screen_keeps_the_page(alice: Page) -> None:
    """Its sidebar item and the switcher's option, as its banners (test_browser_notify):
    each reloaded the page, losing what it showed (a draft's place, banners, the title's
    count), when the room page's switch said no to the room it already shows."""
    alice.evaluate("window.sameDocument = true")
    composer(alice).fill("half a thought")
    nav_item(alice, "general").locator("a").click()
    composer(alice).press("Control+k")
    combobox(alice).press_sequentially("General")
    combobox(alice).press("Enter")
    expect(switcher(alice)).to_be_hidden()
    expect(alice.locator("#room-name")).to_have_text("General")
    assert alice.evaluate("window.sameDocument") is True
    expect(composer(alice)).to_have_value("half a thought")


@pytest.mark.parametrize("width", [375, 1280])
def test_the_lobbys_jump_button_and_its_find_field_each_read_as_themselves(
    alice: Page, live_site: LiveSite, width: int
) -> None:
    """Seen running it as users (2026-12-02): in the lobby, "Jump to…" sat on the line of
    the search field's label, "Find a room", which read as that button's label. And the
    create form's "Private" box sat in the middle of the card, far from its label."""
    alice.set_viewport_size({"width": width, "height": 800})
    alice.goto(f"{live_site.base_url}/")
    jump = alice.get_by_role("button", name="Jump to…").bounding_box()
    find = alice.locator("label[for=room-search]").bounding_box()
    assert find["y"] >= jump["y"] + jump["height"], (jump, find)
    private = alice.get_by_label("Private").bounding_box()
    label = alice.locator("label", has_text="Private").bounding_box()
    assert abs(private["x"] - label["x"]) < 8, (private, label)  # (its own margin: 4 px)
