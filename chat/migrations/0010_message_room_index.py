"""Messages lose their index on room alone: the (room, seq), (room, rev) and
(room, author, client_id) indexes lead with room and serve every lookup by room. With it,
PostgreSQL counted a room's unread messages by reading all of the room's messages instead
of the few after the read mark (docs/performance.md, "Pages at scale"). On SQLite the
table is rebuilt, as for any change of a field there."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0009_profiles"),
    ]

    operations = [
        migrations.AlterField(
            model_name="message",
            name="room",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="messages",
                to="chat.room",
            ),
        ),
    ]
