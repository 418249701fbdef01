"""Changes of who may do what, which must reach open sockets: a logout; a change to an
account that ends its sessions (deactivated, password changed, deleted); a room made
private; a member leaving a private room (in the admin or in code, from either side of the
relation). Bans and archiving go through their services, which tell the sockets themselves.

A socket keeps the user and rooms it saw at its handshake and joins, so every such change
is sent to it here, after commit, on every worker (docs/security.md, "Rights taken away")."""

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver
from django.http import HttpRequest

from . import services
from .models import Attachment, Membership, Room


@receiver(user_logged_out)
def close_sockets_on_logout(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    if user is not None:
        services.user_sockets_close(user_id=user.pk, reason="You logged out.")


# The user fields whose change ends the user's sessions: `password` is what Django's
# session auth hash is made of, so a new one logs the other sessions out over HTTP.
_SESSION_FIELDS = ("is_active", "password")


@receiver(pre_save, sender=get_user_model())
def remember_session_fields(
    sender: Any, instance: Any, update_fields: frozenset[str] | None, **kwargs: Any
) -> None:
    """Read what the row holds before the save, for close_sockets_of_ended_sessions."""
    watched = _SESSION_FIELDS if update_fields is None else set(_SESSION_FIELDS) & update_fields
    if instance.pk is None or not watched:
        instance._chat_saved = None
        return
    instance._chat_saved = sender.objects.filter(pk=instance.pk).values(*watched).first()


@receiver(post_save, sender=get_user_model())
def close_sockets_of_ended_sessions(sender: Any, instance: Any, **kwargs: Any) -> None:
    """Deactivated, or a new password: every socket of the user is told why and closed, as
    their sessions are (the tab that changed the password keeps its session: a reload)."""
    saved = getattr(instance, "_chat_saved", None) or {}
    if not instance.is_active:
        services.user_sockets_close(user_id=instance.pk, reason="This account was deactivated.")
    elif "password" in saved and saved["password"] != instance.password:
        services.user_sockets_close(user_id=instance.pk, reason=services.PASSWORD_REASON)


@receiver(post_delete, sender=get_user_model())
def close_sockets_of_deleted_users(sender: Any, instance: Any, **kwargs: Any) -> None:
    services.user_sockets_close(user_id=instance.pk, reason="This account was deleted.")


@receiver(pre_save, sender=Room)
def remember_room_privacy(
    sender: Any, instance: Any, update_fields: frozenset[str] | None, **kwargs: Any
) -> None:
    """Read whether the room was private before the save, for recheck_sockets_of_room."""
    instance._chat_was_private = None
    if instance.pk is not None and (update_fields is None or "is_private" in update_fields):
        rows = Room.objects.filter(pk=instance.pk).values_list("is_private", flat=True)
        instance._chat_was_private = rows.first()


@receiver(post_save, sender=Room)
def recheck_sockets_of_room(sender: Any, instance: Any, **kwargs: Any) -> None:
    """A public room made private: whoever may no longer read it leaves it, on every tab."""
    if instance.is_private and getattr(instance, "_chat_was_private", None) is False:
        services.room_made_private(room=instance)


@receiver(post_delete, sender=Membership)
def remove_sockets_of_former_members(sender: Any, instance: Membership, **kwargs: Any) -> None:
    """A membership ended (the member left, the admin or code removed it, `members.remove`
    or `clear`): whoever left a private room leaves it on every tab at once."""
    room = Room.objects.filter(pk=instance.room_id).first()
    if room is not None:
        services.room_members_removed(room=room, user_ids=[instance.user_id])


@receiver(post_delete, sender=Attachment)
def delete_attachment_files(sender: Any, instance: Attachment, **kwargs: Any) -> None:
    """An attachment's row gone by whatever path (its message deleted, an upload swept, its
    room or uploader deleted): its stored bytes go too, once the deletion commits."""
    services.attachment_files_delete_on_commit(instance)
