"""In real Chromium: hostile text never runs, and the Content-Security-Policy breaks nothing.

The site's database is seeded with a user, a room and messages whose text is HTML, JavaScript,
SQL and template syntax that would set `window.__pwned` if it ever ran. The injection test
turns the browser's CSP enforcement off, so that escaping alone must hold; the CSP test turns
it on and walks every kind of page, the admin's included, listening for violations.
"""

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.browser import TIMEOUT_MS
from tests.support.live_server import PASSWORD, RestartableSite, _manage

pytestmark = [pytest.mark.browser, pytest.mark.own_database]

EVIL = '<img src=x onerror="window.__pwned=1">'  # a username
STAFF = "warden"
ROOM_NAME = "<script>window.__pwned=1</script>"
ROOM_TOPIC = "<svg onload=\"window.__pwned=1\"></svg>{{ 7|add:1 }}{% now 'Y' %}"
BODIES = [
    '<img src=x onerror="window.__pwned=1">',
    "<script>window.__pwned=1</script>",
    '<a href="javascript:window.__pwned=1">click me</a>',
    '"></div></li></ol><svg onload="window.__pwned=1">',
    '<iframe src="javascript:window.top.__pwned=1"></iframe>',
    "</script><script>window.__pwned=1</script>",
    "'; DROP TABLE chat_message; --",
    "{{ 7|add:1 }}{% now 'Y' %}{{ settings.SECRET_KEY }}",
]
LIVE_BODIES = [f"{body} (live)" for body in BODIES[:4]]
SEED = """
import json, os
from django.contrib.auth import get_user_model
from chat.formatting import render
from chat.models import Message, Room
data = json.loads(os.environ["SEED"])
User = get_user_model()
evil = User.objects.create_user(data["evil"], password=data["password"])
User.objects.create_user(data["staff"], password=data["password"], is_staff=True, is_superuser=True)
room = Room.objects.create(slug="hostile", name=data["name"], topic=data["topic"])
room.members.add(evil)
for seq, body in enumerate(data["bodies"], start=1):
    Message.objects.create(
        room=room, author=evil, body=body, body_html=render(body), seq=seq, rev=seq
    )
Room.objects.filter(pk=room.pk).update(last_seq=len(data["bodies"]))
ids = {"room": room.pk, "evil": evil.pk, "message": room.messages.get(seq=1).pk}
with open(os.environ["SEED_OUT"], "w") as out:
    json.dump(ids, out)
"""
# Runs before any script of every document: records CSP violations and uncaught errors.
WATCH = """
window.__violations = [];
window.__errors = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(`${e.effectiveDirective} blocked ${e.blockedURI || "inline"} ` +
                           `at ${e.sourceFile}:${e.lineNumber}`);
});
window.addEventListener("error", (e) => window.__errors.push(String(e.message)));
window.addEventListener("unhandledrejection", (e) => window.__errors.push(String(e.reason)));
"""
# What an injected element would leave in the DOM, whether or not it ran.
INJECTED = (
    '[onerror], [onload], [onclick], a[href^="javascript:" i], iframe, '
    'img[src="x"], script:not([src]):not([type="application/json"])'
)


def seed(site: RestartableSite) -> dict[str, int]:
    """The hostile user, room and messages, plus a staff user, in the site's database."""
    env = {
        **site.server.env,
        "SEED": json.dumps(
            {
                "evil": EVIL,
                "staff": STAFF,
                "password": PASSWORD,
                "name": ROOM_NAME,
                "topic": ROOM_TOPIC,
                "bodies": BODIES,
            }
        ),
    }
    out = site.log_path.parent / "seed.json"
    _manage({**env, "SEED_OUT": str(out)}, "shell", "--no-imports", "-c", SEED)
    return json.loads(out.read_text())


@pytest.fixture
def contexts(browser: Browser, tmp_path: Path) -> Iterator[list]:
    """Browser contexts a test opens; each page in them is photographed and closed after."""
    opened: list = []
    yield opened
    for i, context in enumerate(opened):
        for j, page in enumerate(context.pages):
            page.screenshot(path=tmp_path / f"context{i}-page{j}.png")
        context.close()


def open_page(browser: Browser, contexts: list, *, enforce_csp: bool) -> Page:
    """A page in a fresh profile that records violations and errors (see WATCH)."""
    context = browser.new_context(bypass_csp=not enforce_csp)
    context.set_default_timeout(TIMEOUT_MS)
    context.add_init_script(WATCH)
    contexts.append(context)
    return context.new_page()


def log_in(page: Page, site: RestartableSite, username: str, next_path: str) -> None:
    page.goto(f"{site.base_url}/accounts/login/?next={next_path}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{site.base_url}{next_path}")


def assert_nothing_ran(page: Page) -> None:
    """No injected code ran, none is in the DOM, and no script failed."""
    page.wait_for_load_state("load")
    page.wait_for_timeout(200)  # an <img onerror> fires once its load fails
    assert page.evaluate("window.__pwned") is None, page.url
    assert page.evaluate("window.top.__pwned") is None, page.url
    injected = page.evaluate(
        "(selector) => Array.from(document.querySelectorAll(selector), (e) => e.outerHTML)",
        INJECTED,
    )
    assert injected == [], page.url
    assert page.evaluate("window.__errors") == [], page.url


def assert_clean(page: Page) -> None:
    """No CSP violation and no script error on this page."""
    page.wait_for_load_state("load")
    page.wait_for_timeout(200)
    assert page.evaluate("window.__violations") == [], page.url
    assert page.evaluate("window.__errors") == [], page.url


def bodies(page: Page) -> list[str]:
    return page.locator("#messages li[data-seq] .body").all_text_contents()


def test_hostile_text_is_shown_as_text_and_never_runs(
    browser: Browser,
    restartable_site: RestartableSite,
    contexts: list,
) -> None:
    site = restartable_site
    ids = seed(site)

    # Alice reads the room: everything stored is rendered by the server.
    alice = open_page(browser, contexts, enforce_csp=False)
    log_in(alice, site, "alice", "/chat/hostile/")
    expect(alice.locator("#status")).to_have_text("Connected")
    expect(alice.locator("#room-name")).to_have_text(ROOM_NAME)
    expect(alice.locator("#room-topic")).to_have_text(ROOM_TOPIC)
    assert_nothing_ran(alice)
    assert bodies(alice) == BODIES
    assert set(alice.locator("#messages .author").all_text_contents()) == {EVIL}

    # The hostile user signs in (their name goes into the header and the page's config), is
    # seen online, types, and posts: all of it reaches Alice live, through room.js.
    evil = open_page(browser, contexts, enforce_csp=False)
    log_in(evil, site, EVIL, "/chat/hostile/")
    expect(evil.locator("#status")).to_have_text("Connected")
    expect(evil.locator(".whoami strong")).to_have_text(EVIL)
    expect(alice.locator("#online li")).to_have_text([EVIL, "alice"])  # sorted
    # Their name opens a profile card that shows it as text, and links to it quoted.
    alice.locator("#online button.person").first.click()
    card = alice.locator("#profile-card")
    expect(card.locator(".profile-name")).to_have_text(EVIL)
    message_link = card.get_by_role("link", name="Message").get_attribute("href")
    assert message_link is not None
    assert "<" not in message_link
    alice.keyboard.press("Escape")
    expect(card).to_be_hidden()
    composer = evil.get_by_label("Message", exact=True)
    composer.press_sequentially("<b>")
    expect(alice.locator("#typing")).to_have_text(f"{EVIL} is typing…")
    for body in LIVE_BODIES:
        composer.fill(body)
        composer.press("Enter")
    expect(alice.locator("#messages li[data-seq] .body")).to_have_count(
        len(BODIES) + len(LIVE_BODIES)
    )
    assert_nothing_ran(alice)
    assert_nothing_ran(evil)
    assert bodies(alice) == BODIES + LIVE_BODIES
    assert bodies(evil) == BODIES + LIVE_BODIES

    # After a reload, the server renders what arrived live.
    alice.goto(f"{site.base_url}/chat/hostile/")
    expect(alice.locator("#status")).to_have_text("Connected")
    assert bodies(alice) == BODIES + LIVE_BODIES
    assert_nothing_ran(alice)

    # The lobby.
    alice.goto(f"{site.base_url}/")
    listed = alice.locator(".room-list li", has_text=ROOM_NAME)
    expect(listed.get_by_role("link")).to_have_attribute("href", "/chat/hostile/")
    expect(listed.locator(".topic")).to_have_text(ROOM_TOPIC)
    assert_nothing_ran(alice)

    # The admin, as staff: changelists, change forms, and the index's recent actions.
    admin = open_page(browser, contexts, enforce_csp=False)
    log_in(admin, site, STAFF, "/admin/")
    admin.goto(f"{site.base_url}/admin/chat/room/{ids['room']}/change/")
    expect(admin.locator("#id_name")).to_have_value(ROOM_NAME)
    expect(admin.locator("#id_topic")).to_have_value(ROOM_TOPIC)
    assert_nothing_ran(admin)
    admin.get_by_role("button", name="Save", exact=True).click()  # a recent action, by name
    expect(admin.get_by_role("link", name=ROOM_NAME).first).to_be_visible()
    assert_nothing_ran(admin)
    checks = {
        "/admin/": ROOM_NAME,
        "/admin/chat/message/": BODIES[0],
        f"/admin/chat/message/?room__id__exact={ids['room']}": BODIES[1],
        f"/admin/chat/message/{ids['message']}/change/": BODIES[0],
        "/admin/auth/user/": EVIL,
        f"/admin/chat/room/{ids['room']}/delete/": ROOM_NAME,
    }
    for path, text in checks.items():
        admin.goto(f"{site.base_url}{path}")
        expect(admin.get_by_text(text, exact=True).first).to_be_visible()
        assert_nothing_ran(admin)
    admin.goto(f"{site.base_url}/admin/auth/user/{ids['evil']}/change/")
    expect(admin.locator("#id_username")).to_have_value(EVIL)
    assert_nothing_ran(admin)


def test_the_policy_blocks_nothing_the_site_and_admin_need(
    browser: Browser,
    restartable_site: RestartableSite,
    contexts: list,
) -> None:
    site = restartable_site
    ids = seed(site)

    visitor = open_page(browser, contexts, enforce_csp=True)
    for path in ("/", "/chat/general/", "/accounts/login/", "/accounts/signup/"):
        response = visitor.goto(f"{site.base_url}{path}")
        assert response is not None
        assert "script-src 'self';" in response.headers["content-security-policy"], path
        assert_clean(visitor)

    # The room page: room.js runs, its socket connects, messages go both ways.
    alice = open_page(browser, contexts, enforce_csp=True)
    log_in(alice, site, "alice", "/chat/general/")
    expect(alice.locator("#status")).to_have_text("Connected")
    composer = alice.get_by_label("Message", exact=True)
    composer.fill("hello under a strict policy")
    composer.press("Enter")
    expect(alice.locator("#messages li[data-seq] .body")).to_have_text(
        ["hello under a strict policy"]
    )
    assert_clean(alice)
    alice.goto(f"{site.base_url}/chat/hostile/")  # hostile text under the real policy
    expect(alice.locator("#status")).to_have_text("Connected")
    assert_clean(alice)
    assert_nothing_ran(alice)

    # The admin: its login, and pages whose widgets are built by its JavaScript.
    admin = open_page(browser, contexts, enforce_csp=True)
    admin.goto(f"{site.base_url}/admin/login/?next=/admin/")
    assert_clean(admin)
    admin.get_by_label("Username").fill(STAFF)
    admin.get_by_label("Password").fill(PASSWORD)
    admin.get_by_role("button", name="Log in").click()
    expect(admin).to_have_url(f"{site.base_url}/admin/")
    assert_clean(admin)

    admin.goto(f"{site.base_url}/admin/chat/room/")
    assert_clean(admin)
    admin.locator("#action-toggle").check()  # actions.js ticks every row
    expect(admin.locator("input.action-select").first).to_be_checked()
    expect(admin.locator(".action-counter")).to_contain_text("selected")

    admin.goto(f"{site.base_url}/admin/chat/room/add/")
    admin.locator("#id_name").press_sequentially("Tea and Biscuits")  # keyup events
    expect(admin.locator("#id_slug")).to_have_value("tea-and-biscuits")  # prepopulate.js
    admin.locator(".add-row a").click()  # inlines.js adds a membership row
    expect(admin.locator("#memberships-0 .field-user .select2-container")).to_be_visible()
    expect(admin.locator(".field-created_by .select2-container")).to_be_visible()  # select2
    assert_clean(admin)
    admin.get_by_role("button", name="Save", exact=True).click()
    expect(admin.locator(".messagelist .success")).to_be_visible()
    assert_clean(admin)

    for path in (
        f"/admin/chat/room/{ids['room']}/change/",
        "/admin/chat/message/",
        f"/admin/chat/message/{ids['message']}/change/",
        "/admin/auth/user/",
        f"/admin/auth/user/{ids['evil']}/change/",
        f"/admin/auth/user/{ids['evil']}/password/",
    ):
        admin.goto(f"{site.base_url}{path}")
        assert_clean(admin)
    # The user form's date widgets (DateTimeShortcuts.js) and the sidebar filter (nav_sidebar.js).
    admin.goto(f"{site.base_url}/admin/auth/user/{ids['evil']}/change/")
    expect(admin.locator(".datetimeshortcuts").first).to_be_visible()
    admin.locator("#nav-filter").fill("mess")
    expect(admin.locator("#nav-sidebar tr.model-room")).to_be_hidden()
    assert_clean(admin)

    # The listeners can fail: an inline script added to a page under the policy is reported.
    admin.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.__pwned = 1'; document.body.append(s); }"
    )
    admin.wait_for_timeout(200)
    assert admin.evaluate("window.__pwned") is None
    violations = admin.evaluate("window.__violations")
    assert any(re.match(r"script-src(-elem)? blocked inline", v) for v in violations), violations
