from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ChatConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "chat"
    verbose_name = "Chat"

    def ready(self) -> None:
        from django.conf import settings

        from . import signals  # noqa: F401 - connects the receivers
        from .realtime.limits import parse_rate

        # A malformed limit stops the site at start, not at someone's first message.
        parse_rate(settings.CHAT_RATE_LIMIT)
        parse_rate(settings.CHAT_TYPING_RATE_LIMIT)
        check_layer_timeouts(settings.CHANNEL_LAYERS)
        check_fanout_shards(settings.CHAT_FANOUT_SHARDS)
        post_migrate.connect(repair_search_index, sender=self)


def repair_search_index(using: str, **kwargs: object) -> None:
    """After `migrate` on SQLite: put back the search index's triggers if a table remake
    dropped them (chat/fulltext.py `sqlite_ensure`)."""
    from django.db import connections

    from . import fulltext

    if connections[using].vendor == "sqlite":
        fulltext.sqlite_ensure(connections[using])


def check_fanout_shards(shards: object) -> None:
    """Refuse to start without a whole number of shards, 1 or more (settings:
    CHAT_FANOUT_SHARDS), rather than fail each room's first broadcast."""
    from django.core.exceptions import ImproperlyConfigured

    if not isinstance(shards, int) or isinstance(shards, bool) or shards < 1:
        raise ImproperlyConfigured(f"CHAT_FANOUT_SHARDS must be 1 or more (got {shards!r})")


def check_layer_timeouts(layers: dict) -> None:
    """Refuse to start with a Redis layer whose replies may time out during its own blocking
    pop (settings: CHAT_LAYER_REDIS_OPTIONS): a quiet process would lose broadcasts."""
    from channels_redis.core import RedisChannelLayer
    from django.core.exceptions import ImproperlyConfigured
    from django.utils.module_loading import import_string

    for alias, config in layers.items():
        backend = import_string(config["BACKEND"])
        if not issubclass(backend, RedisChannelLayer):
            continue
        pop = backend.brpop_timeout  # channels-redis' blocking pop, in seconds
        for host in config.get("CONFIG", {}).get("hosts", []):
            timeout = host.get("socket_timeout") if isinstance(host, dict) else None
            if timeout is None or timeout <= pop:
                raise ImproperlyConfigured(
                    f"CHANNEL_LAYERS[{alias!r}]: each Redis host needs a socket_timeout above "
                    f"channels-redis' {pop} s blocking pop (got {timeout!r})"
                )
