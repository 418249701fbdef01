"""Full-text search of messages (chat/fulltext.py), per database vendor.

PostgreSQL: a stored generated `body_search` tsvector column (filled for existing rows as
it is added) with a partial GIN index of live messages. The model does not know the
column. Altering `body`'s type later needs the column dropped first.

SQLite: an FTS5 table of live messages, filled now, kept in step by triggers on insert,
edit, deletion and removal; `apps.py` rebuilds it after any `migrate` that dropped them.
"""

from django.db import migrations

from chat import fulltext


def install(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    with schema_editor.connection.cursor() as cursor:
        if vendor == "postgresql":
            fulltext.postgres_install(cursor)
        elif vendor == "sqlite":
            fulltext.sqlite_rebuild(cursor)


def uninstall(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    with schema_editor.connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute("DROP INDEX IF EXISTS message_body_search_idx")
            cursor.execute(f"ALTER TABLE chat_message DROP COLUMN IF EXISTS {fulltext.PG_COLUMN}")
        elif vendor == "sqlite":
            for name in fulltext.SQLITE_TRIGGERS:
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
            cursor.execute(f"DROP TABLE IF EXISTS {fulltext.FTS_TABLE}")


class Migration(migrations.Migration):
    dependencies = [("chat", "0012_merge_0010_message_room_index_0011")]

    operations = [migrations.RunPython(install, uninstall)]
