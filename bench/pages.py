"""Server time of the pages at scale (issue 13): the lobby and a room page for a user in 200
of 1,000 public rooms, on SQLite and on PostgreSQL.

Each engine runs in a process of its own (settings read DATABASE_URL once): it makes a
database of its own (`chatsite_bench_pages`, or a SQLite file), migrates it, and fills it:

- 1,000 public rooms ("Room 0000" …) besides general; alice is a member of the first 200
  (10 starred, 10 owned); bob posted --messages messages in each of those (a history, so
  that counting what is unread must not read it all); alice read all but the last 10 in
  three rooms out of four, and never opened the fourth;
- 5 direct-message rooms of alice's, with a message each.

Then, signed in as alice through Django's test client (the request, its middleware, the
view, its queries and the template; no socket, no server process; DEBUG off), each page is
fetched 3 times to warm up and --repeat times timed; the table gives the median and the
fastest, and the queries one fetch runs. With --profile PAGE, cProfile also runs PAGE
--repeat times and prints its top functions to stderr.

    .venv/bin/python bench/pages.py [--engines sqlite,postgres] [--repeat 15]
                                    [--messages 500] [--profile room]

Prints a Markdown table (docs/performance.md, "Pages at scale", quotes runs of it).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/test"
DATABASE_NAME = "chatsite_bench_pages"
PAGES = {
    "lobby": "/",
    "lobby page 21": "/?page=21",
    "room": "/chat/room-0000/",
}
ROOMS, MY_ROOMS, DIRECTS = 1000, 200, 5


def seed(messages: int) -> None:
    """The rooms, members, messages and read marks the module docstring describes."""
    from django.contrib.auth import get_user_model

    from chat import formatting, services
    from chat.models import Membership, Message, ReadState, Room

    users = get_user_model().objects
    alice = users.create_user("alice", password="pw")
    bob = users.create_user("bob", password="pw")
    rooms = Room.objects.bulk_create(
        Room(name=f"Room {i:04}", slug=f"room-{i:04}", topic=f"Topic {i}") for i in range(ROOMS)
    )
    mine = rooms[:MY_ROOMS]
    Membership.objects.bulk_create(
        Membership(
            room=room,
            user=alice,
            starred=i % 20 == 5,
            role=Membership.Role.OWNER if i % 20 == 7 else Membership.Role.MEMBER,
        )
        for i, room in enumerate(mine)
    )
    Message.objects.bulk_create(
        (
            Message(
                room=room,
                author=bob,
                body=f"message {seq}",
                body_html=formatting.render(f"message {seq}"),
                seq=seq,
                rev=seq,
            )
            for room in mine
            for seq in range(1, messages + 1)
        ),
        batch_size=5000,
    )
    Room.objects.filter(pk__in=[room.pk for room in mine]).update(last_seq=messages)
    ReadState.objects.bulk_create(
        ReadState(room=room, user=alice, seq=max(messages - 10, 0))
        for i, room in enumerate(mine)
        if i % 4
    )
    for i in range(DIRECTS):
        other = users.create_user(f"friend{i}", password="pw")
        room = services.direct_group_get_or_create(user=alice, others=[other])
        Message.objects.create(
            room=room, author=other, body="hello", body_html="<p>hello</p>", seq=1, rev=1
        )
        Room.objects.filter(pk=room.pk).update(last_seq=1)


def measure(repeat: int, messages: int, profile: str | None) -> dict[str, dict[str, float]]:
    """Make, fill and measure this process's database; drop it afterwards."""
    import django
    from django.conf import settings

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    # As served: DEBUG off, and templates not instrumented for the test client (the tests'
    # setup_test_environment copies the context of every template rendered: some 100 on a
    # room page, its message lines and avatars; about 1 ms more).
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["testserver"]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "chat.realtime.layers.InProcessChannelLayer"}}
    settings.CHAT_PRESENCE_REDIS_URL = settings.CHAT_LIMITS_REDIS_URL = ""
    with tempfile.TemporaryDirectory() as scratch:
        test = settings.DATABASES["default"].setdefault("TEST", {})
        test["NAME"] = (
            str(Path(scratch) / "pages.sqlite3") if connection.vendor == "sqlite" else DATABASE_NAME
        )
        old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
        try:
            seed(messages)
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("ANALYZE")  # as autovacuum would soon after such a load
            client = Client()
            client.force_login(get_user_model().objects.get(username="alice"))
            results = {}
            for label, path in PAGES.items():
                for _ in range(3):
                    assert client.get(path).status_code == 200, path
                times = []
                for _ in range(repeat):
                    start = time.perf_counter()
                    client.get(path)
                    times.append((time.perf_counter() - start) * 1000)
                with CaptureQueriesContext(connection) as queries:
                    client.get(path)
                results[label] = {
                    "median": statistics.median(times),
                    "fastest": min(times),
                    "queries": len(queries),
                }
            if profile:
                profiler = cProfile.Profile()
                profiler.enable()
                for _ in range(repeat):
                    client.get(PAGES[profile])
                profiler.disable()
                stats = pstats.Stats(profiler, stream=sys.stderr)
                stats.sort_stats("cumulative").print_stats(40)
                stats.sort_stats("tottime").print_stats(25)
        finally:
            connection.creation.destroy_test_db(old_name, verbosity=0)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--profile", choices=list(PAGES))
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one engine here
    args = parser.parse_args()
    if args.one:
        results = measure(args.repeat, args.messages, args.profile)
        print(json.dumps(results))
        return
    rows = []
    for engine in args.engines.split(","):
        env = dict(os.environ, DJANGO_SETTINGS_MODULE="chatsite.settings")
        env.pop("DATABASE_URL", None)
        if engine == "postgres":
            env["DATABASE_URL"] = POSTGRES_URL
        elif engine != "sqlite":
            parser.error(f"unknown engine {engine!r}")
        command = [sys.executable, __file__, "--one", engine, "--repeat", str(args.repeat)]
        command += ["--messages", str(args.messages)]
        if args.profile:
            command += ["--profile", args.profile]
        done = subprocess.run(
            command, cwd=ROOT, env=env, check=True, stdout=subprocess.PIPE, text=True
        )
        for label, figures in json.loads(done.stdout).items():
            rows.append((engine, label, figures))
    print(f"| engine | page | median ms | fastest ms | queries |  (--repeat {args.repeat})")
    print("|---|---|---:|---:|---:|")
    for engine, label, f in rows:
        print(f"| {engine} | {label} | {f['median']:.1f} | {f['fastest']:.1f} | {f['queries']} |")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
