"""Every page carries a Content-Security-Policy that no inline script satisfies, and the pages
need none: their scripts are static files and their data is `json_script`."""

import re
from html.parser import HTMLParser

import pytest
from django.test import Client

from chat.web.middleware import csp_header
from tests.support.factories import post_messages

pytestmark = pytest.mark.django_db

CSP = "Content-Security-Policy"


def directives(header: str) -> dict[str, list[str]]:
    parsed = {}
    for part in header.split(";"):
        name, *sources = part.split()
        parsed[name] = sources
    return parsed


class InlineCode(HTMLParser):
    """Collects what a policy without 'unsafe-inline' would block: inline scripts, event
    handler attributes, javascript: URLs, style attributes and <style> blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        is_data = attributes.get("type") == "application/json"
        if tag == "script" and "src" not in attributes and not is_data:
            self.found.append(f"inline <script {attrs}>")
        if tag == "style":
            self.found.append("<style> block")
        for name, value in attrs:
            if name.startswith("on") or name == "style":
                self.found.append(f"<{tag} {name}={value!r}>")
            if value and re.match(r"\s*javascript:", value, re.IGNORECASE):
                self.found.append(f"<{tag} {name}={value!r}>")


def inline_code(html: str) -> list[str]:
    parser = InlineCode()
    parser.feed(html)
    return parser.found


@pytest.fixture
def pages(client, staff, alice, general, make_room):
    """Every kind of page, as the user who can see it: (client, path, expected status)."""
    post_messages(general, alice, 3)
    make_room("quiet", topic="nothing here", members=(alice,))
    anonymous = Client()
    client.force_login(staff)
    message = general.messages.first()
    return [
        (anonymous, "/", 200),
        (anonymous, "/chat/general/", 200),
        (anonymous, "/accounts/login/", 200),
        (anonymous, "/accounts/signup/", 200),
        (anonymous, "/chat/no-such-room/", 404),
        (anonymous, "/admin/login/", 200),
        (client, "/", 200),
        (client, "/chat/general/", 200),
        (client, "/chat/general/settings/", 200),  # staff run public rooms
        (client, "/people/", 200),
        (client, "/account/", 200),
        (client, "/accounts/password_change/", 200),
        (client, "/admin/", 200),
        (client, "/admin/chat/room/", 200),
        (client, f"/admin/chat/room/{general.pk}/change/", 200),
        (client, "/admin/chat/room/add/", 200),
        (client, "/admin/chat/message/", 200),
        (client, f"/admin/chat/message/{message.pk}/change/", 200),
        (client, "/admin/auth/user/", 200),
        (client, f"/admin/auth/user/{alice.pk}/change/", 200),
        (client, "/admin/chat/profile/", 200),
    ]


def test_every_page_sends_the_policy_without_unsafe_inline(pages):
    for client, path, status in pages:
        response = client.get(path)
        assert response.status_code == status, path
        header = response.headers.get(CSP)
        assert header, f"{path} has no {CSP}"
        policy = directives(header)
        assert policy["script-src"] == ["'self'"], path
        assert policy["object-src"] == ["'none'"], path
        assert policy["frame-ancestors"] == ["'none'"], path
        assert policy["base-uri"] == ["'self'"], path
        assert "'unsafe-inline'" not in header, path
        assert "'unsafe-eval'" not in header, path


def test_no_page_needs_inline_code(pages):
    """What the policy would block is absent from the HTML (the browser test checks the DOM
    and the scripts' own behaviour)."""
    for client, path, _status in pages:
        html = client.get(path).content.decode()
        assert inline_code(html) == [], path


def test_the_policy_is_the_one_in_settings(client, settings):
    settings.SECURE_CSP = {"default-src": ["'none'"], "upgrade-insecure-requests": []}

    assert client.get("/").headers[CSP] == "default-src 'none'; upgrade-insecure-requests"


def test_the_policy_covers_errors_and_redirects(client):
    assert CSP in client.get("/chat/missing/").headers
    assert CSP in client.post("/rooms/new/", {"name": "x"}).headers  # redirect to login
    assert CSP in client.get("/accounts/logout/").headers  # 405


def test_clickjacking_is_refused_twice(client):
    response = client.get("/")

    assert response.headers["X-Frame-Options"] == "DENY"
    assert directives(response.headers[CSP])["frame-ancestors"] == ["'none'"]


def test_csp_header_joins_directives_in_order():
    assert csp_header({"a": ["'self'", "data:"], "b": []}) == "a 'self' data:; b"


@pytest.mark.parametrize(
    "html",
    [
        "<script>alert(1)</script>",
        '<img src="x" onerror="alert(1)">',
        '<a href=" JavaScript:alert(1)">x</a>',
        '<p style="color: red">x</p>',
        "<style>p { color: red }</style>",
    ],
)
def test_the_inline_code_finder_finds_what_the_policy_blocks(html):
    assert inline_code(html)


def test_the_inline_code_finder_lets_data_and_static_scripts_be():
    html = '<script type="application/json" id="c">{}</script><script src="/s.js" defer></script>'

    assert inline_code(html) == []
