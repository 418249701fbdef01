"""Owners: a role on each membership (owner or member).

The creator of a room becomes its owner where they are still its member; rooms made by
staff in the admin, or whose creator left, have no owner until staff name one (the admin's
member list shows the role). Going backwards drops the role."""

from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def creators_own_their_rooms(apps, schema_editor):
    Room = apps.get_model("chat", "Room")
    Membership = apps.get_model("chat", "Membership")
    creator = Room.objects.filter(pk=OuterRef("room_id")).values("created_by_id")[:1]
    Membership.objects.filter(user_id=Subquery(creator), room__is_direct=False).update(
        role="owner"
    )


class Migration(migrations.Migration):
    dependencies = [("chat", "0006_membership")]

    operations = [
        migrations.AddField(
            model_name="membership",
            name="role",
            field=models.CharField(
                choices=[("owner", "owner"), ("member", "member")],
                default="member",
                help_text="Owners run the room; a room made by a user keeps at least one.",
                max_length=10,
            ),
        ),
        migrations.RunPython(creators_own_their_rooms, migrations.RunPython.noop),
    ]
