"""Messages keep their rendered, sanitised HTML beside the body (chat/formatting.py); the
messages already stored are rendered here, once, so no read ever renders."""

from django.conf import settings
from django.db import migrations, models

BATCH = 500


def render_stored(apps, schema_editor):
    from chat import formatting

    Message = apps.get_model("chat", "Message")
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    messages = Message.objects.filter(deleted_at__isnull=True).only("pk", "body")
    batch = []
    for message in messages.iterator(chunk_size=BATCH):
        batch.append(message)
        if len(batch) == BATCH:
            _render_batch(batch, User, formatting)
            batch = []
    if batch:
        _render_batch(batch, User, formatting)


def _render_batch(batch, User, formatting):
    names = set().union(*(formatting.mentioned_names(m.body) for m in batch))
    people = set(User.objects.filter(username__in=names, is_active=True).values_list("username", flat=True))
    for message in batch:
        message.body_html = formatting.render(message.body, people=people)
    type(batch[0]).objects.bulk_update(batch, ["body_html"])


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0012_merge_0010_message_room_index_0011"),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="body_html",
            field=models.TextField(blank=True, default="", editable=False),
        ),
        migrations.RunPython(render_stored, migrations.RunPython.noop),
    ]
