"""ASGI entry point: Django for HTTP, the chat consumer for WebSockets at /ws/chat/, and the
same consumer over HTTP at /fallback/chat/ for networks that block WebSockets."""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
# Build Django's app first: it sets Django up before anything imports models.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import re_path  # noqa: E402

from chat.realtime.origins import SameOriginValidator  # noqa: E402
from chat.realtime.routing import http_urlpatterns, websocket_urlpatterns  # noqa: E402
from chat.realtime.transport import RawSendMiddleware  # noqa: E402
from chatsite import patches  # noqa: E402

# Fails at startup, naming the internal, if an upgraded library moved one (chatsite/patches).
patches.install_all(settings)

application = ProtocolTypeRouter(
    {
        "http": URLRouter([*http_urlpatterns, re_path(r"", django_asgi_app)]),
        "websocket": RawSendMiddleware(
            # Not channels' AllowedHostsOriginValidator: it ignores scheme and port.
            SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
        ),
    }
)

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
