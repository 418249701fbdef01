from django.apps import AppConfig


class ChatConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "chat"
    verbose_name = "Chat"

    def ready(self) -> None:
        from django.conf import settings

        from . import signals  # noqa: F401 - connects the receivers
        from .limits import parse_rate

        # A malformed limit stops the site at start, not at someone's first message.
        parse_rate(settings.CHAT_RATE_LIMIT)
        parse_rate(settings.CHAT_TYPING_RATE_LIMIT)
