"""Rooms and their messages. The database is the source of truth; sockets are the fast path."""

from django.conf import settings
from django.db import models
from django.urls import reverse


class Room(models.Model):
    name = models.CharField(max_length=80)
    slug = models.SlugField(max_length=80, unique=True)
    topic = models.CharField(max_length=200, blank=True)
    is_private = models.BooleanField(
        default=False, help_text="Only members can see a private room; others get a 404."
    )
    is_archived = models.BooleanField(
        default=False, help_text="An archived room is read-only and can no longer be joined."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="created_rooms",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="chat_rooms",
        help_text="Who may see a private room.",
    )
    # The seq of the newest message; bumped under a row lock to number messages gaplessly.
    last_seq = models.PositiveBigIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["is_private", "is_archived"], name="room_visibility_idx")]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("chat:room", kwargs={"slug": self.slug})


class Message(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_messages"
    )
    body = models.TextField()
    seq = models.PositiveBigIntegerField(editable=False)
    # Chosen by the sending client so that a retried send stores nothing new.
    # NULL (not "") when absent: NULLs never collide in the (room, author, client_id) constraint.
    client_id = models.CharField(max_length=64, null=True, blank=True, editable=False)  # noqa: DJ001
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["room", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["room", "seq"], name="message_room_seq_unique"),
            models.UniqueConstraint(
                fields=["room", "author", "client_id"], name="message_room_author_client_id_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} in {self.room_id} by {self.author_id}"
