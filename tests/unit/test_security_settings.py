"""Production settings: `check --deploy` is clean with debug off, and a weak secret stops the
site from starting. Each test loads the settings in a fresh process, as a deployment does."""

import json
import secrets
from pathlib import Path

import pytest

from tests.support.processes import run

STRONG_KEY = secrets.token_urlsafe(50)
SHOW = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({name: getattr(s, name, None) for name in ["
    "'DEBUG', 'SECURE_SSL_REDIRECT', 'SECURE_PROXY_SSL_HEADER', 'SESSION_COOKIE_SECURE', "
    "'CSRF_COOKIE_SECURE', 'SECURE_HSTS_SECONDS', 'SECURE_HSTS_INCLUDE_SUBDOMAINS', "
    "'SECURE_HSTS_PRELOAD', 'SECURE_CONTENT_TYPE_NOSNIFF', 'X_FRAME_OPTIONS', "
    "'SECURE_REFERRER_POLICY', 'SECRET_KEY']}))"
)
# A request to the production settings through Django's test client: over plain http, and
# as the TLS proxy forwards it.
REQUEST = """
import json, django
django.setup()
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
plain = Client().get("/accounts/login/")
proxied = Client().get("/accounts/login/", headers={"X-Forwarded-Proto": "https"})
print(json.dumps({
    "plain": [plain.status_code, plain.get("Location")],
    "proxied": [proxied.status_code, dict(proxied.headers)],
    "csrf_cookie_secure": bool(proxied.cookies["csrftoken"]["secure"]),
}))
"""


def show(**env: str) -> dict:
    result = run("-c", SHOW, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_check_deploy_passes_with_no_warnings_when_debug_is_off():
    result = run("manage.py", "check", "--deploy", DJANGO_DEBUG="0", DJANGO_SECRET_KEY=STRONG_KEY)

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNINGS" not in output
    assert "(security." not in output
    assert "System check identified no issues" in output


def test_check_deploy_notices_the_laptop_defaults():
    """The previous test can fail: with the laptop's settings the same check warns."""
    result = run("manage.py", "check", "--deploy")

    output = result.stdout + result.stderr
    assert "(security.W018)" in output  # DEBUG on
    assert "(security.W008)" in output  # no SSL redirect


@pytest.mark.parametrize(
    ("key", "complaint"),
    [
        ("", "DJANGO_SECRET_KEY must be set"),
        ("django-insecure-chatsite-development-key-do-not-use-in-production", "development key"),
        ("django-insecure-" + secrets.token_urlsafe(50), "development key"),
        (secrets.token_urlsafe(20), "too weak"),
        ("ab" * 40, "too weak"),
    ],
    ids=["missing", "development", "insecure-prefix", "short", "few-characters"],
)
def test_the_site_refuses_to_start_with_debug_off_and_a_weak_secret_key(key, complaint):
    result = run("manage.py", "check", DJANGO_DEBUG="0", DJANGO_SECRET_KEY=key)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert complaint in result.stderr


def test_a_strong_secret_key_from_the_environment_is_used():
    assert show(DJANGO_DEBUG="0", DJANGO_SECRET_KEY=STRONG_KEY)["SECRET_KEY"] == STRONG_KEY


def test_debug_off_means_https_behind_a_tls_proxy():
    shown = show(DJANGO_DEBUG="0", DJANGO_SECRET_KEY=STRONG_KEY)

    assert shown["SECURE_SSL_REDIRECT"] is True
    assert shown["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert shown["SESSION_COOKIE_SECURE"] is True
    assert shown["CSRF_COOKIE_SECURE"] is True
    assert shown["SECURE_HSTS_SECONDS"] == 365 * 24 * 3600
    assert shown["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert shown["SECURE_HSTS_PRELOAD"] is True
    assert shown["SECURE_CONTENT_TYPE_NOSNIFF"] is True
    assert shown["X_FRAME_OPTIONS"] == "DENY"
    assert shown["SECURE_REFERRER_POLICY"] == "same-origin"


def test_hsts_comes_from_the_environment():
    shown = show(
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=STRONG_KEY,
        DJANGO_SECURE_HSTS_SECONDS="3600",
        DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS="0",
        DJANGO_SECURE_HSTS_PRELOAD="off",
    )

    assert shown["SECURE_HSTS_SECONDS"] == 3600
    assert shown["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is False
    assert shown["SECURE_HSTS_PRELOAD"] is False


def test_the_laptop_default_serves_plain_http():
    shown = show()

    assert shown["DEBUG"] is True
    assert shown["SECURE_SSL_REDIRECT"] is False
    assert shown["SECURE_PROXY_SSL_HEADER"] is None
    assert shown["SESSION_COOKIE_SECURE"] is False
    assert shown["CSRF_COOKIE_SECURE"] is False
    assert shown["SECURE_HSTS_SECONDS"] == 0


def test_a_plain_http_production_like_run_still_passes_the_error_level_deploy_check():
    """What deploy/serve.sh does on 127.0.0.1: debug off, DJANGO_HTTPS=0."""
    env = {"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": STRONG_KEY, "DJANGO_HTTPS": "0"}
    shown = show(**env)
    check = run("manage.py", "check", "--deploy", "--fail-level", "ERROR", **env)

    assert check.returncode == 0, check.stdout + check.stderr
    assert shown["SECURE_SSL_REDIRECT"] is False
    assert shown["SESSION_COOKIE_SECURE"] is False
    assert shown["CSRF_COOKIE_SECURE"] is False
    assert shown["SECURE_HSTS_SECONDS"] == 0


def test_the_ssl_redirect_can_be_left_to_the_proxy():
    shown = show(DJANGO_DEBUG="0", DJANGO_SECRET_KEY=STRONG_KEY, DJANGO_SECURE_SSL_REDIRECT="0")

    assert shown["SECURE_SSL_REDIRECT"] is False
    assert shown["SESSION_COOKIE_SECURE"] is True


@pytest.fixture(scope="module")
def collected_static(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Debug off renders hashed static URLs, which need collected files and their manifest."""
    folder = tmp_path_factory.mktemp("static")
    result = run(
        "manage.py",
        "collectstatic",
        "--noinput",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=STRONG_KEY,
        DJANGO_STATIC_ROOT=str(folder),
    )
    assert result.returncode == 0, result.stderr
    return folder


def test_production_redirects_http_and_sends_the_security_headers_over_https(
    collected_static: Path, tmp_path: Path
):
    result = run(
        "-c",
        REQUEST,
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=STRONG_KEY,
        DJANGO_ALLOWED_HOSTS="testserver",
        DJANGO_STATIC_ROOT=str(collected_static),
        DATABASE_URL=f"sqlite:///{tmp_path / 'unused.sqlite3'}",
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)

    assert shown["plain"] == [301, "https://testserver/accounts/login/"]
    status, headers = shown["proxied"]
    assert status == 200
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"
    assert "script-src 'self';" in headers["Content-Security-Policy"]
    assert shown["csrf_cookie_secure"] is True
