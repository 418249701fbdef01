"""Profiles: a display name, status, time zone and avatar per user.

Made lazily, on a user's first save of their account page; a user without one shows the
defaults (the username, initials), so nothing is backfilled."""

import chat.models
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0008_merge_0007_people_0007_room_owners"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Profile",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "display_name",
                    models.CharField(
                        blank=True,
                        help_text="Shown instead of the username where set.",
                        max_length=50,
                        validators=[chat.models.validate_one_line_text],
                    ),
                ),
                (
                    "status",
                    models.CharField(
                        blank=True, max_length=100, validators=[chat.models.validate_one_line_text]
                    ),
                ),
                (
                    "time_zone",
                    models.CharField(blank=True, help_text="An IANA zone name.", max_length=64),
                ),
                ("avatar", models.ImageField(blank=True, upload_to="avatars/")),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "user",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="profile",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
        ),
    ]
