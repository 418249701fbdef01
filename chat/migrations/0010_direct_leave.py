"""Group direct messages can be left: a DM whose remaining people already have a DM of
their own keeps going without a key (NULL), so the check no longer asks every DM for one."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("chat", "0009_profiles")]

    operations = [
        migrations.RemoveConstraint(model_name="room", name="room_direct_has_a_pair"),
        migrations.AddConstraint(
            model_name="room",
            constraint=models.CheckConstraint(
                condition=models.Q(is_direct=False, direct_key__isnull=True)
                | models.Q(is_direct=True, is_private=True),
                name="room_direct_is_private",
            ),
        ),
    ]
