"""Checks for chatsite's subclass overrides of Channels, which rely on its internals too.

These are ordinary subclasses, installed by using them, so there is nothing to patch here;
but each replaces or bypasses a piece of Channels whose inside it assumes:

- `ChatConsumer.dispatch` (chat/realtime/consumers.py) is `AsyncConsumer.dispatch` without its
  per-message `aclose_old_connections` thread hop: that is only safe while the stock
  dispatch does nothing else.
- `InProcessChannelLayer._clean_expired` (chat/realtime/layers.py) throttles the private sweep that
  `InMemoryChannelLayer` runs on every receive and group send.
- `RawSendMiddleware` (chat/realtime/transport.py) lets the HTTP fallback stream's events skip
  the session middleware's send wrapper: only safe while that wrapper does nothing for the
  messages it passes on, and useful only while the middlewares inside pass the scope on as a
  copy. (WebSockets no longer go through channels' middlewares: chat/realtime/entry.py.)
"""

from channels import consumer
from channels.auth import AuthMiddleware
from channels.consumer import AsyncConsumer
from channels.layers import InMemoryChannelLayer
from channels.middleware import BaseMiddleware
from channels.sessions import CookieMiddleware, InstanceSessionWrapper

from .checks import fail, require_attrs, require_calls, require_params, require_source

CONSUMER_DISPATCH = "channels_consumer_dispatch"
LAYER_SWEEP = "channels_layer_sweep"
SESSION_SEND = "channels_session_send"


def check_consumer_dispatch() -> None:
    """channels' dispatch still only finds the handler, closes old connections and calls
    it, and the consumer's __call__ still only sets up and hands it every message; and
    get_handler_name is there."""
    require_attrs(
        CONSUMER_DISPATCH,
        "channels",
        consumer,
        ["get_handler_name"],
        label="channels.consumer",
    )
    label = "channels.consumer.AsyncConsumer.dispatch"
    dispatch = getattr(AsyncConsumer, "dispatch", None)
    require_params(CONSUMER_DISPATCH, "channels", dispatch, ["self", "message"], label=label)
    require_calls(
        CONSUMER_DISPATCH,
        "channels",
        dispatch,
        {"getattr", "get_handler_name", "aclose_old_connections", "handler", "ValueError"},
        label=label,
    )
    # ChatConsumer.__call__ replaces this too, reading and dispatching in its own task: it
    # must still do nothing but set the scope, the (absent) layer and `send`, and dispatch
    # what `receive` gives until StopConsumer.
    call = vars(AsyncConsumer).get("__call__")
    label = "channels.consumer.AsyncConsumer.__call__"
    require_source(
        CONSUMER_DISPATCH,
        "channels",
        call,
        ["self.dispatch", "self.scope = scope", "self.base_send = send", "except StopConsumer"],
        label=label,
    )
    require_calls(
        CONSUMER_DISPATCH,
        "channels",
        call,
        {"get_channel_layer", "new_channel", "partial", "async_to_sync", "await_many_dispatch"},
        label=label,
    )


def check_layer_sweep() -> None:
    """InMemoryChannelLayer still sweeps with `_clean_expired()` on receive and group send,
    and still takes its settings as keyword arguments."""
    require_params(
        LAYER_SWEEP,
        "channels",
        getattr(InMemoryChannelLayer, "_clean_expired", None),
        ["self"],
        label="channels.layers.InMemoryChannelLayer._clean_expired",
    )
    for method in ("receive", "group_send"):
        require_source(
            LAYER_SWEEP,
            "channels",
            getattr(InMemoryChannelLayer, method, None),
            ["self._clean_expired()"],
            label=f"channels.layers.InMemoryChannelLayer.{method}",
        )
    require_source(
        LAYER_SWEEP,
        "channels",
        InMemoryChannelLayer.__init__,
        ["**kwargs"],
        label="channels.layers.InMemoryChannelLayer.__init__",
    )


def check_session_send() -> None:
    """The session wrapper's send saves and sets cookies only for HTTP responses and
    otherwise just passes the message on; and the middlewares under RawSendMiddleware copy
    the scope (keeping its key) rather than building a new one."""
    label = "channels.sessions.InstanceSessionWrapper"
    for types in ("save_message_types", "cookie_response_message_types"):
        handled = getattr(InstanceSessionWrapper, types, None)
        if handled is None:
            raise fail(SESSION_SEND, "channels", f"{label}.{types}", "does not exist")
        if any(kind.startswith("websocket.") for kind in handled):
            raise fail(
                SESSION_SEND,
                "channels",
                f"{label}.{types} holding no websocket message type",
                f"holds {handled!r}",
            )
    require_source(
        SESSION_SEND,
        "channels",
        getattr(InstanceSessionWrapper, "send", None),
        ['message["type"] in self.save_message_types', "return await self.real_send(message)"],
        label=f"{label}.send",
    )
    for copier, snippet in (
        (InstanceSessionWrapper.__init__, "dict(scope)"),
        (CookieMiddleware.__call__, "dict(scope,"),
        (AuthMiddleware.__call__, "dict(scope)"),
        (BaseMiddleware.__call__, "dict(scope)"),
    ):
        require_source(
            SESSION_SEND,
            "channels",
            copier,
            [snippet],
            label=f"{copier.__module__}.{copier.__qualname__}",
        )
