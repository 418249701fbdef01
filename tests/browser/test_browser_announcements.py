"""Issue 15's screen-reader pass, in Chromium's accessibility tree (no screen reader runs
here; docs/accessibility.md says what to check by hand): what the page announces when a
message arrives, when someone types, when the connection drops and comes back, and when a
message cannot be sent."""

import json
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, Route, WebSocketRoute, expect

from tests.support.axtree import spoken
from tests.support.browser import TIMEOUT_MS, new_page, say, sign_in, sign_in_to_general
from tests.support.live_server import LiveSite

pytestmark = [pytest.mark.browser, pytest.mark.own_database]

# Give up on an unacknowledged message after 3 quick tries (room.js reads these).
FAST_OUTBOX = {"ackTimeoutMs": 500, "maxTries": 3}
RECONNECT_TIMEOUT_MS = 20_000


class Relay:
    """Alice's sockets go through the test: it can cut the one open, or lose `send` frames."""

    def __init__(self) -> None:
        self.sockets: list[WebSocketRoute] = []
        self.lose_sends = False
        self.down = False  # the network is out: every new socket fails at once

    def __call__(self, page_side: WebSocketRoute) -> None:
        if self.down:
            page_side.close(code=1006, reason="")
            return
        server_side = page_side.connect_to_server()
        self.sockets.append(page_side)

        def from_page(frame: str | bytes) -> None:
            lost = isinstance(frame, str) and json.loads(frame)["type"] == "send"
            if not (self.lose_sends and lost):
                server_side.send(frame)

        page_side.on_message(from_page)

    def http(self, route: Route) -> None:
        """The HTTP fallback's requests: they fail too while the network is out (after two
        failed sockets the page tries the fallback)."""
        if self.down:
            route.abort("connectionfailed")
        else:
            route.continue_()

    def cut(self) -> None:
        """Close the socket open now, as a dropped connection does, and fail every new one
        until `restore()`: the page stays in the state under test for as long as the test
        reads it (a quick reconnect once beat the read on a loaded machine)."""
        self.down = True
        self.sockets[-1].close(code=1006, reason="")

    def restore(self) -> None:
        self.down = False


@pytest.fixture
def relay() -> Relay:
    return Relay()


@pytest.fixture
def alice(browser: Browser, live_site: LiveSite, relay: Relay) -> Iterator[Page]:
    page = new_page(browser)
    page.add_init_script(f"window.CHATSYNC_OPTIONS = {json.dumps(FAST_OUTBOX)};")
    page.route_web_socket(live_site.ws_url, relay)
    page.route(f"{live_site.base_url}/fallback/**", relay.http)
    yield sign_in(page, live_site, "alice")
    page.context.close()


@pytest.fixture
def bob(browser: Browser, live_site: LiveSite) -> Iterator[Page]:
    page = sign_in_to_general(browser, live_site, "bob")
    yield page
    page.context.close()


def test_a_message_from_someone_else_is_read_author_time_body_in_the_log(
    alice: Page, bob: Page
) -> None:
    body = "the kettle is on"
    say(bob, body)
    line = alice.get_by_role("log", name="Messages").locator("li[data-seq]").filter(has_text=body)
    expect(line).to_have_count(1, timeout=TIMEOUT_MS)
    expect(line.locator(".add-reaction")).to_have_count(1)
    time = line.locator("time").inner_text()
    heard = spoken(line)
    assert heard.live == "polite", heard
    assert heard.words == ["bob", time, body], heard.words
    # Read with focus in the line, its actions shown: still after what was said.
    line.locator(".author").focus()
    actions = ["Add reaction", "Reply with a quote", "Reply in a thread"]
    assert spoken(line).words == ["bob", time, body, *actions]


def test_someone_typing_is_said_in_the_polite_typing_region(alice: Page, bob: Page) -> None:
    bob.get_by_label("Message", exact=True).press_sequentially("hel")
    typing = alice.locator("#typing")
    expect(typing).to_contain_text("bob", timeout=TIMEOUT_MS)
    heard = spoken(typing)
    assert heard.live == "polite", heard
    assert "bob" in heard.text, heard
    assert "typing" in heard.text, heard
    assert not alice.get_by_role("log", name="Messages").locator("#typing").count()


def test_a_dropped_connection_and_its_return_are_said_in_the_status(
    alice: Page, relay: Relay
) -> None:
    status = alice.get_by_role("status").filter(has_text="Connected")
    expect(status).to_have_count(1)
    relay.cut()
    dropped = alice.locator("#status")
    expect(dropped).to_have_text("Reconnecting…", timeout=TIMEOUT_MS)
    heard = spoken(dropped)
    assert heard.live == "polite", heard
    assert heard.words == ["Reconnecting…"], heard
    relay.restore()
    expect(dropped).to_have_text("Connected", timeout=RECONNECT_TIMEOUT_MS)
    assert spoken(dropped).words == ["Connected"]


def test_a_message_that_cannot_be_sent_is_announced_with_what_it_said(
    alice: Page, relay: Relay
) -> None:
    relay.lose_sends = True
    body = "this one will not get through"
    say(alice, body)
    notice = alice.locator("#notices .notice.error").filter(has_text="Not sent")
    expect(notice).to_have_count(1, timeout=TIMEOUT_MS)
    heard = spoken(notice)
    assert heard.live == "polite", heard
    assert heard.text == f"Not sent: “{body}”. Retry is on the message.", heard
    line = alice.get_by_role("log").locator("li.outbox.failed").filter(has_text=body)
    expect(line.get_by_role("button", name="Retry sending")).to_have_count(1)
