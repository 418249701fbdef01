"""Group direct messages: a DM's key holds up to eight user ids (chat/services.py)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('chat', '0006_membership'),
    ]

    operations = [
        migrations.AlterField(
            model_name='room',
            name='direct_key',
            field=models.CharField(blank=True, editable=False, max_length=200, null=True, unique=True),
        ),
        migrations.AlterField(
            model_name='room',
            name='is_direct',
            field=models.BooleanField(default=False, editable=False, help_text='A direct-message room: private, of two to eight users, at /chat/@username/ (or /chat/@name,name/ for a group).'),
        ),
    ]
