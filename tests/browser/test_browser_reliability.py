"""Delivery survives what goes wrong in real life: a crashed server, a reload, lost frames.

Each test gets its own site (`restartable_site`) and drives real Chromium against it. A
message must end up stored once and shown once, whatever happened on the way.
"""

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Route, WebSocketRoute, expect

from tests.support.browser import (
    TIMEOUT_MS,
    expect_message_once,
    new_page,
    outbox_line,
    say,
    sign_in,
    sign_in_to_general,
)
from tests.support.live_server import RestartableSite

pytestmark = [pytest.mark.browser, pytest.mark.own_database]

# A reconnect waits up to 15 s (full jitter, doubling from 0.5 s), so after a restart the
# page may take that long to come back.
RECONNECT_TIMEOUT_MS = 20_000
# Resend every second or so and give up after 3 tries, not 50 s (room.js reads
# window.CHATSYNC_OPTIONS). A slow ack only costs a harmless resend with the same client_id.
FAST_OUTBOX = {"ackTimeoutMs": 500, "maxTries": 3}


@pytest.fixture
def pages(tmp_path: Path) -> Iterator[dict[str, Page]]:
    """The pages a test opens, by name: each is photographed into tmp_path and closed after."""
    opened: dict[str, Page] = {}
    yield opened
    for name, page in opened.items():
        page.screenshot(path=tmp_path / f"{name}.png")
        page.context.close()


def stored_count(site: RestartableSite, body: str) -> int:
    """Rows holding `body`, read straight from the site's SQLite file."""
    with closing(sqlite3.connect(site.database, timeout=10)) as db:
        (count,) = db.execute("SELECT COUNT(*) FROM chat_message WHERE body = ?", [body]).fetchone()
    return count


def expect_status(page: Page, text: str, timeout: int = TIMEOUT_MS) -> None:
    expect(page.locator("#status")).to_have_text(text, timeout=timeout)


def saved_outbox(page: Page) -> list[dict[str, Any]]:
    """The outbox room.js keeps in sessionStorage (key `chatsite.outbox.<user>`)."""
    entries = page.evaluate("() => Object.entries(sessionStorage)")
    outboxes = [json.loads(value) for key, value in entries if key.startswith("chatsite.outbox")]
    assert len(outboxes) == 1, entries
    return outboxes[0]


def test_message_pending_when_the_server_is_killed_is_delivered_once_after_restart(
    browser: Browser,
    restartable_site: RestartableSite,
    pages: dict[str, Page],
) -> None:
    """A send the server never read (paused, then SIGKILLed) is resent on reconnect: one row,
    one line for alice, one line for bob who arrives after the restart."""
    site, body = restartable_site, "sent while the server froze"
    alice = pages["alice"] = sign_in_to_general(browser, site, "alice")

    site.server.pause()
    say(alice, body)
    expect(outbox_line(alice, body)).to_contain_class("pending", timeout=TIMEOUT_MS)
    site.server.kill()
    expect_status(alice, "Reconnecting…")
    assert stored_count(site, body) == 0, "the paused server must not have read the send"

    site.server.start()
    expect_status(alice, "Connected", timeout=RECONNECT_TIMEOUT_MS)
    expect_message_once(alice, "alice", body)
    assert stored_count(site, body) == 1

    bob = pages["bob"] = sign_in_to_general(browser, site, "bob")
    expect_message_once(bob, "alice", body)
    assert stored_count(site, body) == 1


def test_a_pending_message_survives_a_page_reload(
    browser: Browser,
    restartable_site: RestartableSite,
    pages: dict[str, Page],
) -> None:
    """Typed while the server is down, kept in sessionStorage across a reload, then sent once
    by the reloaded page."""
    site, body = restartable_site, "typed while the server was down"
    refusing = False

    def gate(page_side: WebSocketRoute) -> None:
        """The real server, but while `refusing` each socket is closed at once: the old page
        must not reconnect (and deliver) in the moment between the restart and the reload."""
        if refusing:
            page_side.close()
        else:
            page_side.connect_to_server()

    def gate_fallback(route: Route) -> None:
        """Nor over the HTTP fallback, which failed sockets make the page try."""
        if refusing:
            route.abort()
        else:
            route.continue_()

    alice = pages["alice"] = new_page(browser)
    alice.route_web_socket(site.ws_url, gate)
    alice.route("**/fallback/chat/**", gate_fallback)
    sign_in(alice, site, "alice")

    refusing = True
    site.server.kill()
    expect_status(alice, "Reconnecting…")
    say(alice, body)
    expect(outbox_line(alice, body)).to_contain_class("pending", timeout=TIMEOUT_MS)
    assert [(item["body"], item["state"]) for item in saved_outbox(alice)] == [(body, "pending")]

    site.server.start()
    assert stored_count(site, body) == 0
    refusing = False
    alice.reload()
    expect_status(alice, "Connected")
    expect_message_once(alice, "alice", body)
    assert saved_outbox(alice) == []
    assert stored_count(site, body) == 1


def test_a_message_never_acked_is_marked_not_sent_and_retry_delivers_it_once(
    browser: Browser,
    restartable_site: RestartableSite,
    pages: dict[str, Page],
) -> None:
    """Every `send` frame is lost on the way (the socket stays up): after its bounded tries
    the line says "not sent" with Retry; once frames get through, Retry stores it once."""
    site, body = restartable_site, "lost on the way, then retried"
    dropped: list[str] = []
    lose_sends = True

    def relay(page_side: WebSocketRoute) -> None:
        """Forward the page's socket to the real server, minus `send` frames while losing."""
        server_side = page_side.connect_to_server()

        def from_page(frame: str | bytes) -> None:
            if lose_sends and isinstance(frame, str) and json.loads(frame)["type"] == "send":
                dropped.append(frame)
            else:
                server_side.send(frame)

        page_side.on_message(from_page)

    alice = pages["alice"] = new_page(browser)
    alice.add_init_script(f"window.CHATSYNC_OPTIONS = {json.dumps(FAST_OUTBOX)};")
    alice.route_web_socket(site.ws_url, relay)
    sign_in(alice, site, "alice")

    say(alice, body)
    line = outbox_line(alice, body)
    expect(line).to_contain_class("failed", timeout=TIMEOUT_MS)
    expect(line.locator("time")).to_have_text("not sent —")
    assert len(dropped) == FAST_OUTBOX["maxTries"]
    assert {json.loads(frame)["client_id"] for frame in dropped} == {
        line.get_attribute("data-client-id")
    }
    assert stored_count(site, body) == 0

    lose_sends = False
    line.get_by_role("button", name="Retry").click()
    expect_message_once(alice, "alice", body)
    expect_status(alice, "Connected")
    assert stored_count(site, body) == 1
    assert len(dropped) == FAST_OUTBOX["maxTries"]


def test_the_status_returns_to_connected_when_the_socket_survives_a_short_network_drop(
    browser: Browser,
    restartable_site: RestartableSite,
    pages: dict[str, Page],
) -> None:
    """The network drops for a second while bob keeps posting; alice's socket survives it.

    Playwright's `set_offline` flips `navigator.onLine` and fires `offline`/`online`, so the
    pill says Offline, but Chromium keeps an open WebSocket open (its frames wait for the
    network; alice opens one socket only). Frames arriving on that socket must bring the
    pill back to Connected (it used to say Offline until a reconnect that never came), and
    every message is shown once."""
    site = restartable_site
    alice = pages["alice"] = new_page(browser)
    sockets: list[str] = []
    alice.on("websocket", lambda socket: sockets.append(socket.url))
    sign_in(alice, site, "alice")
    bob = pages["bob"] = sign_in_to_general(browser, site, "bob")

    alice.context.set_offline(True)
    expect_status(alice, "Offline")
    say(bob, "during the drop")
    alice.wait_for_timeout(1000)
    alice.context.set_offline(False)
    for n in range(3):
        say(bob, f"after the drop {n}")
    expect_status(alice, "Connected", timeout=5000)
    for body in ["during the drop", "after the drop 0", "after the drop 1", "after the drop 2"]:
        expect_message_once(alice, "bob", body)
    assert sockets == [site.ws_url], "the socket survived: no reconnect restored the status"


def test_the_status_returns_to_connected_after_a_short_drop_in_a_quiet_room(
    browser: Browser,
    restartable_site: RestartableSite,
    pages: dict[str, Page],
) -> None:
    """Nobody posts, so no frame would come for 25 s: on `online` the page pings its
    surviving socket at once, and the pong brings the pill back to Connected."""
    alice = pages["alice"] = new_page(browser)
    sent: list[str] = []
    alice.on("websocket", lambda socket: socket.on("framesent", lambda frame: sent.append(frame)))
    sign_in(alice, restartable_site, "alice")
    alice.wait_for_timeout(2500)  # let the page's `read` of the room come and go
    sent.clear()
    alice.context.set_offline(True)
    expect_status(alice, "Offline")
    alice.wait_for_timeout(1000)
    alice.context.set_offline(False)
    expect_status(alice, "Connected", timeout=3000)
    assert [json.loads(frame)["type"] for frame in sent] == ["ping"]
