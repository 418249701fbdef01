"""Fixtures every test gets: a fresh channel layer, presence, limits and cache, a fast
password hasher, and database connections that never outlive the test database."""

import gc
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import SyncToAsync
from channels.layers import channel_layers
from django.conf import settings
from django.db import connections


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings: None) -> None:
    """Close connections after each unit of work, so threads that ran database_sync_to_async
    leave none open to block the test database's teardown (PostgreSQL refuses to drop it)."""
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0


@pytest.fixture(scope="session", autouse=True)
def close_worker_thread_connections(django_db_setup: None) -> Iterator[None]:
    """Before the test database is dropped, close the connection of the thread that ran
    database_sync_to_async (PostgreSQL refuses to drop a database still in use), and those
    that ended threads left in reference cycles: the project's collector settings
    (chatsite/asgi.py) run full collections rarely, so such a connection could still be open
    at the end ("database … is being accessed by other users")."""
    yield
    gc.collect()
    SyncToAsync.single_thread_executor.submit(connections.close_all).result(timeout=30)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    """PBKDF2 costs each test user ~0.2 s; the tests are about chat, not hashing (the live
    servers, separate processes, keep the real hasher, and so do their few users)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def fresh_realtime_state(settings: Any) -> None:
    """Each test gets a new in-memory channel layer (bound to its event loop) and in-process
    presence, even where REDIS_URL is set (tests that want Redis use it explicitly); the
    fan-out and presence registries are per layer and per loop, so they are new too."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "chat.realtime.layers.InProcessChannelLayer"}}
    settings.CHAT_PRESENCE_REDIS_URL = ""
    settings.CHAT_LIMITS_REDIS_URL = ""
    settings.CHAT_RATE_LIMIT = "off"  # tests of the limits turn it on
    settings.CHAT_TYPING_RATE_LIMIT = "off"
    settings.CHAT_JOIN_RATE_LIMIT = "off"
    settings.CHAT_HISTORY_RATE_LIMIT = "off"
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def fresh_cache(settings: Any) -> None:
    """Each test gets an empty in-process cache (the login throttle counts in it), even where
    REDIS_URL is set; tests that want Redis use it explicitly."""
    from django.core.cache import caches

    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "tests"}
    }
    caches["default"].clear()


@pytest.fixture(autouse=True)
def media_in_a_temporary_directory(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Uploads (avatars) go to a directory of the test's own, never the checkout's media/."""
    settings.MEDIA_ROOT = tmp_path_factory.mktemp("media")
