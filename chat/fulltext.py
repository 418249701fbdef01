"""Full-text search of message bodies, one engine per database vendor: PostgreSQL's text
search (a stored `tsvector` column with a GIN index, `websearch_to_tsquery`, `ts_rank`,
`ts_headline`) and SQLite's FTS5 (a virtual table kept in step by triggers, `bm25`,
`snippet`). `selectors.messages_search` is the one door; it asks `connection.vendor`.

Both index the English stemmed words of the source `body` (never rendered HTML) of live
messages: "deploying" finds "deploy". Both mark the hits of a snippet with the control
characters MARK_START and MARK_END, removed from the text before it is indexed, so any
they return are ours: `highlight` escapes the text and only then turns them into <mark>.
"""

import json
import re

from django.db import connection
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import BooleanField, FloatField, QuerySet
from django.db.models.expressions import RawSQL
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from .models import Message

MARK_START, MARK_END = "\x02", "\x03"
SNIPPET_WORDS = 24  # about this many words around the hits
PLAIN_SNIPPET_CHARS = 240  # a result found by its filters alone: the body's start

# PostgreSQL: a column the model does not know (Django never selects or writes it).
PG_COLUMN = "body_search"
PG_CONFIG = "english"
# SQLite: the FTS5 table, its rowid the message's id.
FTS_TABLE = "chat_message_fts"
_FTS_BODY = "replace(replace({}, char(2), ''), char(3), '')"  # the sentinels out
SQLITE_TRIGGERS = {
    f"{FTS_TABLE}_insert": (
        f"CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_insert AFTER INSERT ON chat_message"
        f" WHEN new.deleted_at IS NULL BEGIN INSERT INTO {FTS_TABLE}(rowid, body)"
        f" VALUES (new.id, {_FTS_BODY.format('new.body')}); END"
    ),
    f"{FTS_TABLE}_update": (
        f"CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_update AFTER UPDATE OF body, deleted_at"
        f" ON chat_message BEGIN DELETE FROM {FTS_TABLE} WHERE rowid = old.id;"
        f" INSERT INTO {FTS_TABLE}(rowid, body) SELECT new.id, {_FTS_BODY.format('new.body')}"
        " WHERE new.deleted_at IS NULL; END"
    ),
    f"{FTS_TABLE}_delete": (
        f"CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_delete AFTER DELETE ON chat_message"
        f" BEGIN DELETE FROM {FTS_TABLE} WHERE rowid = old.id; END"
    ),
}


# Setting up (migration 0013, and after every `migrate` on SQLite) ------------------------


def postgres_install(cursor: object) -> None:
    """The stored tsvector of each body (filled for existing rows as the column is added)
    and its GIN index, of live messages only."""
    cursor.execute(
        f"ALTER TABLE chat_message ADD COLUMN {PG_COLUMN} tsvector GENERATED ALWAYS AS"
        f" (to_tsvector('{PG_CONFIG}'::regconfig, body)) STORED"
    )
    cursor.execute(
        f"CREATE INDEX message_body_search_idx ON chat_message USING gin ({PG_COLUMN})"
        " WHERE deleted_at IS NULL"
    )


def sqlite_rebuild(cursor: object) -> None:
    """The FTS5 table, emptied and filled with every live message, and its triggers."""
    cursor.execute(
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5(body,"
        " tokenize='porter unicode61 remove_diacritics 2')"
    )
    cursor.execute(f"DELETE FROM {FTS_TABLE}")
    cursor.execute(
        f"INSERT INTO {FTS_TABLE}(rowid, body) SELECT id, {_FTS_BODY.format('body')}"
        " FROM chat_message WHERE deleted_at IS NULL"
    )
    for sql in SQLITE_TRIGGERS.values():
        cursor.execute(sql)


def sqlite_ensure(db: BaseDatabaseWrapper) -> bool:
    """Rebuild the FTS5 index if a trigger is missing: Django's SQLite schema editor remakes
    a table to alter it (a later migration on chat_message), and that drops its triggers.
    Runs after every `migrate` (apps.py); says whether it rebuilt."""
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger') AND name LIKE %s",
            [f"{FTS_TABLE}%"],
        )
        present = {name for (name,) in cursor.fetchall()}
        if FTS_TABLE not in present or set(SQLITE_TRIGGERS) <= present:
            return False  # not migrated yet, or whole
        sqlite_rebuild(cursor)
    return True


# Searching ------------------------------------------------------------------------------


def fts5_query(text: str) -> str:
    """The search box's words as a safe FTS5 expression, as PostgreSQL's websearch_to_tsquery
    reads them: words must all appear, "quoted words" as a phrase, `or` between words for
    either, `-word` for without. Each word or phrase is quoted, so no input is FTS5 syntax.
    "" when no word is sought."""
    groups: list[list[str]] = [[]]
    without: list[str] = []
    for token in re.findall(r'-?"[^"]*"?|\S+', text):
        negated = token.startswith("-") and len(token) > 1
        term = token[1:] if negated else token
        if term.lower() == "or" and not negated:
            if groups[-1]:
                groups.append([])
            continue
        term = term.strip('"')
        if not re.search(r"\w", term):
            continue
        quoted = '"' + term.replace('"', '""') + '"'
        (without if negated else groups[-1]).append(quoted)
    alternatives = [" AND ".join(group) for group in groups if group]
    if not alternatives:
        return ""
    expression = " OR ".join(alternatives)
    if without:
        expression = f"({expression})" + "".join(f" NOT {term}" for term in without)
    return expression


def matching(messages: QuerySet, text: str) -> QuerySet:
    """`messages` whose body matches `text` (unranked: rank the few kept with `ranked`)."""
    if connection.vendor == "postgresql":
        found = RawSQL(
            f'"chat_message"."{PG_COLUMN}" @@ websearch_to_tsquery(\'{PG_CONFIG}\'::regconfig, %s)',
            [text],
            output_field=BooleanField(),
        )
        return messages.filter(found)
    expression = fts5_query(text)
    if not expression:
        return messages.none()
    found = RawSQL(
        f'"chat_message"."id" IN (SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s)',
        [expression],
        output_field=BooleanField(),
    )
    return messages.filter(found)


def ranked(ids: list[int], text: str) -> list[int]:
    """`ids` (messages that match `text`) best match first, then newest first.

    Ranks only these: ranking in the query that finds the matches would rank every match,
    77,000 rows for a word in a third of 200,000 messages, before keeping the newest."""
    if not ids:
        return []
    # The ids as one parameter, not a thousand (SQLite before 3.32 takes 999 at most).
    if connection.vendor == "postgresql":
        among = RawSQL('"chat_message"."id" = ANY(%s)', [list(ids)], output_field=BooleanField())
        rank = RawSQL(
            f'ts_rank("chat_message"."{PG_COLUMN}",'
            f" websearch_to_tsquery('{PG_CONFIG}'::regconfig, %s))",
            [text],
            output_field=FloatField(),
        )
    else:
        among = RawSQL(
            '"chat_message"."id" IN (SELECT value FROM json_each(%s))',
            [json.dumps(list(ids))],
            output_field=BooleanField(),
        )
        rank = RawSQL(
            f"(SELECT -bm25({FTS_TABLE}) FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s"
            f' AND rowid = "chat_message"."id")',
            [fts5_query(text)],
            output_field=FloatField(),
        )
    ordered = (
        Message.objects.filter(among).annotate(rank=rank).order_by("-rank", "-created_at", "-pk")
    )
    return list(ordered.values_list("pk", flat=True))


def snippets(ids: list[int], text: str) -> dict[int, str]:
    """The hits of `text` in each message of `ids`, in their context, marked with MARK_START
    and MARK_END (message id → snippet); messages it has none for are left out."""
    if not ids or not text.strip():
        return {}
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One stretch of the body around the best hits (fragments cut to the bare word).
            # Its parser drops what looks like an HTML tag from the snippet: the room shows it.
            options = (
                f'StartSel="{MARK_START}", StopSel="{MARK_END}",'
                f" MaxWords={SNIPPET_WORDS}, MinWords={SNIPPET_WORDS // 2}"
            )
            cursor.execute(
                f"SELECT id, ts_headline('{PG_CONFIG}'::regconfig, translate(body, %s, ''),"
                f" websearch_to_tsquery('{PG_CONFIG}'::regconfig, %s), %s)"
                " FROM chat_message WHERE id = ANY(%s)",
                [MARK_START + MARK_END, text, options, list(ids)],
            )
        else:
            expression = fts5_query(text)
            if not expression:
                return {}
            marks = ", ".join(["%s"] * len(ids))
            cursor.execute(
                f"SELECT rowid, snippet({FTS_TABLE}, 0, char(2), char(3), '…', {SNIPPET_WORDS})"
                f" FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s AND rowid IN ({marks})",
                [expression, *ids],
            )
        return dict(cursor.fetchall())


def highlight(marked: str) -> SafeString:
    """HTML of a snippet: its text escaped, and each MARK_START … MARK_END span (the hits)
    in <mark>. Unbalanced or stray marks are dropped, never trusted."""
    parts: list[str] = []
    inside = False
    for piece in re.split(f"([{MARK_START}{MARK_END}])", marked):
        if piece == MARK_START:
            if not inside:
                parts.append("<mark>")
                inside = True
        elif piece == MARK_END:
            if inside:
                parts.append("</mark>")
                inside = False
        else:
            parts.append(escape(piece))
    if inside:
        parts.append("</mark>")
    return mark_safe("".join(parts))


def plain(body: str) -> SafeString:
    """A snippet of a result found by its filters alone: the body's start, escaped."""
    text = body.replace(MARK_START, "").replace(MARK_END, "")
    if len(text) > PLAIN_SNIPPET_CHARS:
        text = text[:PLAIN_SNIPPET_CHARS].rstrip() + "…"
    return highlight(text)
