from channels.auth import AuthMiddlewareStack
from django.urls import path

from .consumers import ChatConsumer
from .fallback import FallbackPoll, FallbackStream
from .transport import RawSendMiddleware

# The same consumer over HTTP, for networks that block WebSockets (chat/realtime/fallback.py);
# chatsite/asgi.py sends every other HTTP request to Django. Its POSTs are a Django view.
http_urlpatterns = [
    path(
        "fallback/chat/",
        RawSendMiddleware(AuthMiddlewareStack(FallbackStream(ChatConsumer.as_asgi()))),
    ),
    path("fallback/chat/poll/", AuthMiddlewareStack(FallbackPoll(ChatConsumer.as_asgi()))),
]
