"""Account changes that must reach open sockets: a logout, a deactivation."""

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.http import HttpRequest

from . import services


@receiver(user_logged_out)
def close_sockets_on_logout(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    if user is not None:
        services.user_sockets_close(user_id=user.pk, reason="You logged out.")


@receiver(post_save, sender=get_user_model())
def close_sockets_of_deactivated_users(sender: Any, instance: Any, **kwargs: Any) -> None:
    if not instance.is_active:
        services.user_sockets_close(user_id=instance.pk, reason="This account was deactivated.")
