"""Server time of a message search (issue 14) over 200,000 messages on PostgreSQL.

One process makes a database of its own (`chatsite_bench_search`), migrates it and fills
it: 100 public rooms and 20 private ones (alice is a member of 10 of those, so search
must leave out the other 10), 20 authors, and --messages messages of 8 to 30 words drawn
from a 2,000-word vocabulary with a Zipf-like spread (a few words in a large share of
the messages, most in few), spread over 180 days. Then, signed in as alice through
Django's test client (the view, its queries, the snippets and the template; DEBUG off),
each query's first page is fetched 3 times to warm up and --repeat times timed: the table
gives p50 and p95 and how many messages the page says it found (">1000": more than the
CHAT_SEARCH_MAX_MATCHES it ranks).

    .venv/bin/python bench/search.py [--messages 200000] [--repeat 40] [--keep] [--reuse]

--keep leaves the database there afterwards; --reuse measures the one a --keep run left
(migrated to the latest, not seeded again: seeding 200,000 messages takes about a minute).

Needs PostgreSQL at DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test, whose
server it uses); the SQLite FTS5 engine is for laptops and is not measured here.
Prints a Markdown table (docs/performance.md, "Search", quotes a run of it).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/test"
DATABASE_NAME = "chatsite_bench_search"
VOCABULARY = 2000
# label → the search box's text; the words are w<rank>, rank 0 the most common.
QUERIES = {
    "common word": "w3",
    "mid word": "w150",
    "rare word": "w1900",
    "two words": "w20 w40",
    "phrase": '"w1 w2"',
    "word or word": "w500 or w600",
    "word in:room": "w10 in:room-007",
    "word from:user": "w10 from:user05",
    "word, dates": "w10 after:2026-02-01 before:2026-03-01",
    "filters only": "from:user05 in:room-007",
}


def word(rng: random.Random) -> str:
    """A word of the vocabulary, rank r about as likely as 1/(r+1)."""
    rank = int(VOCABULARY ** rng.random()) - 1
    return f"w{rank}"


def seed(messages: int) -> None:
    """The rooms, members and messages the module docstring describes."""
    from django.contrib.auth import get_user_model

    from chat.models import Membership, Message, Room

    rng = random.Random(14)
    users = get_user_model().objects
    alice = users.create_user("alice", password="pw")
    authors = [users.create_user(f"user{i:02}", password="pw") for i in range(20)]
    rooms = Room.objects.bulk_create(
        [Room(name=f"Room {i:03}", slug=f"room-{i:03}") for i in range(100)]
        + [Room(name=f"Team {i:03}", slug=f"team-{i:03}", is_private=True) for i in range(20)]
    )
    Membership.objects.bulk_create(Membership(room=room, user=alice) for room in rooms[100:110])
    start = datetime(2026, 1, 1, tzinfo=UTC)
    seqs = dict.fromkeys((room.pk for room in rooms), 0)

    def rows():
        for i in range(messages):
            room = rooms[i % len(rooms)]
            seqs[room.pk] += 1
            body = " ".join(word(rng) for _ in range(rng.randint(8, 30)))
            yield Message(
                room=room,
                author=authors[rng.randrange(len(authors))],
                body=body,
                seq=seqs[room.pk],
                rev=seqs[room.pk],
                created_at=start + timedelta(seconds=i * 180 * 86400 // messages),
            )

    # Dated as the docstring says: created_at is auto_now_add, which bulk_create would apply.
    created = Message._meta.get_field("created_at")
    created.auto_now_add = False
    try:
        Message.objects.bulk_create(rows(), batch_size=5000)
    finally:
        created.auto_now_add = True
    for room in rooms:
        Room.objects.filter(pk=room.pk).update(last_seq=seqs[room.pk])


def explain_queries(user: object) -> None:
    """EXPLAIN ANALYZE of each query a search's first page runs (the matches, their ranking,
    the page's rows, its snippets), to stderr."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from chat import selectors
    from chat.search_query import parse_search

    for label, text in QUERIES.items():
        query = parse_search(text)
        with CaptureQueriesContext(connection) as queries:
            found = selectors.messages_search(user=user, query=query)
            selectors.search_hits(ids=found.ids[:20], text=query.text)
        for done in queries.captured_queries:
            if done["sql"].startswith("SELECT"):
                with connection.cursor() as cursor:
                    cursor.execute(f"EXPLAIN ANALYZE {done['sql']}")
                    plan = "\n".join(line for (line,) in cursor.fetchall())
                sql = done["sql"][:300]
                print(f"--- {label} ({done['time']} s)\n{sql}\n{plan}", file=sys.stderr)


def measure(
    messages: int, repeat: int, *, explain: bool, keep: bool, reuse: bool
) -> list[tuple[str, float, float, str]]:
    """Make, fill and measure the database (or with `reuse`, the one left by `keep`); drop
    it afterwards unless `keep`."""
    import django
    from django.conf import settings

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["testserver"]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "chat.realtime.layers.InProcessChannelLayer"}}
    settings.CHAT_PRESENCE_REDIS_URL = settings.CHAT_LIMITS_REDIS_URL = ""
    assert connection.vendor == "postgresql", "set DATABASE_URL to a PostgreSQL server"
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = DATABASE_NAME
    old_name = connection.settings_dict["NAME"]
    if reuse:
        connection.close()
        settings.DATABASES["default"]["NAME"] = connection.settings_dict["NAME"] = DATABASE_NAME
        call_command("migrate", verbosity=0)
    else:
        connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        if not reuse:
            began = time.perf_counter()
            seed(messages)
            took = time.perf_counter() - began
            print(f"seeded {messages} messages in {took:.0f} s", file=sys.stderr)
        with connection.cursor() as cursor:
            # Every table, as autovacuum would after a load: with chat_room unanalyzed the
            # planner guessed 2 readable rooms and ran the GIN scan once per room, 111 times.
            cursor.execute("VACUUM ANALYZE")
            cursor.execute("SELECT count(*) FROM chat_message")
            print(f"{cursor.fetchone()[0]} messages", file=sys.stderr)
        client = Client()
        client.force_login(get_user_model().objects.get(username="alice"))
        if explain:
            explain_queries(get_user_model().objects.get(username="alice"))
        results = []
        for label, text in QUERIES.items():
            for _ in range(3):
                response = client.get("/search/", {"q": text})
                assert response.status_code == 200, (label, response.status_code)
            times = []
            for _ in range(repeat):
                began = time.perf_counter()
                client.get("/search/", {"q": text})
                times.append((time.perf_counter() - began) * 1000)
            html = response.content.decode()
            said = re.search(r'id="search-count"[^>]*>(More than )?(\d+)', html)
            count = (">" if said[1] else "") + said[2]
            p95 = statistics.quantiles(times, n=20)[18]
            results.append((f"{label} `{text}`", statistics.median(times), p95, count))
    finally:
        if keep:
            connection.close()
        else:
            connection.creation.destroy_test_db(old_name, verbosity=0)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--explain", action="store_true", help="query plans to stderr")
    parser.add_argument("--keep", action="store_true", help="leave the database afterwards")
    parser.add_argument("--reuse", action="store_true", help="measure the one --keep left")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    os.environ.setdefault("DATABASE_URL", POSTGRES_URL)
    rows = measure(
        args.messages, args.repeat, explain=args.explain, keep=args.keep, reuse=args.reuse
    )
    print(
        f"| query | p50 ms | p95 ms | found |  ({args.messages} messages, --repeat {args.repeat})"
    )
    print("|---|---:|---:|---:|")
    for label, p50, p95, count in rows:
        print(f"| {label} | {p50:.1f} | {p95:.1f} | {count} |")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
