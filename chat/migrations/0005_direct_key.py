"""A DM is found by its pair of users (`direct_key`), no longer by a slug anyone could claim.

Existing DMs (`is_direct`, made only by the service) get their key from the pair their slug
was made from. A room that merely took a `dm-…` slug (a user-created squatter) is not
`is_direct`, so it gets no key and is never taken for a DM again."""

import re

from django.conf import settings
from django.db import migrations, models

DM_SLUG = re.compile(r"^dm-(\d+)-(\d+)$")


def key_existing_direct_rooms(apps, schema_editor):
    Room = apps.get_model("chat", "Room")
    for room in Room.objects.filter(is_direct=True):
        pair = DM_SLUG.match(room.slug)
        ids = sorted(int(i) for i in pair.groups()) if pair else []
        if not ids:
            ids = sorted(room.members.values_list("pk", flat=True))
        if len(ids) == 2 and ids[0] != ids[1]:
            room.direct_key = f"{ids[0]}:{ids[1]}"
            room.is_private = True
        else:  # not a pair: keep it as a private room, no longer a DM
            room.is_direct = False
            room.is_private = True
        room.save(update_fields=["direct_key", "is_direct", "is_private"])


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0004_direct_rooms_announcements"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="room",
            name="direct_key",
            field=models.CharField(
                blank=True, editable=False, max_length=41, null=True, unique=True
            ),
        ),
        migrations.RunPython(key_existing_direct_rooms, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="room",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("direct_key__isnull", True), ("is_direct", False)),
                    models.Q(
                        ("direct_key__isnull", False), ("is_direct", True), ("is_private", True)
                    ),
                    _connector="OR",
                ),
                name="room_direct_has_a_pair",
            ),
        ),
    ]
