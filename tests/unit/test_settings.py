"""Configuration comes from the environment, with defaults that work on a laptop."""

import json
import re
import subprocess

import pytest
from daphne.cli import CommandLineInterface

from tests.support import PROJECT_ROOT
from tests.support.cluster import DAPHNE
from tests.support.deployment import deployed_daphne
from tests.support.processes import run

SHOW = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'debug': s.DEBUG, 'engine': s.DATABASES['default']['ENGINE'], "
    "'db': str(s.DATABASES['default']['NAME']), 'layer': s.CHANNEL_LAYERS['default'], "
    "'hosts': s.ALLOWED_HOSTS, 'max': s.CHAT_MAX_MESSAGE_LENGTH}))"
)


def load_settings(**env: str) -> subprocess.CompletedProcess:
    return run("-c", SHOW, **env)


def test_defaults_need_no_services():
    run = load_settings()

    assert run.returncode == 0, run.stderr
    shown = json.loads(run.stdout)
    assert shown["debug"] is True
    assert shown["engine"] == "django.db.backends.sqlite3"
    assert shown["db"] == str(PROJECT_ROOT / "db.sqlite3")
    assert shown["layer"]["BACKEND"] == "chat.realtime.layers.InProcessChannelLayer"
    assert shown["hosts"] == ["localhost", "127.0.0.1", "[::1]"]
    assert shown["max"] == 4000


def test_services_and_limits_come_from_the_environment():
    run = load_settings(
        DATABASE_URL="postgres://chat@db.internal:5432/chat",
        REDIS_URL="redis://cache.internal:6379/1",
        DJANGO_ALLOWED_HOSTS="chat.example.com, www.chat.example.com",
        CHAT_MAX_MESSAGE_LENGTH="500",
    )

    assert run.returncode == 0, run.stderr
    shown = json.loads(run.stdout)
    assert shown["engine"] == "django.db.backends.postgresql"
    assert shown["db"] == "chat"
    assert shown["layer"]["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    [host] = shown["layer"]["CONFIG"]["hosts"]
    assert host["address"] == "redis://cache.internal:6379/1"
    assert host["socket_timeout"] > 5  # above channels-redis' blocking pop (chat/apps.py)
    assert shown["hosts"] == ["chat.example.com", "www.chat.example.com"]
    assert shown["max"] == 500


def test_refuses_to_start_without_a_secret_key_when_debug_is_off():
    run = load_settings(DJANGO_DEBUG="0")

    assert run.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in run.stderr


@pytest.mark.parametrize("shards", ["0", "-3"])
def test_refuses_to_start_without_a_fan_out_shard(shards):
    run = load_settings(CHAT_FANOUT_SHARDS=shards)

    assert run.returncode != 0
    assert f"CHAT_FANOUT_SHARDS must be 1 or more (got {shards})" in run.stderr


@pytest.mark.parametrize("value", ["0", "false", "off", "no"])
def test_debug_turns_off(value):
    run = load_settings(DJANGO_DEBUG=value, DJANGO_SECRET_KEY="test-" + "0123456789abcdef" * 4)

    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["debug"] is False


def test_the_redis_layer_can_be_the_pubsub_one():
    run = load_settings(REDIS_URL="redis://cache.internal:6379/1", CHAT_CHANNEL_LAYER="pubsub")

    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["layer"]["BACKEND"] == (
        "channels_redis.pubsub.RedisPubSubChannelLayer"
    )


MAIL = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps([s.EMAIL_BACKEND, s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_USE_TLS]))"
)


def test_mail_goes_to_the_console_until_a_server_is_configured():
    default = run("-c", MAIL)
    configured = run("-c", MAIL, EMAIL_HOST="smtp.example.com", EMAIL_PORT="2525")

    assert default.returncode == configured.returncode == 0, default.stderr + configured.stderr
    assert json.loads(default.stdout)[0] == "django.core.mail.backends.console.EmailBackend"
    assert json.loads(configured.stdout) == [
        "django.core.mail.backends.smtp.EmailBackend",
        "smtp.example.com",
        2525,
        True,
    ]


@pytest.mark.django_db
def test_a_password_reset_with_default_settings_uses_no_smtp_and_does_not_fail(
    settings, client, make_user, capsys, monkeypatch
):
    settings.EMAIL_BACKEND = json.loads(run("-c", MAIL).stdout)[0]  # pytest-django's is locmem
    make_user("carol", email="carol@example.com")

    def no_smtp(*args: object, **kwargs: object) -> None:
        raise AssertionError("tried to connect to an SMTP server")

    monkeypatch.setattr("smtplib.SMTP", no_smtp)
    monkeypatch.setattr("smtplib.SMTP_SSL", no_smtp)
    response = client.post("/accounts/password_reset/", {"email": "carol@example.com"})

    assert response.status_code == 302
    assert "carol@example.com" in capsys.readouterr().out  # the mail, printed


def test_a_connection_storm_has_time_to_be_accepted_in_production_and_in_the_cluster_tests():
    """daphne drops a socket its app has not accepted within --websocket_connect_timeout
    (5 s by default): in a storm the late sockets of a live server were dropped. Production
    (deploy/supervisord.conf) and the two-worker tests (tests/support/cluster.py) give it
    the same 30 s."""
    _program, deployed = deployed_daphne()
    tested = CommandLineInterface().parser.parse_args(list(DAPHNE[3:]))

    assert deployed.websocket_connect_timeout == tested.websocket_connect_timeout == 30


def test_the_log_says_when_each_line_was_written_how_bad_and_by_whom():
    """A users run read worker logs after a Redis outage and could not tell when anything
    happened: the app's lines had no time (daphne's access lines carry their own)."""
    logged = run(
        "-c",
        "import django, logging; django.setup(); "
        "logging.getLogger('chat.realtime.outages').warning('Lost Redis (test)')",
    )

    assert logged.returncode == 0, logged.stderr
    when = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    line = rf"{when} WARNING chat\.realtime\.outages: Lost Redis \(test\)\n"
    assert re.fullmatch(line, logged.stderr), logged.stderr
