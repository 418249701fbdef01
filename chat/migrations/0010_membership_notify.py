"""Notification settings: which of a room's messages notify each member.

Rooms default to mentions only; direct messages notified on every message before this
field existed, so their members start at "all" and nobody's DMs go quiet."""

from django.db import migrations, models


def direct_messages_notify_all(apps, schema_editor):
    Membership = apps.get_model("chat", "Membership")
    Membership.objects.filter(room__is_direct=True).update(notify="all")


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0009_profiles"),
    ]

    operations = [
        migrations.AddField(
            model_name="membership",
            name="notify",
            field=models.CharField(
                choices=[
                    ("all", "all messages"),
                    ("mentions", "mentions only"),
                    ("mute", "nothing (muted)"),
                ],
                default="mentions",
                help_text="Which of the room's messages notify this member.",
                max_length=10,
            ),
        ),
        migrations.RunPython(direct_messages_notify_all, migrations.RunPython.noop),
    ]
