"""ASGI entry point: Django for HTTP, the chat consumer for WebSockets at /ws/chat/, and the
same consumer over HTTP at /fallback/chat/ for networks that block WebSockets."""

import gc
import os
from collections.abc import Awaitable
from typing import Any

from asgiref.sync import markcoroutinefunction
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
# Build Django's app first: it sets Django up before anything imports models.
django_asgi_app = get_asgi_application()

from channels.routing import URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import re_path  # noqa: E402

from chat.realtime.entry import SocketEntry  # noqa: E402
from chat.realtime.routing import http_urlpatterns  # noqa: E402
from chatsite import patches  # noqa: E402

# Fails at startup, naming the internal, if an upgraded library moved one (chatsite/patches).
patches.install_all(settings)

APPLICATIONS = {
    "http": URLRouter([*http_urlpatterns, re_path(r"", django_asgi_app)]),
    # The Origin check (not channels' AllowedHostsOriginValidator: it ignores scheme and
    # port), the session and the user, then ChatConsumer; one call, no middleware stack.
    "websocket": SocketEntry("/ws/chat/"),
}


@markcoroutinefunction  # an ASGI 3 application to servers: it returns the awaitable to run
def application(scope: dict[str, Any], receive: Any, send: Any) -> Awaitable[None]:
    """channels' ProtocolTypeRouter, but returning the application's coroutine rather than
    awaiting it in one of its own, which each open socket kept for as long as it was open
    (chat/realtime/entry.py)."""
    try:
        chosen = APPLICATIONS[scope["type"]]
    except KeyError:
        raise ValueError(f"No application configured for scope type {scope['type']!r}") from None
    return chosen(scope, receive, send)


# Startup made over a hundred thousand objects that live as long as the process (modules,
# settings, URL patterns, models). In the collector's oldest generation each full collection
# walked them all, 84-97 ms with the event loop stopped, a few times a minute under load:
# that was the acks' p99 (docs/performance.md, Analysis item 15). Frozen, they are skipped
# (7-12 ms a full collection); whatever is made from here on is collected as before.
gc.freeze()

# A full collection walks every live object: with 5,000 sockets open, about a million and
# 0.3-0.6 s with the event loop stopped. While sockets pile up (a reconnect wave after a
# deploy), the default policy (one considered every 10 middle-generation collections, run
# when the survivors grew by a quarter) ran 12 during a 5,000-socket storm, 3.1 s of its
# 5.0. Considering one every 100 leaves one or two (Analysis item 16). Young objects are
# collected as often as before.
gc.set_threshold(*gc.get_threshold()[:2], 100)
