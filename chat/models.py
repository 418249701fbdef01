"""Rooms and their messages. The database is the source of truth; sockets are the fast path."""

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse

from . import reactions, visible_text

# Direct-message rooms get slugs in this namespace (random ones, chat/services.py); no other
# room may take one, so nobody can make a room that looks like, or stands in for, a DM.
RESERVED_SLUG_RE = re.compile(r"^dm(?:[-_]|$)", re.IGNORECASE)


def slug_is_reserved(slug: str) -> bool:
    """Whether `slug` lies in the direct-message namespace, which only DMs may use."""
    return bool(RESERVED_SLUG_RE.match(slug))


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
    is_direct = models.BooleanField(
        default=False,
        editable=False,
        help_text="A direct-message room: private, of two to eight users, at /chat/@username/"
        " (or /chat/@name,name/ for a group).",
    )
    # What makes a DM: its users' ids in increasing order, joined by ":" ("3:5", "3:5:9").
    # Unique, so a set of people has one DM even when they open it at the same moment; NULL
    # for other rooms. Someone leaving a group DM re-keys it to the people left, unless
    # those people have a DM already: then it keeps going unkeyed (NULL), found only in its
    # members' sidebars (services.membership_leave). 8 ids of up to 20 digits fit.
    direct_key = models.CharField(
        max_length=200, null=True, blank=True, unique=True, editable=False
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="created_rooms",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # A private room's members are who may see it; a public room's, who has it in "your
    # rooms" (the sidebar, unread counts, mentions). One row each: Membership.
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        through="Membership",
        blank=True,
        related_name="chat_rooms",
    )
    # The seq of the newest message; bumped under a row lock to number messages gaplessly.
    last_seq = models.PositiveBigIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["is_private", "is_archived"], name="room_visibility_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(is_direct=False, direct_key__isnull=True)
                | models.Q(is_direct=True, is_private=True),
                name="room_direct_is_private",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("chat:room", kwargs={"slug": self.slug})

    def clean(self) -> None:
        """Forms (the admin's) may not put a room other than a DM in the DM namespace."""
        if not self.is_direct and slug_is_reserved(self.slug or ""):
            raise ValidationError(
                {"slug": "Slugs starting with “dm-” are kept for direct messages."}
            )


class Membership(models.Model):
    """A user in a room: for a private room, the right to see it; for any room, its place
    in the user's sidebar ("your rooms"), its unread count and its mentions. An owner also
    runs the room (invites, removes, renames, archives: chat/access.py `can_manage`)."""

    class Role(models.TextChoices):
        OWNER = "owner", "owner"
        MEMBER = "member", "member"

    class Notify(models.TextChoices):
        """What of the room notifies the member (a banner, a browser notification): every
        message; only mentions of them, @room and @here; or nothing (a muted room still
        counts unread, quietly)."""

        ALL = "all", "all messages"
        MENTIONS = "mentions", "mentions only"
        MUTE = "mute", "nothing (muted)"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_memberships"
    )
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="memberships")
    starred = models.BooleanField(default=False, help_text="Listed first in the sidebar.")
    role = models.CharField(
        max_length=10,
        choices=Role.choices,
        default=Role.MEMBER,
        help_text="Owners run the room; a room made by a user keeps at least one.",
    )
    # A direct message's members start at "all" (services.direct_group_get_or_create).
    notify = models.CharField(
        max_length=10,
        choices=Notify.choices,
        default=Notify.MENTIONS,
        help_text="Which of the room's messages notify this member.",
    )
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "room"], name="membership_user_room_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.room}"


class Message(models.Model):
    # No index of its own: the (room, seq), (room, rev) and (room, author, client_id) ones
    # lead with it. One on room alone tempted PostgreSQL's planner into reading every
    # message of a room to count the few after a read mark (docs/performance.md).
    room = models.ForeignKey(
        Room, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_messages"
    )
    body = models.TextField()
    # The body rendered and sanitised (chat/formatting.py) when it was written or edited:
    # what pages and clients show. Never rendered on read.
    body_html = models.TextField(blank=True, default="", editable=False)
    seq = models.PositiveBigIntegerField(editable=False)
    # Chosen by the sending client so that a retried send stores nothing new.
    # NULL (not "") when absent: NULLs never collide in the (room, author, client_id) constraint.
    client_id = models.CharField(max_length=64, null=True, blank=True, editable=False)  # noqa: DJ001
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    edited_at = models.DateTimeField(null=True, blank=True, editable=False)
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The seq of the room event that last changed the message: its creation (rev == seq), its
    # latest edit, or its deletion. Edits and deletions take the room's next seq like a new
    # message, so one gapless counter orders everything a client must replay.
    rev = models.PositiveBigIntegerField(editable=False)
    # The message's attachments as MSG shows them (events.attachment_dict), written once
    # when they are tied to it, so no page or replay needs another query; [] without files.
    files = models.JSONField(default=list, blank=True, editable=False)
    # A reply quotes another message of the same room (services._store checks); the quote
    # stays if the original is deleted later (the MSG then says so), and goes if it is purged.
    reply_to = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    # A thread reply: the root message whose side panel it belongs to (a reply to a thread
    # reply belongs to the same root). Shown in the room's main log only if `also_in_room`.
    thread_root = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="thread_replies",
        editable=False,
    )
    # Defaults in the database too: rows written in SQL (bulk loads, tools) need none.
    also_in_room = models.BooleanField(default=False, db_default=False, editable=False)
    # A root's thread summary, kept by the services that add or delete its replies (each
    # change takes a seq, the root's new rev), so no page counts replies on read.
    thread_count = models.PositiveIntegerField(default=0, db_default=0, editable=False)
    thread_last_seq = models.PositiveBigIntegerField(default=0, db_default=0, editable=False)
    thread_last_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["room", "seq"]
        indexes = [models.Index(fields=["room", "rev"], name="message_room_rev_idx")]
        constraints = [
            models.UniqueConstraint(fields=["room", "seq"], name="message_room_seq_unique"),
            models.UniqueConstraint(
                fields=["room", "author", "client_id"], name="message_room_author_client_id_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} in {self.room_id} by {self.author_id}"


class Ban(models.Model):
    """A user shut out of one room: they cannot see its page, join it or post in it."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="bans")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_bans"
    )
    reason = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "user"], name="ban_room_user_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} banned from {self.room}"


class ReadState(models.Model):
    """How far a user has read a room: every seq up to `seq` is read (it only moves forward)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_reads"
    )
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="reads")
    seq = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "room"], name="readstate_user_room_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} read {self.room} to #{self.seq}"


class Announcement(models.Model):
    """A site-wide notice from staff; every connected socket hears it once."""

    body = models.TextField(max_length=1000)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.body[:60]


def validate_one_line_text(value: str) -> None:
    """A display name or status: one line, no controls (chat/visible_text.py); also in the admin."""
    problem = visible_text.display_name_problem(value)
    if problem:
        raise ValidationError(problem, code="display_text")


class Profile(models.Model):
    """What a user shows others: a display name, a status, a time zone, an avatar. Made on
    first save (services.profile_update); until then selectors.profile_of gives the defaults."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    display_name = models.CharField(
        max_length=50,
        blank=True,
        validators=[validate_one_line_text],
        help_text="Shown instead of the username where set.",
    )
    status = models.CharField(max_length=100, blank=True, validators=[validate_one_line_text])
    time_zone = models.CharField(max_length=64, blank=True, help_text="An IANA zone name.")
    # A 128 px PNG re-encoded by chat/avatars.py under a random name; blank: initials.
    avatar = models.ImageField(upload_to="avatars/", blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"profile of {self.user}"

    def avatar_url(self) -> str:
        """The uploaded avatar's URL, or "" for the initials."""
        return self.avatar.url if self.avatar else ""


def validate_reaction_emoji(value: str) -> None:
    if value not in reactions.PALETTE:
        raise ValidationError("Not one of the reaction emoji.", code="reaction_emoji")


class Reaction(models.Model):
    """One user's emoji on one message. Toggling one takes the room's next seq (the
    message's new `rev`), as an edit does, so replays carry it (services.reaction_set)."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="reactions")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_reactions"
    )
    emoji = models.CharField(max_length=16, validators=[validate_reaction_emoji])  # as in PALETTE
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["message", "user", "emoji"], name="reaction_message_user_emoji_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.emoji} by {self.user_id} on {self.message_id}"


class Attachment(models.Model):
    """A file uploaded into a room (chat/attachments.py), first on its own, then tied to the
    message that carries it (services._store). Its bytes are in the default storage under a
    random name and are served only by the view that asks `access.can_read` each time."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="attachments")
    uploader = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_attachments"
    )
    # NULL until a message carries it; uploads never tied are swept (attachments_sweep).
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.CASCADE, related_name="attachments"
    )
    file = models.FileField(upload_to="attachments/")
    # For images: a re-encoded preview without metadata; blank for other files.
    thumbnail = models.FileField(upload_to="attachments/", blank=True)
    name = models.CharField(max_length=200, help_text="The uploaded name, made safe to show.")
    content_type = models.CharField(max_length=100, help_text="Decided from the bytes.")
    size = models.PositiveBigIntegerField()
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"{self.name} in {self.room_id}"

    @property
    def is_image(self) -> bool:
        return bool(self.thumbnail)


class ThreadRead(models.Model):
    """How far a user has read one thread: its replies up to `seq` (a room seq) are read.
    Moves forward only; none yet means nothing of the thread is read (services.thread_mark_read)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_thread_reads"
    )
    root = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="thread_reads")
    seq = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "root"], name="threadread_user_root_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} read thread {self.root_id} to #{self.seq}"
