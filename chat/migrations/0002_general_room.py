from django.db import migrations


def create_general(apps, schema_editor):
    Room = apps.get_model("chat", "Room")
    Room.objects.get_or_create(
        slug="general", defaults={"name": "General", "topic": "Say hello to everyone."}
    )


class Migration(migrations.Migration):
    """A fresh install has one public room to talk in."""

    dependencies = [("chat", "0001_initial")]

    operations = [migrations.RunPython(create_general, migrations.RunPython.noop)]
