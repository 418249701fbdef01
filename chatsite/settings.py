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


def secret_key_problem(key: str, *, development_key: str) -> str | None:
    """Why `key` may not sign a production site's sessions, or None if it may: missing, the
    development key, or weaker than Django's own deploy check accepts (security.W009)."""
    if not key:
        return "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off"
    if key == development_key or key.startswith("django-insecure-"):
        return "DJANGO_SECRET_KEY is the development key; set a secret one of your own"
    if len(key) < 50 or len(set(key)) < 5:
        return (
            "DJANGO_SECRET_KEY is too weak: use at least 50 random characters "
            "(5 or more different ones)"
        )
    return None


DEBUG = env_bool("DJANGO_DEBUG", True)

DEVELOPMENT_SECRET_KEY = "django-insecure-chatsite-development-key-do-not-use-in-production"
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not DEBUG:
    # Security: with debug off the key signs sessions and CSRF tokens for real users.
    _problem = secret_key_problem(SECRET_KEY, development_key=DEVELOPMENT_SECRET_KEY)
    if _problem:
        raise ImproperlyConfigured(
            f"{_problem} "
            '(generate one with: python -c "import secrets; print(secrets.token_urlsafe(50))").'
        )
elif not SECRET_KEY:
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
# Each process joins a room's group once (chat/realtime/fanout.py), so the layer carries one message
# per process per broadcast, not one per socket. CHAT_CHANNEL_LAYER picks the channels-redis
# layer: "core" (lists in Redis, buffered; the default, see docs/performance.md) or "pubsub".
# Capacity is per channel, and there are few channels: one per process, plus a burst margin.
REDIS_URL = os.environ.get("REDIS_URL", "")
# redis-py gives up on a reply after `socket_timeout` (5 s by default), and channels-redis
# waits for a message with a blocking pop of 5 s (`brpop_timeout`): with equal timeouts a
# quiet process's receive failed now and then and broadcasts were lost. The reply must be
# allowed longer than the pop (checked at startup, chat/checks.py); a Redis that hangs (a
# paused server) is still noticed within `socket_timeout`, and the fan-out reconnects.
CHAT_LAYER_REDIS_OPTIONS = {
    "socket_timeout": 10,
    "socket_connect_timeout": 5,
    "socket_keepalive": True,
    "health_check_interval": 30,
}
CHAT_CHANNEL_LAYER = os.environ.get("CHAT_CHANNEL_LAYER", "core")
if REDIS_URL and CHAT_CHANNEL_LAYER == "pubsub":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [{"address": REDIS_URL, **CHAT_LAYER_REDIS_OPTIONS}]},
        }
    }
elif REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, **CHAT_LAYER_REDIS_OPTIONS}],
                "capacity": 1000,
            },
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "chat.realtime.layers.InProcessChannelLayer",
            "CONFIG": {"capacity": 1000},
        }
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
# Uploads (avatars) go through the storage API: files under MEDIA_ROOT here; Django serves
# them in debug only, a production proxy serves MEDIA_ROOT at MEDIA_URL (or swap the
# "default" storage for django-storages).
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("DJANGO_MEDIA_ROOT", BASE_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "chatsite.storage.StaticFilesStorage"
        )
    },
}

# Email (password resets). EMAIL_HOST set: send through that SMTP server (EMAIL_PORT,
# EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS or EMAIL_USE_SSL). Unset: print mails
# to the console (the log), so a site with no mail server never fails on Django's default
# SMTP server at localhost:25. DJANGO_EMAIL_BACKEND overrides either choice.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_BACKEND = os.environ.get("DJANGO_EMAIL_BACKEND") or (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_PORT = int(os.environ.get("EMAIL_PORT") or 587)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", not env_bool("EMAIL_USE_SSL", False))
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = os.environ.get("DJANGO_DEFAULT_FROM_EMAIL", "chatsite@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Chat limits.
CHAT_MAX_MESSAGE_LENGTH = int(os.environ.get("CHAT_MAX_MESSAGE_LENGTH", "4000"))
CHAT_PAGE_SIZE = 50  # messages in a room page and in a `join` without `since`
# Files attached to messages (chat/attachments.py): the largest upload, in bytes; the most
# per message; uploads per user ("30/600": 30 per 10 minutes; "off"). Attachments live in
# the default storage under "attachments/" and are served only through a view that checks
# who may read the room (never publicly at MEDIA_URL: README, "A production deployment").
CHAT_UPLOAD_MAX_BYTES = int(os.environ.get("CHAT_UPLOAD_MAX_BYTES", str(10 * 1024 * 1024)))
CHAT_UPLOAD_MAX_FILES = 5
CHAT_UPLOAD_RATE_LIMIT = os.environ.get("CHAT_UPLOAD_RATE_LIMIT", "30/600")
CHAT_REPLAY_LIMIT = 500  # messages at most in a `join` with `since`
CHAT_HISTORY_LIMIT = 100  # cap on `history` limit
CHAT_PEOPLE_PAGE_SIZE = 50  # people on a page of the directory (/people/)
CHAT_SEARCH_PAGE_SIZE = 20  # results on a page of the message search (/search/)
# A search ranks at most this many of its newest matches (and counts no further): a word
# found in every third of 200,000 messages costs what a rare one does (docs/performance.md).
CHAT_SEARCH_MAX_MATCHES = 1000
# Rooms on a page of the lobby: no more than one socket follows (CHAT_MAX_ROOMS_PER_SOCKET),
# so the lobby's live counts cover every room it lists.
CHAT_LOBBY_PAGE_SIZE = 50
# A page of messages (joined, history) holds at most this many bytes, so it always fits in
# one WebSocket frame (daphne sends none over 1 MiB); a longer page is cut, with has_more.
CHAT_FRAME_BUDGET_BYTES = 512 * 1024
CHAT_EDIT_WINDOW_SECONDS = 15 * 60  # authors may edit a message this long after posting it
# A message's reaction summary names at most this many people per emoji (the first to
# react); its count is always the full one.
CHAT_REACTION_NAMES = 50
# @room and @here notify a whole room: anyone may use them in a room of fewer members than
# this (and in DMs); in a larger room only its owners and staff (Zulip's default is 15 too).
CHAT_EVERYONE_MENTION_MEMBERS = 15
# Abuse limits (docs/security.md). Sends per user: "10/10" = 10 messages per 10 seconds, in
# bursts; "off" for benchmarks and load tests. Typing frames per user likewise.
CHAT_RATE_LIMIT = os.environ.get("CHAT_RATE_LIMIT", "10/10")
CHAT_TYPING_RATE_LIMIT = os.environ.get("CHAT_TYPING_RATE_LIMIT", "5/10")
CHAT_EDIT_RATE_LIMIT = os.environ.get("CHAT_EDIT_RATE_LIMIT", "10/10")  # edits + deletes
CHAT_READ_RATE_LIMIT = os.environ.get("CHAT_READ_RATE_LIMIT", "20/10")  # stored read marks
CHAT_REACT_RATE_LIMIT = os.environ.get("CHAT_REACT_RATE_LIMIT", "20/10")  # reactions set
# Joins and history pages, per user, or per address for anonymous sockets: join/leave churn
# floods a room with presence, and history pages are the heaviest frames. 60 lets a tab
# that reconnects rejoin all its rooms (at most 50) at once.
CHAT_JOIN_RATE_LIMIT = os.environ.get("CHAT_JOIN_RATE_LIMIT", "60/30")
CHAT_HISTORY_RATE_LIMIT = os.environ.get("CHAT_HISTORY_RATE_LIMIT", "20/10")
CHAT_MAX_ROOMS_PER_SOCKET = 50
CHAT_MAX_SOCKETS_PER_USER = int(os.environ.get("CHAT_MAX_SOCKETS_PER_USER", "20"))
# Anonymous sockets open at once per client address (chat/addresses.py): room for a school or
# an office of readers behind one address, not for one client opening thousands.
CHAT_MAX_ANONYMOUS_SOCKETS_PER_ADDRESS = int(
    os.environ.get("CHAT_MAX_ANONYMOUS_SOCKETS_PER_ADDRESS", "50")
)
CHAT_MAX_FRAME_BYTES = 64 * 1024
# The HTTP fallback (chat/realtime/fallback.py): a connection whose client has POSTed
# nothing (its keepalives included) for this long is ended like a closed socket; the stream
# carries a comment this often, so proxies keep it open; and a POST's limits.
CHAT_FALLBACK_IDLE_SECONDS = float(os.environ.get("CHAT_FALLBACK_IDLE_SECONDS", "60"))
CHAT_FALLBACK_KEEPALIVE_SECONDS = float(os.environ.get("CHAT_FALLBACK_KEEPALIVE_SECONDS", "15"))
CHAT_FALLBACK_MAX_FRAMES_PER_POST = 50
CHAT_FALLBACK_MAX_POST_BYTES = 256 * 1024
# Frames POSTed to a connection and not yet handled; past this the connection is ended
# (4008) and its client reconnects, as a socket's reads stop (daphne_limits.py).
CHAT_FALLBACK_MAX_QUEUED_FRAMES = 2 * CHAT_FALLBACK_MAX_FRAMES_PER_POST
# Long-polling (where a proxy buffers the stream): a poll with nothing to take is answered
# empty after this long; frames sent and not yet acked by a poll, past which the connection
# is ended (4008), as a socket whose reader stopped (daphne_limits.py).
CHAT_FALLBACK_POLL_SECONDS = float(os.environ.get("CHAT_FALLBACK_POLL_SECONDS", "25"))
CHAT_FALLBACK_MAX_UNACKED_BYTES = 1024 * 1024
# Each process re-adds itself to its room groups this often; well below the layer's
# group_expiry (24 h by default), after which a layer forgets a member.
CHAT_GROUP_REFRESH_SECONDS = 3600
# Rooms' events travel the channel layer in this many shard groups (layer_events.carrier):
# a process subscribes to the shards of its rooms, and the publisher sends each shard the
# events of all its rooms at once, so a hundred busy rooms cost one layer message a turn
# and shard, not a hundred. One by default: every worker then receives every room's events
# and drops those of rooms it does not host, which costs less than a layer message per
# shard and turn does unless workers host disjoint rooms (docs/performance.md, item 23).
# Every worker of a site must use the same number.
CHAT_FANOUT_SHARDS = int(os.environ.get("CHAT_FANOUT_SHARDS", "1"))
# A send is acked once its broadcast was handed to this process's sockets, or after this
# many seconds (a lost broadcast must not hold an ack forever).
CHAT_ACK_WAITS_FOR_FANOUT = 2.0
# Frames queued for a socket whose transport makes sends wait (daphne's never do); past
# this, that socket alone misses broadcasts, and its client resyncs.
CHAT_SOCKET_BACKLOG = 256
# What one socket may make daphne hold (chatsite/patches/daphne_limits.py; docs/security.md,
# "Slow and flooding clients"). MAX_BUFFER_BYTES: bytes written to it and not yet read, past
# which the server drops it (its client reconnects and resyncs); 1 MiB is some 3,000 typical
# message frames. MAX_QUEUED_FRAMES: frames it sent that the consumer has not handled yet (or
# MAX_BUFFER_BYTES of them), past which the server stops reading it until half are handled;
# 64 lets a reconnecting tab rejoin all its rooms (at most 50) without a pause. 0: no limit.
CHAT_SOCKET_MAX_BUFFER_BYTES = int(os.environ.get("CHAT_SOCKET_MAX_BUFFER_BYTES", str(2**20)))
CHAT_SOCKET_MAX_QUEUED_FRAMES = int(os.environ.get("CHAT_SOCKET_MAX_QUEUED_FRAMES", "64"))
# A page a client asked for (a join's messages, a history or thread page: up to
# CHAT_FRAME_BUDGET_BYTES, maybe more than MAX_BUFFER_BYTES) is sent once its connection
# holds no more than this unsent, and the cap does not count what the connection holds up to
# the page's end until it is written: a tab that rejoins all its rooms at once is never
# dropped for the pages it asked for, and one that does not read holds at most one page more.
# The same for the HTTP fallback (its stream, and its polls' unacked frames).
CHAT_PAGE_LOW_WATER_BYTES = 64 * 1024
# Presence is shared through Redis whenever the channel layer is; an entry not refreshed
# for this many seconds belonged to a dead worker (its users go offline within TTL + TTL/3).
CHAT_PRESENCE_REDIS_URL = REDIS_URL
# Rate limits and the socket cap count for the whole site through the same Redis.
CHAT_LIMITS_REDIS_URL = REDIS_URL
CHAT_PRESENCE_TTL = float(os.environ.get("CHAT_PRESENCE_TTL", "30"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Timed, leveled and named: an operator reading a worker's log after an outage needs to
    # know when each line was written (daphne's access lines carry their own time).
    "formatters": {"timed": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "timed"}},
    "root": {"handlers": ["console"], "level": "INFO" if DEBUG else "WARNING"},
    # Django's own config gives "django" a console handler too; let it reach the root once.
    "loggers": {"django": {"handlers": [], "level": "INFO", "propagate": True}},
}

# --- Security --------------------------------------------------------------------------------
# What a public site needs beyond the defaults: what `manage.py check --deploy` asks for, a
# Content-Security-Policy, and a failed-login throttle. docs/security.md lists what holds and
# the test that proves it. (The secret key is checked where it is read, at the top.)

# DJANGO_HTTPS: visitors reach the site over HTTPS, through a TLS-terminating proxy that sets
# X-Forwarded-Proto (README, "A production deployment"). On by default when debug is off; a
# production-like run on plain http (deploy/serve.sh on 127.0.0.1) sets DJANGO_HTTPS=0.
HTTPS = env_bool("DJANGO_HTTPS", not DEBUG)
if HTTPS:
    # The proxy must set this header on every request, overwriting any the client sent.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", HTTPS)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
# Sent only on HTTPS responses. A year, with subdomains and preload, is what `check --deploy`
# asks for; turning either off is a deliberate choice that it will warn about.
SECURE_HSTS_SECONDS = int(
    os.environ.get("DJANGO_SECURE_HSTS_SECONDS") or (365 * 24 * 3600 if HTTPS else 0)
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# The Content-Security-Policy of every response (chat/web/middleware.py), in the format of Django
# 6.0's SECURE_CSP. Scripts and styles come only from our static files: no inline script,
# event handler or style attribute runs, so text that slips into a page as HTML stays inert.
# Pages pass data to scripts with `json_script`, which is data, not script. 'self' covers the
# page's own ws:/wss: origin (CSP Level 3), which is all the socket needs.
SECURE_CSP = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}
# Right after SecurityMiddleware, so that every response carries it, static files included.
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
    "chat.web.middleware.ContentSecurityPolicyMiddleware",
)

# Failed logins, on the site's form and the admin's (chat/web/throttle.py): once a username has
# this many failures within the window, or an address has, further attempts are answered 429
# without checking the password until the window (from the first failure) ends. An address
# gets more: an office or a phone network puts many people behind one.
LOGIN_THROTTLE_WINDOW = 15 * 60  # seconds
LOGIN_THROTTLE_USERNAME_FAILURES = 5
LOGIN_THROTTLE_ADDRESS_FAILURES = 20
# Accounts created per address, and rooms created per user and per address (chat/web/throttle.py):
# "5/3600" = 5 per hour, counted from the first; "off" turns one off.
CHAT_SIGNUP_RATE_LIMIT = os.environ.get("CHAT_SIGNUP_RATE_LIMIT", "5/3600")
CHAT_ROOM_CREATE_RATE_LIMIT = os.environ.get("CHAT_ROOM_CREATE_RATE_LIMIT", "10/3600")

# Addresses (or networks, e.g. 10.0.0.0/8) of the proxies in front of daphne. A request from
# one of them is counted against the client its X-Forwarded-For names (chat/addresses.py);
# from anyone else, the header is ignored. Empty by default: no proxy is trusted, and daphne
# runs without --proxy-headers, so a client cannot pick its own address to dodge a limit.
CHAT_TRUSTED_PROXIES = env_list("CHAT_TRUSTED_PROXIES", "")

# The cache holds the throttle's counters: in Redis when REDIS_URL is set, so that every
# worker counts together, else in this process's memory.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "chatsite",
            # A Redis that hangs costs a login at most this long (chat/web/throttle.py).
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "chatsite",
        }
    }
# --- End of security -------------------------------------------------------------------------
