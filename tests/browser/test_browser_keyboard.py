"""The room page by keyboard alone (issue 15): the skip link to the message box, ↑ to edit
one's last message (Enter saves, Escape cancels and returns to the composer), drafts kept
per room across room switches and reloads, the counter near the length limit and the
notice when a paste does not fit."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.browser import (
    TIMEOUT_MS,
    create_room,
    nav_item,
    new_page,
    sign_in,
    sign_in_to_general,
)
from tests.support.live_server import LiveSite

pytestmark = [pytest.mark.browser, pytest.mark.own_database]


@pytest.fixture
def alice(browser: Browser, live_site: LiveSite) -> Iterator[Page]:
    page = sign_in_to_general(browser, live_site, "alice")
    yield page
    page.context.close()


def composer(page: Page):
    return page.get_by_label("Message", exact=True)


def mine(page: Page, text: str):
    return page.get_by_role("log").locator("li[data-seq]").filter(has_text=text)


def test_the_skip_link_is_the_first_tab_stop_and_moves_focus_to_the_message_box(
    alice: Page, browser: Browser, live_site: LiveSite
) -> None:
    alice.locator("body").focus()
    alice.keyboard.press("Tab")
    skip = alice.get_by_role("link", name="Skip to the message box")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()  # shown while focused
    alice.keyboard.press("Enter")
    expect(composer(alice)).to_be_focused()

    visitor = new_page(browser)  # anonymous: no composer, the message list instead
    try:
        visitor.goto(f"{live_site.base_url}/chat/general/")
        visitor.keyboard.press("Tab")
        expect(visitor.get_by_role("link", name="Skip to the message box")).to_be_focused()
        visitor.keyboard.press("Enter")
        expect(visitor.locator("#messages")).to_be_focused()
    finally:
        visitor.context.close()


def test_arrow_up_edits_the_last_own_message_enter_saves_escape_cancels(alice: Page) -> None:
    box = composer(alice)
    box.press_sequentially("frist post")
    box.press("Enter")
    posted = mine(alice, "frist post")
    expect(posted).to_have_count(1)
    line = alice.locator(f"#messages li[data-id='{posted.get_attribute('data-id')}']")
    expect(box).to_have_value("")

    box.press("ArrowUp")
    edit = line.get_by_label("Edit message")
    expect(edit).to_be_focused()
    edit.press("Escape")  # cancel: nothing changes, focus back in the composer
    expect(edit).to_have_count(0)
    expect(box).to_be_focused()
    expect(line.locator(".body")).to_have_text("frist post")

    box.press("ArrowUp")
    expect(edit).to_be_focused()
    for key in ("Control+a", "Delete"):
        edit.press(key)
    edit.press_sequentially("first")
    edit.press("Shift+Enter")  # a new line, not a save
    edit.press_sequentially("post")
    expect(edit).to_have_value("first\npost")
    edit.press("Enter")
    expect(edit).to_have_count(0)
    expect(box).to_be_focused()
    expect(line.locator(".edited")).to_have_text("(edited)", timeout=TIMEOUT_MS)
    expect(line.locator(".body")).to_contain_text("first")
    expect(line.locator(".body")).to_contain_text("post")

    # ↑ in a box with text moves the caret as usual: no edit starts.
    box.press_sequentially("draft")
    box.press("ArrowUp")
    expect(line.get_by_label("Edit message")).to_have_count(0)
    expect(box).to_be_focused()


def test_a_draft_stays_in_its_room_across_switches_and_reloads(
    browser: Browser, live_site: LiveSite
) -> None:
    random_slug = create_room(browser, live_site, "Drafts")
    alice = sign_in(new_page(browser), live_site, "alice")
    try:
        box = composer(alice)
        box.press_sequentially("half a thought")
        nav_item(alice, random_slug).get_by_role("link").press("Enter")
        expect(alice.locator("#room-name")).to_have_text("Drafts")
        expect(box).to_have_value("")  # the draft did not follow into the other room
        box.press("Enter")  # and Enter posts nothing here
        expect(mine(alice, "half a thought")).to_have_count(0)

        nav_item(alice, "general").get_by_role("link").press("Enter")
        expect(alice.locator("#room-name")).to_have_text("General")
        expect(box).to_have_value("half a thought")

        alice.reload()
        expect(alice.locator("#status")).to_have_text("Connected", timeout=TIMEOUT_MS)
        expect(composer(alice)).to_have_value("half a thought")

        composer(alice).press(" ")
        composer(alice).press("Enter")  # sent: the draft is gone
        expect(mine(alice, "half a thought")).to_have_count(1, timeout=TIMEOUT_MS)
        alice.reload()
        expect(alice.locator("#status")).to_have_text("Connected", timeout=TIMEOUT_MS)
        expect(composer(alice)).to_have_value("")
    finally:
        alice.context.close()


def test_the_counter_shows_near_the_limit_and_a_paste_over_it_says_so(alice: Page) -> None:
    box = composer(alice)
    count = alice.locator("#composer-count")
    box.fill("x" * 3600)  # 90 % of 4,000: no counter yet
    expect(count).to_be_hidden()
    box.press("y")
    expect(count).to_be_visible()
    expect(count).to_have_text("3,601 / 4,000")
    box.press("Backspace")
    expect(count).to_be_hidden()

    # A paste of 500 into 3,600 loses 100 to the box's maxlength: the notice says so.
    alice.evaluate(
        """() => {
            const box = document.getElementById("composer-input");
            const data = new DataTransfer();
            data.setData("text/plain", "z".repeat(500));
            const init = { clipboardData: data, bubbles: true, cancelable: true };
            box.dispatchEvent(new ClipboardEvent("paste", init));
        }"""
    )
    notice = alice.locator("#composer-notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("4,000")
    expect(notice).to_contain_text("the last 100 characters")
    box.press("Backspace")  # the user edits on: the notice goes
    expect(notice).to_be_hidden()
