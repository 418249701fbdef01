"""Settings for chatsite.

The environment is read here and only here. Every variable has a default that works on a
laptop with no services: SQLite in the project folder and the in-memory channel layer.
See `.env.example` for the list.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    """Read a yes/no environment variable ("1", "true", "yes", "on" mean yes)."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    """Read a comma-separated environment variable."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", True)

DEVELOPMENT_SECRET_KEY = "django-insecure-chatsite-development-key-do-not-use-in-production"
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off "
            '(generate one with: python -c "import secrets; print(secrets.token_urlsafe(50))").'
        )
    SECRET_KEY = DEVELOPMENT_SECRET_KEY

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    # daphne first: its runserver serves HTTP and WebSockets from one process.
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "chat",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

if not DEBUG:
    # Production serves collected static files itself (`collectstatic` fills STATIC_ROOT);
    # in debug, runserver serves them from the apps.
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "chatsite.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

ASGI_APPLICATION = "chatsite.asgi.application"

# Database: DATABASE_URL (e.g. postgres://user@127.0.0.1:5432/chatsite), else a SQLite file.
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": BASE_DIR / "db.sqlite3",
        }
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (daphne workers, tests) write to one file: take the write lock at
    # BEGIN so no transaction has to upgrade a read lock and die with "database is locked",
    # wait for the lock rather than fail, and let readers run beside the writer (WAL).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # A file, not :memory:, so that threads and subprocesses of a test run share it; one per
    # test run, so that two runs side by side do not share it.
    DATABASES["default"].setdefault("TEST", {})["NAME"] = str(
        BASE_DIR / f"test-db-{os.getpid()}.sqlite3"
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Channel layer: REDIS_URL set → channels-redis, shared by every worker; unset → in-process.
# Each process joins a room's group once (chat/fanout.py), so the layer carries one message
# per process per broadcast, not one per socket. CHAT_CHANNEL_LAYER picks the channels-redis
# layer: "core" (lists in Redis, buffered; the default, see docs/performance.md) or "pubsub".
# Capacity is per channel, and there are few channels: one per process, plus a burst margin.
REDIS_URL = os.environ.get("REDIS_URL", "")
CHAT_CHANNEL_LAYER = os.environ.get("CHAT_CHANNEL_LAYER", "core")
if REDIS_URL and CHAT_CHANNEL_LAYER == "pubsub":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
elif REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "capacity": 1000},
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 1000}}
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "chat:lobby"
LOGOUT_REDIRECT_URL = "chat:lobby"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Chat limits.
CHAT_MAX_MESSAGE_LENGTH = int(os.environ.get("CHAT_MAX_MESSAGE_LENGTH", "4000"))
CHAT_PAGE_SIZE = 50  # messages in a room page and in a `join` without `since`
CHAT_REPLAY_LIMIT = 500  # messages at most in a `join` with `since`
CHAT_HISTORY_LIMIT = 100  # cap on `history` limit
# Each process re-adds itself to its room groups this often; well below the layer's
# group_expiry (24 h by default), after which a layer forgets a member.
CHAT_GROUP_REFRESH_SECONDS = 3600
# A send is acked once its broadcast was handed to this process's sockets, or after this
# many seconds (a lost broadcast must not hold an ack forever).
CHAT_ACK_WAITS_FOR_FANOUT = 2.0
# Frames queued for a socket whose transport makes sends wait (daphne's never do); past
# this, that socket alone misses broadcasts, and its client resyncs.
CHAT_SOCKET_BACKLOG = 256
# Presence is shared through Redis whenever the channel layer is; an entry not refreshed
# for this many seconds belonged to a dead worker (its users go offline within TTL + TTL/3).
CHAT_PRESENCE_REDIS_URL = REDIS_URL
CHAT_PRESENCE_TTL = float(os.environ.get("CHAT_PRESENCE_TTL", "30"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "INFO" if DEBUG else "WARNING"},
    # Django's own config gives "django" a console handler too; let it reach the root once.
    "loggers": {"django": {"handlers": [], "level": "INFO", "propagate": True}},
}
