"""Changes that must reach open sockets: a logout, a deactivation, a member leaving a
private room (in the admin or in code, from either side of the relation)."""

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import m2m_changed, post_save
from django.dispatch import receiver
from django.http import HttpRequest

from . import services
from .models import Room


@receiver(user_logged_out)
def close_sockets_on_logout(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    if user is not None:
        services.user_sockets_close(user_id=user.pk, reason="You logged out.")


@receiver(post_save, sender=get_user_model())
def close_sockets_of_deactivated_users(sender: Any, instance: Any, **kwargs: Any) -> None:
    if not instance.is_active:
        services.user_sockets_close(user_id=instance.pk, reason="This account was deactivated.")


@receiver(m2m_changed, sender=Room.members.through)
def remove_sockets_of_former_members(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: set[int] | None, **kwargs: Any
) -> None:
    """Room.members changed: whoever left a private room leaves it on every tab at once."""
    if action == "pre_clear":  # the set is gone after the clear: remember it now
        related = instance.chat_rooms if reverse else instance.members
        instance._chat_cleared = set(related.values_list("pk", flat=True))
        return
    if action == "post_clear":
        pk_set = getattr(instance, "_chat_cleared", set())
    elif action != "post_remove":
        return
    if reverse:  # user.chat_rooms.remove(rooms…)
        for room in Room.objects.filter(pk__in=pk_set or ()):
            services.room_members_removed(room=room, user_ids=[instance.pk])
    else:
        services.room_members_removed(room=instance, user_ids=sorted(pk_set or ()))
