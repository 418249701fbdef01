"""Room management and moderation. Actions call the same services as the socket, so their
effects reach connected clients live; fields that only a service may change are read-only."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from . import selectors, services
from .models import Announcement, Ban, Membership, Message, Profile, Room


class MembershipInline(admin.TabularInline):
    """A room's members: who may see it if private, whose sidebar lists it in any case,
    and who owns it (runs it from its settings page)."""

    model = Membership
    extra = 0
    fields = ["user", "role", "starred", "joined_at"]
    autocomplete_fields = ["user"]
    readonly_fields = ["joined_at"]


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "slug",
        "is_private",
        "is_archived",
        "member_count",
        "message_count",
        "created_at",
    ]
    list_filter = ["is_private", "is_archived"]
    search_fields = ["name", "slug", "topic"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]
    readonly_fields = ["is_archived", "created_at", "last_seq"]
    autocomplete_fields = ["created_by"]
    actions = ["archive", "unarchive"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Room]:
        return selectors.rooms_with_counts()

    @admin.display(description="Members", ordering="member_count")
    def member_count(self, room: Room) -> int:
        return room.member_count

    @admin.display(description="Messages", ordering="message_count")
    def message_count(self, room: Room) -> int:
        return room.message_count

    @admin.action(
        description="Archive selected rooms (closes them for connected users)",
        permissions=["change"],
    )
    def archive(self, request: HttpRequest, queryset: QuerySet[Room]) -> None:
        archived = sum(services.room_archive(room=room) for room in queryset)
        self.message_user(request, f"Archived {archived} room(s).", messages.SUCCESS)

    @admin.action(description="Unarchive selected rooms", permissions=["change"])
    def unarchive(self, request: HttpRequest, queryset: QuerySet[Room]) -> None:
        restored = sum(services.room_unarchive(room=room) for room in queryset)
        self.message_user(request, f"Unarchived {restored} room(s).", messages.SUCCESS)


class DeletedFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("live", "Live"), ("deleted", "Deleted")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Message]) -> QuerySet[Message]:
        if self.value() == "live":
            return queryset.filter(deleted_at__isnull=True)
        if self.value() == "deleted":
            return queryset.filter(deleted_at__isnull=False)
        return queryset


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["seq", "room", "author", "short_body", "created_at", "edited_at", "deleted_at"]
    list_filter = ["room", DeletedFilter]
    list_select_related = ["room", "author"]
    search_fields = ["body", "author__username"]
    readonly_fields = [
        "room",
        "author",
        "body",
        "seq",
        "rev",
        "client_id",
        "created_at",
        "edited_at",
        "deleted_at",
    ]
    actions = ["soft_delete"]
    ordering = ["-created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # messages are posted in rooms, where they get their seq

    def has_delete_permission(self, request: HttpRequest, obj: Message | None = None) -> bool:
        return False  # moderation soft-deletes, through the service that tells the room

    @admin.display(description="Body")
    def short_body(self, message: Message) -> str:
        return message.body if len(message.body) <= 80 else message.body[:79] + "…"

    @admin.action(
        description="Delete selected messages (removes them from the room live)",
        permissions=["change"],
    )
    def soft_delete(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        deleted = sum(services.message_delete(message=message) for message in queryset)
        self.message_user(request, f"Deleted {deleted} message(s).", messages.SUCCESS)


@admin.register(Ban)
class BanAdmin(admin.ModelAdmin):
    """Adding a ban takes the user out of the room at once (through the service); deleting
    it lets them back in."""

    list_display = ["user", "room", "reason", "created_by", "created_at"]
    list_filter = ["room"]
    list_select_related = ["user", "room", "created_by"]
    search_fields = ["user__username", "room__name", "room__slug", "reason"]
    autocomplete_fields = ["user", "room"]
    fields = ["room", "user", "reason", "created_by", "created_at"]
    readonly_fields = ["created_by", "created_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Ban | None = None) -> list[str]:
        if obj is not None:
            return ["room", "user", *self.readonly_fields]  # a ban is lifted, not moved
        return self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Ban, form: object, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)  # only the reason can change
            return
        services.user_ban(room=obj.room, user=obj.user, by=request.user, reason=obj.reason)
        saved = Ban.objects.get(room=obj.room, user=obj.user)
        obj.pk, obj.created_by, obj.created_at = saved.pk, saved.created_by, saved.created_at

    def delete_model(self, request: HttpRequest, obj: Ban) -> None:
        services.user_unban(room=obj.room, user=obj.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Ban]) -> None:
        for ban in queryset.select_related("room", "user"):
            services.user_unban(room=ban.room, user=ban.user)


@admin.register(Announcement)
class AnnouncementAdmin(admin.ModelAdmin):
    """Saving a new announcement sends it to every connected socket, once each."""

    list_display = ["body", "created_by", "created_at"]
    fields = ["body", "created_by", "created_at"]
    readonly_fields = ["created_by", "created_at"]

    def has_change_permission(self, request: HttpRequest, obj: Announcement | None = None) -> bool:
        return obj is None and super().has_change_permission(request)  # sent: cannot be unsent

    def save_model(
        self, request: HttpRequest, obj: Announcement, form: object, change: bool
    ) -> None:
        saved = services.announcement_create(body=obj.body, by=request.user)
        obj.pk, obj.created_by, obj.created_at = saved.pk, saved.created_by, saved.created_at


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    """Profiles, for moderation: staff may clear a display name or status. An avatar only
    enters through the account page (chat/avatars.py re-encodes it), so here it is shown,
    not uploaded."""

    list_display = ["user", "display_name", "status", "time_zone", "updated_at"]
    search_fields = ["user__username", "display_name"]
    fields = ["user", "display_name", "status", "time_zone", "avatar", "updated_at"]
    readonly_fields = ["user", "avatar", "updated_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # made by the user's first save
