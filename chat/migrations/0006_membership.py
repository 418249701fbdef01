"""Membership: `Room.members` goes through a model of its own (who, where, starred, since).

Django cannot add `through=` to an existing many-to-many field, so this creates the model,
copies the rows of the old auto-created table into it, drops the old field and adds it back
through the new model.

Until now every public room sat in everyone's sidebar; from now on the sidebar lists the
rooms one is a member of. So that nobody's sidebar empties on upgrade, **every active user
becomes a member of every public room that is not archived** (direct messages aside), on
top of the copied rows (the members of private rooms and DMs, and anyone already listed).
Going backwards copies every membership back into the plain table (stars are lost)."""

from django.conf import settings
from django.db import migrations, models
from django.db.models import deletion

BATCH = 2000


def _bulk(Membership, rows):
    for start in range(0, len(rows), BATCH):
        Membership.objects.bulk_create(rows[start : start + BATCH], ignore_conflicts=True)


def copy_members_and_backfill(apps, schema_editor):
    Room = apps.get_model("chat", "Room")
    Membership = apps.get_model("chat", "Membership")
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    pairs = set(Room.members.through.objects.values_list("user_id", "room_id"))
    public = Room.objects.filter(is_private=False, is_archived=False, is_direct=False)
    public_ids = list(public.values_list("pk", flat=True))
    for user_id in User.objects.filter(is_active=True).values_list("pk", flat=True).iterator():
        pairs.update((user_id, room_id) for room_id in public_ids)
    _bulk(Membership, [Membership(user_id=u, room_id=r) for u, r in sorted(pairs)])


def copy_members_back(apps, schema_editor):
    Room = apps.get_model("chat", "Room")
    Membership = apps.get_model("chat", "Membership")
    Through = Room.members.through
    rows = Membership.objects.values_list("user_id", "room_id")
    _bulk(Through, [Through(user_id=u, room_id=r) for u, r in rows])


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0005_direct_key"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Membership",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "starred",
                    models.BooleanField(default=False, help_text="Listed first in the sidebar."),
                ),
                ("joined_at", models.DateTimeField(auto_now_add=True)),
                (
                    "room",
                    models.ForeignKey(
                        on_delete=deletion.CASCADE, related_name="memberships", to="chat.room"
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=deletion.CASCADE,
                        related_name="chat_memberships",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("user", "room"), name="membership_user_room_unique"
                    )
                ],
            },
        ),
        migrations.RunPython(copy_members_and_backfill, copy_members_back),
        migrations.RemoveField(model_name="room", name="members"),
        migrations.AddField(
            model_name="room",
            name="members",
            field=models.ManyToManyField(
                blank=True,
                related_name="chat_rooms",
                through="chat.Membership",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
    ]
