"""Logging in: failed attempts are throttled on the site's form and the admin's, and signing
up applies Django's password validators."""

import socket
import time

import pytest
import redis
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.test import Client

from chat.realtime.outages import Outage
from chat.web import throttle
from tests.support.deployment import deployed_daphne
from tests.support.factories import PASSWORD
from tests.support.redis_service import redis_url

pytestmark = pytest.mark.django_db

SITE_LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"
LIMIT = 5  # LOGIN_THROTTLE_USERNAME_FAILURES
WINDOW = 15 * 60  # LOGIN_THROTTLE_WINDOW


def attempt(
    client: Client,
    username: str,
    password: str = "wrong password",
    *,
    url: str = SITE_LOGIN,
    address: str = "198.51.100.7",
):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address)


def fail(client: Client, username: str, times: int, **where: str) -> None:
    for _ in range(times):
        response = attempt(client, username, **where)
        assert response.status_code == 200, "a wrong password shows the form again"


@pytest.fixture
def password_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The usernames whose password the authentication backend checked, in order."""
    checked: list[str] = []
    original = ModelBackend.authenticate

    def spy(self, request, username=None, password=None, **kwargs):
        checked.append(username)
        return original(self, request, username=username, password=password, **kwargs)

    monkeypatch.setattr(ModelBackend, "authenticate", spy)
    return checked


def signed_in_as(client: Client) -> str | None:
    user = client.get("/").context["user"]
    return user.get_username() if user.is_authenticated else None


def test_the_sixth_try_after_five_failures_is_refused_with_429_without_a_password_check(
    client, alice, password_checks
):
    fail(client, "alice", LIMIT)
    password_checks.clear()

    response = attempt(client, "alice", PASSWORD)

    assert response.status_code == 429
    assert WINDOW - 5 <= int(response["Retry-After"]) <= WINDOW
    page = response.content.decode()
    assert "Too many failed logins" in page
    assert "Try again in 15 minutes" in page
    assert password_checks == []
    assert signed_in_as(client) is None


def test_four_failures_still_let_the_right_password_in(client, alice):
    fail(client, "alice", LIMIT - 1)

    response = attempt(client, "alice", PASSWORD)

    assert response.status_code == 302
    assert signed_in_as(client) == "alice"


def test_a_throttled_username_is_throttled_from_every_address(client, alice):
    fail(client, "alice", LIMIT, address="198.51.100.7")

    assert attempt(client, "alice", PASSWORD, address="203.0.113.9").status_code == 429
    # Case does not make a new username to guess.
    assert attempt(client, "ALICE", PASSWORD, address="203.0.113.9").status_code == 429


# Every spelling the login form turns into the same account (it strips spaces and applies
# NFKC), and case: (account, another spelling of it, whether that spelling signs in).
SPELLINGS = [
    pytest.param("bob", "bob  ", True, id="trailing-spaces"),
    pytest.param("bob", " \tbob\n", True, id="surrounding-whitespace"),
    pytest.param("bob", "\uff42\uff4f\uff42", True, id="full-width"),
    pytest.param("bob", "\u2003bob\u00a0", True, id="unicode-spaces"),
    pytest.param("josé", "jose\u0301", True, id="combining-accent"),
    pytest.param("\ufb01ona", "fiona", True, id="ligature"),
    pytest.param("bob", "BOB", False, id="case"),
]


@pytest.mark.parametrize(("account", "spelling", "signs_in"), SPELLINGS)
@pytest.mark.parametrize("failed_as", ["account", "spelling"])
def test_no_spelling_of_a_throttled_username_walks_around_the_throttle(
    client, make_user, account, spelling, signs_in, failed_as
):
    make_user(account)
    failing, trying = (account, spelling) if failed_as == "account" else (spelling, account)
    if signs_in:  # the spelling is a real way in: the throttle must see it as the account
        assert attempt(Client(), spelling, PASSWORD).status_code == 302

    fail(client, failing, LIMIT)

    assert attempt(client, trying, PASSWORD, address="203.0.113.9").status_code == 429
    assert signed_in_as(client) is None


def test_signing_in_with_another_spelling_clears_the_accounts_failures(client, bob):
    fail(client, "bob", LIMIT - 1)

    assert attempt(client, "\uff42\uff4f\uff42 ", PASSWORD).status_code == 302
    client.logout()
    fail(client, "bob", LIMIT - 1)

    assert attempt(client, "bob", PASSWORD).status_code == 302


def test_other_usernames_are_not_throttled_by_one_users_failures(client, alice, bob):
    fail(client, "alice", LIMIT)

    assert attempt(client, "bob", PASSWORD).status_code == 302


def test_an_address_guessing_many_usernames_is_throttled(client, settings, alice):
    settings.LOGIN_THROTTLE_ADDRESS_FAILURES = 3
    for name in ("u1", "u2", "u3"):
        fail(client, name, 1, address="192.0.2.1")

    assert attempt(client, "alice", PASSWORD, address="192.0.2.1").status_code == 429
    assert attempt(client, "alice", PASSWORD, address="192.0.2.2").status_code == 302


def test_a_forged_x_forwarded_for_does_not_change_the_counted_address(client, settings, alice):
    settings.LOGIN_THROTTLE_ADDRESS_FAILURES = 3
    for n in range(3):
        client.post(
            SITE_LOGIN,
            {"username": f"guess{n}", "password": "x"},
            REMOTE_ADDR="198.51.100.7",
            HTTP_X_FORWARDED_FOR=f"203.0.113.{n}",
        )

    forged = client.post(
        SITE_LOGIN,
        {"username": "alice", "password": PASSWORD},
        REMOTE_ADDR="198.51.100.7",
        HTTP_X_FORWARDED_FOR="192.0.2.99",
    )

    assert forged.status_code == 429


@pytest.mark.parametrize(
    ("forwarded_for", "counted_as"),
    [
        ("203.0.113.5", "203.0.113.5"),
        ("192.0.2.1, 203.0.113.5", "203.0.113.5"),  # what the client sent comes first
        ("203.0.113.5, 10.0.0.2", "203.0.113.5"),  # a second trusted proxy is skipped
    ],
)
def test_a_trusted_proxys_x_forwarded_for_names_the_client(
    client, settings, alice, forwarded_for, counted_as
):
    settings.CHAT_TRUSTED_PROXIES = ["10.0.0.0/24"]
    settings.LOGIN_THROTTLE_ADDRESS_FAILURES = 3
    for n in range(3):
        client.post(
            SITE_LOGIN,
            {"username": f"guess{n}", "password": "x"},
            REMOTE_ADDR="10.0.0.1",
            HTTP_X_FORWARDED_FOR=forwarded_for,
        )

    def login_from(address: str) -> int:
        return (
            Client()
            .post(
                SITE_LOGIN,
                {"username": "alice", "password": PASSWORD},
                REMOTE_ADDR="10.0.0.1",
                HTTP_X_FORWARDED_FOR=address,
            )
            .status_code
        )

    assert login_from(counted_as) == 429
    assert login_from("203.0.113.77") == 302  # another client behind the same proxy


def test_daphne_is_deployed_without_trusting_proxy_headers_or_naming_itself():
    """deploy/supervisord.conf's daphne must not take X-Forwarded-For from anyone, nor send
    `Server: daphne`."""
    program, args = deployed_daphne()

    assert program.endswith("/daphne")
    assert args.proxy_headers is False
    assert args.server_name == ""


def test_a_successful_login_clears_the_usernames_failures(client, alice):
    fail(client, "alice", LIMIT - 1)
    assert attempt(client, "alice", PASSWORD).status_code == 302
    client.post("/accounts/logout/")

    fail(client, "alice", LIMIT - 1)

    assert attempt(client, "alice", PASSWORD).status_code == 302


def test_a_successful_login_does_not_clear_the_addresss_failures(client, settings, alice):
    settings.LOGIN_THROTTLE_ADDRESS_FAILURES = 3
    fail(client, "mallory-guess-1", 2, address="192.0.2.1")
    assert attempt(client, "alice", PASSWORD, address="192.0.2.1").status_code == 302
    client.post("/accounts/logout/")

    fail(client, "mallory-guess-2", 1, address="192.0.2.1")

    assert attempt(client, "bob", address="192.0.2.1").status_code == 429


def test_being_signed_in_as_someone_else_does_not_count_as_success(client, alice, bob):
    client.force_login(bob)
    fail(client, "alice", LIMIT)

    assert attempt(client, "alice", PASSWORD).status_code == 429


def test_the_limit_resets_when_the_window_ends(client, settings, alice):
    settings.LOGIN_THROTTLE_WINDOW = 1
    fail(client, "alice", LIMIT)
    assert attempt(client, "alice", PASSWORD).status_code == 429

    time.sleep(1.2)

    assert attempt(client, "alice", PASSWORD).status_code == 302


def test_the_admin_login_is_throttled_too(client, staff, password_checks):
    fail(client, "moderator", LIMIT, url=ADMIN_LOGIN)
    password_checks.clear()

    response = attempt(client, "moderator", PASSWORD, url=ADMIN_LOGIN)

    assert response.status_code == 429
    assert "Retry-After" in response
    assert password_checks == []
    assert client.get("/admin/").status_code == 302  # still sent to the login page


def test_the_site_and_the_admin_count_together(client, staff):
    fail(client, "moderator", LIMIT - 2, url=SITE_LOGIN)
    fail(client, "moderator", 2, url=ADMIN_LOGIN)

    assert attempt(client, "moderator", PASSWORD, url=SITE_LOGIN).status_code == 429


def test_the_admin_login_still_works(client, staff):
    response = attempt(client, "moderator", PASSWORD, url=ADMIN_LOGIN)

    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_a_throttled_login_page_still_opens(client, alice):
    fail(client, "alice", LIMIT)

    assert client.get(SITE_LOGIN).status_code == 200


def test_any_posted_username_makes_a_valid_counter(client, recwarn):
    odd = "a name with spaces\n and \x00 control characters " + "é" * 300
    fail(client, odd, LIMIT)

    assert attempt(client, odd).status_code == 429
    assert [w for w in recwarn if "CacheKeyWarning" in type(w.message).__name__] == []


def test_workers_sharing_redis_share_the_counters(client, settings, alice):
    """Two workers are two cache connections to one Redis: failures on one throttle the other."""
    url = redis_url()
    prefix = f"test-throttle-{time.time_ns()}"
    shared = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": url,
        "KEY_PREFIX": prefix,
    }
    settings.CACHES = {"default": shared}
    try:
        fail(client, "alice", LIMIT)
        settings.CACHES = {"default": dict(shared)}  # a new connection: the other worker

        assert attempt(client, "alice", PASSWORD).status_code == 429
        server = redis.Redis.from_url(url)
        keys = list(server.scan_iter(f"{prefix}:*"))
        assert keys, "the counters are in Redis"
        assert all(0 < server.ttl(key) <= WINDOW for key in keys)
    finally:
        server = redis.Redis.from_url(url)
        for key in server.scan_iter(f"{prefix}:*"):
            server.delete(key)


def test_signup_rejects_a_password_too_similar_to_the_username(client):
    response = client.post(
        "/accounts/signup/",
        {"username": "carolwrites", "password1": "carolwrites1", "password2": "carolwrites1"},
    )

    assert response.status_code == 200
    assert "too similar to the username" in response.content.decode()
    assert not get_user_model().objects.filter(username="carolwrites").exists()


def test_signup_rejects_a_common_password(client):
    response = client.post(
        "/accounts/signup/",
        {"username": "dana", "password1": "qwertyuiop", "password2": "qwertyuiop"},
    )

    assert response.status_code == 200
    assert "too common" in response.content.decode()
    assert not get_user_model().objects.filter(username="dana").exists()


def test_signup_rejects_an_all_numeric_password(client):
    response = client.post(
        "/accounts/signup/",
        {"username": "erin", "password1": "5820193746", "password2": "5820193746"},
    )

    assert response.status_code == 200
    assert "entirely numeric" in response.content.decode()
    assert not get_user_model().objects.filter(username="erin").exists()


@pytest.fixture
def cache_away(settings, monkeypatch) -> None:
    """The throttles' cache is a Redis that does not answer (nothing listens on its port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free, and closed again: connections are refused
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
        }
    }
    monkeypatch.setattr(throttle, "_cache_outage", Outage("the throttles' cache"))
    monkeypatch.setattr(throttle, "_cache_retry_at", 0.0)


@pytest.mark.usefixtures("cache_away")
@pytest.mark.parametrize(
    ("url", "form", "statuses"),
    [
        (SITE_LOGIN, {"username": "alice", "password": PASSWORD}, [302, 302]),  # signed in
        (SITE_LOGIN, {"username": "alice", "password": "wrong"}, [200, 200]),  # the form again
        (ADMIN_LOGIN, {"username": "moderator", "password": PASSWORD}, [302, 302]),
        (
            "/accounts/signup/",
            {"username": "newbie", "password1": PASSWORD, "password2": PASSWORD},
            [302, 200],  # a new account, then "already exists"
        ),
    ],
)
def test_the_forms_work_unthrottled_while_the_cache_is_away_and_say_so_once(
    client, alice, staff, caplog, url, form, statuses
):
    replies = [client.post(url, form, REMOTE_ADDR="198.51.100.7").status_code for _ in statuses]

    assert replies == statuses  # not 500
    lost = [r for r in caplog.records if r.getMessage().startswith("Lost the throttles' cache")]
    assert len(lost) == 1


def test_room_creation_works_while_the_cache_is_away(client, alice, cache_away):
    client.force_login(alice)

    response = client.post("/rooms/new/", {"name": "Still works"})

    assert response.status_code == 302
