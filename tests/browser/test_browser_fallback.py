"""Chat works where WebSockets are blocked: the HTTP fallback (an event stream or long polls
down, POSTs up) in real Chromium, and the move back onto a WebSocket once one gets through.

Playwright closes every WebSocket of a "blocked" page before it opens, as a proxy that refuses
the upgrade would; the page must fall back to /fallback/chat/ by itself. Where the proxy also
holds the event stream (it buffers a response until the response ends, which a stream never
does), the page must then long-poll /fallback/chat/poll/ by itself.
"""

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import (
    Browser,
    Locator,
    Page,
    Request,
    Route,
    WebSocketRoute,
    expect,
)

from tests.support.browser import (
    CONNECTED,
    CONNECTED_HTTP,
    TIMEOUT_MS,
    expect_message_once,
    new_page,
    outbox_line,
    say,
    sign_in,
    sign_in_to_general,
)
from tests.support.live_server import LiveSite

pytestmark = [pytest.mark.browser, pytest.mark.own_database]

SOCKETS = "**/ws/chat/"
SEND = "**/fallback/chat/send/"
# Playwright anchors a glob at both ends: this is the stream, not …/poll/ nor …/send/.
STREAM = "**/fallback/chat/"
STREAM_PATH = "/fallback/chat/"
POLL_PATH = "/fallback/chat/poll/"
SEND_PATH = "/fallback/chat/send/"
# Behind a proxy that holds the stream a page polls once the stream's session timeout (10 s,
# fallback.js) has passed, after two refused WebSocket handshakes and some backoff.
POLL_TIMEOUT_MS = 20_000
# The pill while a page finds its way down: after its first failed handshake, until connected.
RECONNECTING = "Reconnecting…"
# Who leaves, where a test checks that the room sees them go: no other test here signs in
# as carol. A page Playwright closes with its context runs no `pagehide`, so a page on polls
# leaves its connection, its user online, for the idle timeout (60 s), as do the connections
# a page drops after a failed POST (the server never hears of those).
LEAVER = "carol"
# A page on the fallback tries a WebSocket every 30 s (± 25 %): the upgrade comes within this.
UPGRADE_TIMEOUT_S = 45
# Past the longest probe interval (transport.js PROBE_EVERY_MS, 30 s ± 25 %): a page whose
# clock was installed skips the wait for its next WebSocket probe by running its timers
# this far ahead (its event stream has no timer of its own to run out meanwhile).
PAST_A_PROBE_MS = 38_000
# After failed POSTs the page reconnects with backoff (up to 15 s between attempts).
RECONNECT_TIMEOUT_MS = 20_000


@pytest.fixture
def pages(tmp_path: Path) -> Iterator[dict[str, Page]]:
    """The pages a test opens, by name: each is photographed into tmp_path and closed after."""
    opened: dict[str, Page] = {}
    yield opened
    for name, page in opened.items():
        page.screenshot(path=tmp_path / f"{name}.png")
        page.context.close()


def refuse(page_side: WebSocketRoute) -> None:
    """A proxy that blocks WebSockets: the socket closes before it opens."""
    page_side.close()


class SocketGate:
    """A proxy that refuses WebSockets until `allow` is set, then lets them through to the
    real server; `sent` records the frames the page sends over them."""

    def __init__(self) -> None:
        self.allow = False
        self.sent: list[dict[str, Any]] = []

    def __call__(self, page_side: WebSocketRoute) -> None:
        if not self.allow:
            refuse(page_side)
            return
        server_side = page_side.connect_to_server()

        def from_page(frame: str | bytes) -> None:
            if isinstance(frame, str):
                self.sent.append(json.loads(frame))
            server_side.send(frame)

        page_side.on_message(from_page)


class PostGate:
    """A proxy that fails the page's POSTs while `blocking` (the way down stays open), and
    lets them through otherwise."""

    def __init__(self) -> None:
        self.blocking = False

    def __call__(self, route: Route) -> None:
        if self.blocking:
            route.abort()
        else:
            route.continue_()


def blocked_page(browser: Browser) -> Page:
    """A fresh browser profile whose WebSockets never open."""
    page = new_page(browser)
    page.route_web_socket(SOCKETS, refuse)
    return page


def proxy_the_stream(page: Page, *, hold: bool = True) -> list[str]:
    """A proxy in the way of the event stream, so that no event reaches the page; the URLs it
    caught, from now on. With `hold` it buffers the response until the response ends, which a
    stream never does, and the page waits out the stream's session timeout (10 s); without,
    it fails the request at once, as a proxy that refuses streams does, and the page polls
    after the error."""
    caught: list[str] = []

    def intercept(route: Route) -> None:
        caught.append(route.request.url)
        if not hold:
            route.abort()
        # Held: never answered, the request stays pending.

    page.route(STREAM, intercept)
    return caught


def requests_to(page: Page, path: str) -> list[Request]:
    """The requests the page makes to `path`, from now on, in order."""
    made: list[Request] = []

    def record(request: Request) -> None:
        if urlsplit(request.url).path == path:
            made.append(request)

    page.on("request", record)
    return made


def assert_polled_past_the_stream(caught: list[str], polls: list[Request]) -> None:
    """The page asked for the event stream, which the proxy caught (that and nothing else),
    and then long-polled."""
    assert caught, "the page never asked for the event stream"
    assert {urlsplit(url).path for url in caught} == {STREAM_PATH}, caught
    assert polls, "the page never polled"


def online(page: Page, username: str) -> Locator:
    """`username`'s line in the page's list of who is online: none while they are not."""
    return page.locator("#online li").filter(has_text=re.compile(f"^{re.escape(username)}$"))


def posted_frames(page: Page) -> list[dict[str, Any]]:
    """Every frame the page POSTs to the fallback, recorded from now on, in order."""
    frames: list[dict[str, Any]] = []

    def record(request: Request) -> None:
        if request.method == "POST" and request.url.endswith("/fallback/chat/send/"):
            frames.extend(json.loads(request.post_data or "[]"))

    page.on("request", record)
    return frames


def saved_outbox(page: Page) -> list[dict[str, Any]]:
    """The outbox room.js keeps in sessionStorage (key `chatsite.outbox.<user>`)."""
    entries = page.evaluate("() => Object.entries(sessionStorage)")
    outboxes = [json.loads(value) for key, value in entries if key.startswith("chatsite.outbox")]
    assert len(outboxes) == 1, entries
    return outboxes[0]


def expect_status(page: Page, text: str, transport: str, timeout: int = TIMEOUT_MS) -> None:
    status = page.locator("#status")
    expect(status).to_have_text(text, timeout=timeout)
    expect(status).to_have_attribute("data-transport", transport, timeout=timeout)


def post_until_upgraded(page: Page, poster: Page, bodies: list[str], label: str) -> None:
    """With WebSockets let through, `poster` says a new line (`label (n)`, appended to
    `bodies`) every 2 s until `page`, on the fallback, has moved onto a socket, within a probe
    interval."""
    deadline = time.monotonic() + UPGRADE_TIMEOUT_S
    while page.locator("#status").text_content() != CONNECTED:
        assert time.monotonic() < deadline, "the page stayed on HTTP with WebSockets allowed"
        # "(2)" is in no other line, as "2" is in "…20": the log is matched by substring.
        bodies.append(f"{label} ({len(bodies)})")
        say(poster, bodies[-1])
        page.wait_for_timeout(2000)
    expect_status(page, CONNECTED, "websocket")


def shown_ids(page: Page) -> list[str]:
    """The ids of the stored messages the log shows, in order."""
    return page.eval_on_selector_all("#messages li[data-id]", "lis => lis.map(li => li.dataset.id)")


def test_two_people_chat_over_the_http_fallback(
    browser: Browser,
    live_site: LiveSite,
    pages: dict[str, Page],
) -> None:
    """With WebSockets blocked, alice and bob (and a guest) connect over HTTP by themselves,
    see each other online and typing, and each other's messages once; the pill says so."""
    alice = pages["alice"] = blocked_page(browser)
    alice_posts = posted_frames(alice)
    sign_in(alice, live_site, "alice", status=CONNECTED_HTTP)
    bob = pages["bob"] = blocked_page(browser)
    sign_in(bob, live_site, "bob", status=CONNECTED_HTTP)
    guest = pages["guest"] = blocked_page(browser)
    guest.goto(f"{live_site.base_url}/chat/general/")
    expect_status(guest, CONNECTED_HTTP, "http")

    for page in (alice, bob):
        expect_status(page, CONNECTED_HTTP, "http")
        expect(page.locator("#online li")).to_have_text(
            ["alice", "bob", "1 guest"], timeout=TIMEOUT_MS
        )

    say(alice, "Hi Bob, over plain HTTP!")
    for page in (bob, alice):
        expect_message_once(page, "alice", "Hi Bob, over plain HTTP!")
    expect(guest.get_by_role("log").locator("li[data-seq]")).to_contain_text(
        ["Hi Bob, over plain HTTP!"], timeout=TIMEOUT_MS
    )
    sends = [frame for frame in alice_posts if frame["type"] == "send"]
    assert [frame["body"] for frame in sends] == ["Hi Bob, over plain HTTP!"]

    bob.get_by_label("Message", exact=True).press_sequentially("Hello Alice", delay=20)
    expect(alice.locator("#typing")).to_have_text("bob is typing…", timeout=TIMEOUT_MS)
    bob.get_by_label("Message", exact=True).press("Enter")
    for page in (alice, bob):
        expect_message_once(page, "bob", "Hello Alice")
    expect(alice.locator("#typing")).to_have_text("", timeout=TIMEOUT_MS)


def test_a_message_typed_while_posts_fail_survives_a_reload_and_is_delivered_once(
    browser: Browser,
    live_site: LiveSite,
    pages: dict[str, Page],
) -> None:
    """On the fallback, POSTs fail (the stream still opens): the message stays pending, is
    kept in sessionStorage across a reload, and the reloaded page delivers it once."""
    body = "typed while the POSTs failed"
    posts = PostGate()
    alice = pages["alice"] = blocked_page(browser)
    alice.route(SEND, posts)
    sign_in(alice, live_site, "alice", status=CONNECTED_HTTP)

    posts.blocking = True
    say(alice, body)
    expect(outbox_line(alice, body)).to_contain_class("pending", timeout=TIMEOUT_MS)
    assert [(item["body"], item["state"]) for item in saved_outbox(alice)] == [(body, "pending")]

    alice.reload()
    expect(outbox_line(alice, body)).to_contain_class("pending", timeout=TIMEOUT_MS)
    posts.blocking = False
    expect_status(alice, CONNECTED_HTTP, "http", timeout=RECONNECT_TIMEOUT_MS)
    expect_message_once(alice, "alice", body)
    assert saved_outbox(alice) == []

    bob = pages["bob"] = sign_in_to_general(browser, live_site, "bob")
    expect_message_once(bob, "alice", body)


def test_a_message_pending_on_long_polls_survives_a_reload_and_is_delivered_once(
    browser: Browser,
    live_site: LiveSite,
    pages: dict[str, Page],
) -> None:
    """On long polls behind a proxy that refuses the stream, POSTs fail (the polls still get
    through): the message stays pending, is kept in sessionStorage across a reload, and the
    reloaded page, polling again once its stream failed, delivers it once."""
    # Refused, not held: each page load would wait out the stream's 10 s session timeout,
    # and this test loads the page twice; the held stream is the first test's.
    body = "pending on polls across a reload"
    posts = PostGate()
    alice = pages["alice"] = blocked_page(browser)
    caught, polls = proxy_the_stream(alice, hold=False), requests_to(alice, POLL_PATH)
    alice.route(SEND, posts)
    sign_in(alice, live_site, "alice", status=CONNECTED_HTTP)
    assert_polled_past_the_stream(caught, polls)

    posts.blocking = True
    say(alice, body)
    expect(outbox_line(alice, body)).to_contain_class("pending", timeout=TIMEOUT_MS)
    assert [(item["body"], item["state"]) for item in saved_outbox(alice)] == [(body, "pending")]

    caught_before, polls_before = len(caught), len(polls)
    alice.reload()
    expect(outbox_line(alice, body)).to_contain_class("pending", timeout=TIMEOUT_MS)
    posts.blocking = False
    expect_status(alice, CONNECTED_HTTP, "http", timeout=RECONNECT_TIMEOUT_MS)
    expect_message_once(alice, "alice", body)
    assert saved_outbox(alice) == []
    assert_polled_past_the_stream(caught[caught_before:], polls[polls_before:])

    bob = pages["bob"] = sign_in_to_general(browser, live_site, "bob")
    expect_message_once(bob, "alice", body)


def test_a_page_on_the_fallback_moves_to_a_websocket_once_one_opens(
    browser: Browser,
    live_site: LiveSite,
    pages: dict[str, Page],
) -> None:
    """WebSockets are blocked, then let through: within a probe interval the page moves onto
    a socket by itself (the pill says Connected again) while bob keeps posting, and every
    message is shown once."""
    gate = SocketGate()
    alice = pages["alice"] = new_page(browser)
    alice.clock.install()  # time runs as usual until the test moves it on
    alice.route_web_socket(SOCKETS, gate)
    sign_in(alice, live_site, "alice", status=CONNECTED_HTTP)
    bob = pages["bob"] = sign_in_to_general(browser, live_site, "bob")
    bodies = ["before the upgrade", "alice over HTTP"]
    say(bob, bodies[0])
    say(alice, bodies[1])
    for page in (alice, bob):
        expect_message_once(page, "bob", bodies[0])
        expect_message_once(page, "alice", bodies[1])

    gate.allow = True
    alice.clock.run_for(PAST_A_PROBE_MS)  # the next probe is due: no 30 s wait
    post_until_upgraded(alice, bob, bodies, "during the upgrade")

    say(bob, "after the upgrade")
    say(alice, "alice over the socket")
    for page in (alice, bob):
        for body in [*bodies[2:], "after the upgrade"]:
            expect_message_once(page, "bob", body)
        expect_message_once(page, "alice", "alice over the socket")
        ids = shown_ids(page)
        assert len(ids) == len(set(ids)), ids
    assert any(
        frame["type"] == "send" and frame["body"] == "alice over the socket" for frame in gate.sent
    )


def test_two_people_chat_over_long_polls_where_a_proxy_holds_the_stream(
    browser: Browser,
    live_site: LiveSite,
    pages: dict[str, Page],
) -> None:
    """With WebSockets blocked and the event stream held by a buffering proxy, alice and bob
    long-poll by themselves once the stream gets no session, see each other online and
    typing, and each other's messages once; the pill says HTTP."""
    watched: dict[str, tuple[list[str], list[Request]]] = {}
    for name in ("alice", "bob"):
        page = pages[name] = blocked_page(browser)
        watched[name] = (proxy_the_stream(page), requests_to(page, POLL_PATH))
        # Both sign in before either has waited out its held stream, so the waits overlap.
        sign_in(page, live_site, name, status=RECONNECTING)
    alice, bob = pages["alice"], pages["bob"]
    alice_posts = posted_frames(alice)

    # Both on polls first: bob's held stream may end well after alice's, and only then is he
    # online for her (a busy CI run once took longer than TIMEOUT_MS for that).
    for page in (alice, bob):
        expect_status(page, CONNECTED_HTTP, "http", timeout=POLL_TIMEOUT_MS)
    for page in (alice, bob):
        expect(page.locator("#online li")).to_have_text(["alice", "bob"], timeout=TIMEOUT_MS)
    for caught, polls in watched.values():
        assert_polled_past_the_stream(caught, polls)

    alice.get_by_label("Message", exact=True).press_sequentially("Hi Bob, by polls", delay=20)
    expect(bob.locator("#typing")).to_have_text("alice is typing…", timeout=TIMEOUT_MS)
    alice.get_by_label("Message", exact=True).press("Enter")
    for page in (bob, alice):
        expect_message_once(page, "alice", "Hi Bob, by polls")
    expect(bob.locator("#typing")).to_have_text("", timeout=TIMEOUT_MS)
    sends = [frame for frame in alice_posts if frame["type"] == "send"]
    assert [frame["body"] for frame in sends] == ["Hi Bob, by polls"]

    bob.get_by_label("Message", exact=True).press_sequentially("Polled back, Alice", delay=20)
    expect(alice.locator("#typing")).to_have_text("bob is typing…", timeout=TIMEOUT_MS)
    bob.get_by_label("Message", exact=True).press("Enter")
    for page in (alice, bob):
        expect_message_once(page, "bob", "Polled back, Alice")
    expect(alice.locator("#typing")).to_have_text("", timeout=TIMEOUT_MS)
    for page in (alice, bob):
        expect_status(page, CONNECTED_HTTP, "http")


def test_leaving_a_page_on_long_polls_ends_its_connection_at_once(
    browser: Browser,
    live_site: LiveSite,
    pages: dict[str, Page],
) -> None:
    """A page on long polls says so as it goes away (X-Chat-Close): when carol leaves the
    room, bob sees her offline at once, as after a socket or a stream, not once her poll
    connection's idle timeout (60 s) has passed."""
    bob = pages["bob"] = sign_in_to_general(browser, live_site, "bob")
    carol = pages[LEAVER] = blocked_page(browser)
    caught, polls = proxy_the_stream(carol, hold=False), requests_to(carol, POLL_PATH)
    sign_in(carol, live_site, LEAVER, status=CONNECTED_HTTP)
    assert_polled_past_the_stream(caught, polls)
    expect(online(bob, LEAVER)).to_have_count(1, timeout=TIMEOUT_MS)

    carol.goto(f"{live_site.base_url}/")  # the lobby: its connection is not counted online

    expect(online(bob, LEAVER)).to_have_count(0, timeout=TIMEOUT_MS)


def test_a_page_on_long_polls_moves_to_a_websocket_and_ends_its_poll_connection_at_once(
    browser: Browser,
    live_site: LiveSite,
    pages: dict[str, Page],
) -> None:
    """WebSockets are blocked and a proxy refuses the stream, so carol long-polls; then
    sockets are let through: within a probe interval her page moves onto one by itself while
    bob keeps posting, every message is shown once, the page stops polling and POSTs
    X-Chat-Close, and the server ends the poll connection at once: when carol leaves the
    room, bob sees her go offline long before the connection's idle timeout (60 s)."""
    # Refused, not held: the wait for a probe already makes this the slowest test here. Its
    # clock is not moved on as alice's is: 38 s at once would also run out the page's timer
    # on its held poll, which the server would have answered long before in real time.
    gate = SocketGate()
    carol = pages[LEAVER] = new_page(browser)
    carol.route_web_socket(SOCKETS, gate)
    caught, polls = proxy_the_stream(carol, hold=False), requests_to(carol, POLL_PATH)
    carol_posts = requests_to(carol, SEND_PATH)
    sign_in(carol, live_site, LEAVER, status=CONNECTED_HTTP)
    assert_polled_past_the_stream(caught, polls)
    bob = pages["bob"] = sign_in_to_general(browser, live_site, "bob")
    bodies = ["bob, while carol polls", "carol, by polls"]
    say(bob, bodies[0])
    say(carol, bodies[1])
    for page in (carol, bob):
        expect_message_once(page, "bob", bodies[0])
        expect_message_once(page, LEAVER, bodies[1])

    gate.allow = True
    post_until_upgraded(carol, bob, bodies, "bob, as sockets come back")
    polled = len(polls)
    closing = [r for r in carol_posts if r.headers.get("x-chat-close") == "1"]
    assert len(closing) == 1, [r.headers for r in carol_posts]
    answer = closing[0].response()
    assert answer is not None
    assert answer.status == 202, answer.status

    say(bob, "bob, carol on a socket")
    say(carol, "carol, on a socket after polls")
    for page in (carol, bob):
        for body in [*bodies[2:], "bob, carol on a socket"]:
            expect_message_once(page, "bob", body)
        expect_message_once(page, LEAVER, "carol, on a socket after polls")
        ids = shown_ids(page)
        assert len(ids) == len(set(ids)), ids
    assert any(
        frame["type"] == "send" and frame["body"] == "carol, on a socket after polls"
        for frame in gate.sent
    )
    assert len(polls) == polled, "the page polled on after the upgrade"

    expect(online(bob, LEAVER)).to_have_count(1)
    carol.goto(f"{live_site.base_url}/")  # the lobby: its socket is not counted online
    expect(online(bob, LEAVER)).to_have_count(0, timeout=TIMEOUT_MS)


def test_a_login_in_another_tab_does_not_lock_the_fallback_out(
    browser: Browser,
    live_site: LiveSite,
    pages: dict[str, Page],
) -> None:
    """Logging in again in a second tab rotates the CSRF token (and the session); the page
    on the fallback POSTs with the current token, read from the cookie, not the stale copy
    in its own page, so its next message still goes out, once."""
    alice = pages["alice"] = blocked_page(browser)
    sign_in(alice, live_site, "alice", status=CONNECTED_HTTP)
    before = {c["name"]: c["value"] for c in alice.context.cookies()}["csrftoken"]
    other = alice.context.new_page()  # the same profile: its cookies are alice's page's
    other.goto(f"{live_site.base_url}/accounts/login/?next=/")
    other.get_by_label("Username").fill("alice")
    other.get_by_label("Password").fill(live_site.passwords["alice"])
    other.get_by_role("button", name="Log in").click()
    expect(other).to_have_url(f"{live_site.base_url}/", timeout=TIMEOUT_MS)
    after = {c["name"]: c["value"] for c in alice.context.cookies()}["csrftoken"]
    assert after != before  # the login rotated the token the page was given
    other.close()

    say(alice, "Still here after logging in elsewhere")

    expect_message_once(alice, "alice", "Still here after logging in elsewhere")
