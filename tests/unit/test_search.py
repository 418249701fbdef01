"""Message search (chat/selectors.py `messages_search`, chat/fulltext.py, chat/search_query.py,
the /search/ page) and opening a room at a message (`?at=`), on whichever engine the suite
runs on (SQLite by default; PostgreSQL with DATABASE_URL)."""

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext

from chat import fulltext, selectors, services
from chat.models import Message, Room
from chat.protocol.errors import ChatError
from chat.search_query import SearchQuery, parse_search

pytestmark = pytest.mark.django_db


def say(room: Room, author: Any, body: str, **fields: Any) -> Message:
    """A message stored at the room's next seq, as the services number them."""
    seq = Room.objects.get(pk=room.pk).last_seq + 1
    Room.objects.filter(pk=room.pk).update(last_seq=seq)
    message = Message.objects.create(room=room, author=author, body=body, seq=seq, rev=seq)
    if fields:
        Message.objects.filter(pk=message.pk).update(**fields)
    return message


def found(user: Any, raw: str) -> list[str]:
    """The bodies `raw` finds for `user`, in the order found."""
    query = parse_search(raw)
    ids = selectors.messages_search(user=user, query=query).ids
    return [hit.message.body for hit in selectors.search_hits(ids=ids, text=query.text)]


# The query box -------------------------------------------------------------------------


def test_filters_are_taken_out_of_the_words():
    query = parse_search("deploy IN:general from:@alice  after:2026-01-02 before:2026-02-01 now")
    assert query == SearchQuery(
        text="deploy now",
        room="general",
        author="alice",
        after=date(2026, 1, 2),
        before=date(2026, 2, 1),
    )
    assert parse_search("  ").is_empty()
    assert parse_search("email:x@y.z").text == "email:x@y.z"  # not a filter of ours


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("in: x", "in: needs a value, e.g. in:general."),
        ("from:a from:b", "Use from: once."),
        ("after:2026-1-2", "after: takes a day as YYYY-MM-DD, e.g. after:2026-01-31."),
        ("before:2026-02-30", "before: takes a day as YYYY-MM-DD, e.g. before:2026-01-31."),
        ("after:2026-02-01 before:2026-02-01", "after: must be a day before before:."),
        ("x" * 301, "Search for at most 300 characters."),
    ],
)
def test_a_bad_filter_is_refused_with_what_to_fix(raw, error):
    with pytest.raises(ChatError) as refused:
        parse_search(raw)
    assert (refused.value.code, refused.value.message) == ("bad_request", error)


@pytest.mark.parametrize(
    ("text", "expression"),
    [
        ("deploy server", '"deploy" AND "server"'),
        ('"blue sky" or rain', '"blue sky" OR "rain"'),
        ("rain -snow", '("rain") NOT "snow"'),
        ('say "hi""', '"say" AND "hi"'),
        ("NEAR( AND * ^col:x", '"NEAR(" AND "AND" AND "^col:x"'),
        ("-only ... or", ""),
    ],
)
def test_the_words_become_an_fts5_expression_that_holds_no_syntax_of_theirs(text, expression):
    assert fulltext.fts5_query(text) == expression


def test_a_snippet_is_escaped_and_only_our_marks_become_mark_elements():
    marked = "a <b>&\x02hit\x03 \x03stray\x02 open"
    assert fulltext.highlight(marked) == "a &lt;b&gt;&amp;<mark>hit</mark> stray<mark> open</mark>"


# Finding ------------------------------------------------------------------------------


def test_words_are_found_stemmed_as_phrases_either_or_and_without(alice, general):
    say(general, alice, "Deploying the new servers today")
    say(general, alice, "the blue sky over the servers")
    say(general, alice, "rain and snow")

    assert found(alice, "deploy") == ["Deploying the new servers today"]
    assert found(alice, '"blue sky"') == ["the blue sky over the servers"]
    assert sorted(found(alice, "deploy or snow")) == [
        "Deploying the new servers today",
        "rain and snow",
    ]
    assert found(alice, "server -sky") == ["Deploying the new servers today"]
    assert found(alice, "nothing-like-it") == []


def test_the_best_match_comes_first(alice, general):
    say(general, alice, "one kiwi among many other words of a long message about fruit")
    say(general, alice, "kiwi kiwi kiwi")

    results = found(alice, "kiwi")
    assert len(results) == 2
    assert results[0] == "kiwi kiwi kiwi"


def test_only_the_newest_matches_are_ranked_and_more_says_older_ones_matched(
    alice, general, settings
):
    day = lambda d: datetime(2026, 3, d, 12, tzinfo=UTC)  # noqa: E731
    for d in (2, 3, 4):
        say(general, alice, f"one kiwi in a longer message about fruit, day {d}", created_at=day(d))
    say(general, alice, "kiwi kiwi kiwi", created_at=day(1))  # the best, the oldest (by date)

    settings.CHAT_SEARCH_MAX_MATCHES = 4
    every = selectors.messages_search(user=alice, query=parse_search("kiwi"))
    settings.CHAT_SEARCH_MAX_MATCHES = 3
    newest = selectors.messages_search(user=alice, query=parse_search("kiwi"))
    by_filters = selectors.messages_search(user=alice, query=parse_search("from:alice"))

    bodies = lambda ids: [Message.objects.get(pk=pk).body for pk in ids]  # noqa: E731
    assert (bodies(every.ids)[0], len(every.ids), every.more) == ("kiwi kiwi kiwi", 4, False)
    assert "kiwi kiwi kiwi" not in bodies(newest.ids)
    assert (len(newest.ids), newest.more) == (3, True)
    assert bodies(by_filters.ids) == [
        f"one kiwi in a longer message about fruit, day {d}" for d in (4, 3, 2)
    ]
    assert by_filters.more


def test_a_thousand_matches_are_ranked_in_one_query_on_either_engine(alice, general, settings):
    assert settings.CHAT_SEARCH_MAX_MATCHES == 1000  # more ids than SQLite once took
    Message.objects.bulk_create(
        Message(room=general, author=alice, body=f"kiwi {'kiwi ' * (i % 3)}{i}", seq=i, rev=i)
        for i in range(1, 1002)
    )
    newest = set(Message.objects.order_by("-created_at", "-pk").values_list("pk", flat=True)[:1000])

    with CaptureQueriesContext(connection) as queries:
        result = selectors.messages_search(user=alice, query=parse_search("kiwi"))

    assert (set(result.ids), len(result.ids), result.more) == (newest, 1000, True)
    assert "kiwi kiwi kiwi" in Message.objects.get(pk=result.ids[0]).body
    assert len(queries.captured_queries) == 2


def test_a_message_deleted_after_it_was_found_is_left_out_of_the_page(alice, general):
    first, gone, last = (say(general, alice, f"kiwi number {i}") for i in range(3))
    ids = selectors.messages_search(user=alice, query=parse_search("kiwi")).ids
    services.message_delete(message=gone)

    hits = selectors.search_hits(ids=ids, text="kiwi")

    assert [hit.message.pk for hit in hits] == [pk for pk in ids if pk != gone.pk]
    assert {first.pk, last.pk} == {hit.message.pk for hit in hits}


def test_an_edit_is_found_by_its_new_text_only_and_a_deleted_message_never(alice, general):
    edited = say(general, alice, "the old wording")
    gone = say(general, alice, "secret plans")
    services.message_edit(room=general, message_id=edited.pk, editor=alice, body="fresh wording")
    services.message_delete(message=gone)

    assert found(alice, "old") == []
    assert found(alice, "fresh") == ["fresh wording"]
    assert found(alice, "secret") == []
    assert found(alice, "in:general") == ["fresh wording"]  # filters alone skip it too


def test_removing_a_message_row_takes_it_out_of_the_index(alice, general):
    message = say(general, alice, "ephemeral words")
    message.delete()
    say(general, alice, "lasting words")

    assert found(alice, "words") == ["lasting words"]


def test_filters_narrow_by_room_author_and_days(alice, bob, general, make_room):
    lounge = make_room("lounge")
    day = lambda d: datetime(2026, 3, d, 12, tzinfo=UTC)  # noqa: E731
    say(general, alice, "lunch one", created_at=day(1))
    say(general, bob, "lunch two", created_at=day(2))
    say(lounge, alice, "lunch three", created_at=day(3))

    assert found(alice, "lunch in:lounge") == ["lunch three"]
    assert sorted(found(alice, "lunch from:Alice")) == ["lunch one", "lunch three"]
    assert found(alice, "lunch after:2026-03-01 before:2026-03-03") == ["lunch two"]
    assert found(alice, "from:alice") == ["lunch three", "lunch one"]  # no words: newest first
    assert found(alice, "lunch in:nowhere") == []


MEMBER, NON_MEMBER, REMOVED, BANNED, ANONYMOUS = (
    "member",
    "non_member",
    "removed",
    "banned",
    "anonymous",
)
# role → the kinds of room whose messages they find. Search is for signed-in users.
FINDS = {
    MEMBER: {"public", "private", "direct"},
    NON_MEMBER: {"public"},
    REMOVED: {"public"},
    BANNED: set(),
    ANONYMOUS: set(),
}


@pytest.mark.parametrize("kind", ["public", "private", "direct"])
@pytest.mark.parametrize("role", list(FINDS))
def test_only_rooms_the_user_may_read_now_are_searched(role, kind, make_user):
    owner = make_user("owner")
    reader = make_user("reader")
    if kind == "direct":
        other = make_user("third") if role == NON_MEMBER else reader
        room = services.direct_group_get_or_create(user=owner, others=[other])
    else:
        room = services.room_create(
            name=f"{kind} room", topic="", created_by=owner, is_private=kind == "private"
        )
        if role != NON_MEMBER:
            services.membership_invite(room=room, by=owner, username="reader")
    say(room, owner, "the launch codes")
    if role == REMOVED:
        if kind == "direct":
            room.members.remove(reader)  # a DM is never left by two; as if it had been
        else:
            services.membership_remove(room=room, by=owner, username="reader")
    if role == BANNED:
        services.user_ban(room=room, user=reader)
    user = AnonymousUser() if role == ANONYMOUS else reader

    expected = ["the launch codes"] if kind in FINDS[role] else []
    assert found(user, "launch") == expected
    assert found(user, f"in:{room.slug}") == expected


# Snippets and the page --------------------------------------------------------------------


def test_snippets_mark_the_hits_and_escape_the_text_the_user_wrote(alice, general):
    say(general, alice, "deploy & co <img src=x onerror=alert(1)> \x02c\x03 <script>x</script>")

    (hit,) = selectors.search_hits(
        ids=selectors.messages_search(user=alice, query=parse_search("deploy")).ids, text="deploy"
    )
    assert hit.snippet.startswith("<mark>deploy</mark>")
    assert "deploy</mark> &amp; co" in hit.snippet
    unmarked = hit.snippet.replace("<mark>", "").replace("</mark>", "")
    assert "<" not in unmarked  # PostgreSQL drops what looks like a tag; SQLite escapes it
    assert ">" not in unmarked
    assert hit.snippet.count("<mark>") == 1  # the author's own control characters mark nothing


def test_the_search_page_is_for_signed_in_users(client):
    response = client.get("/search/?q=hello")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_search_page_lists_results_that_open_the_room_at_the_message(
    client, alice, general, settings
):
    settings.CHAT_SEARCH_PAGE_SIZE = 2
    for i in range(3):
        say(general, alice, f"standup notes {i}")
    client.force_login(alice)

    first = client.get("/search/", {"q": "standup in:general"})
    second = client.get("/search/", {"q": "standup in:general", "page": 2})

    assert first.status_code == 200
    assert first.context["page"].paginator.count == 3
    html = first.content.decode()
    assert 'href="/chat/general/?at=' in html
    assert "<mark>standup</mark>" in html
    assert "q=standup%20in%3Ageneral&amp;page=2" in html
    assert len(second.context["hits"]) == 1


@pytest.mark.parametrize(
    ("raw", "shown"), [("kiwi", "the best of the latest 2"), ("in:general", "the latest 2")]
)
def test_the_search_page_says_when_only_the_latest_matches_are_shown(
    client, alice, general, settings, raw, shown
):
    settings.CHAT_SEARCH_MAX_MATCHES, settings.CHAT_SEARCH_PAGE_SIZE = 2, 1
    for i in range(3):
        say(general, alice, f"kiwi {i}")
    client.force_login(alice)

    response = client.get("/search/", {"q": raw})

    assert f"More than 2 messages found: {shown} are shown" in response.content.decode()
    assert response.context["page"].paginator.num_pages == 2


def test_the_search_page_counts_no_matches_and_runs_as_many_queries_for_many(
    client, alice, general, settings
):
    settings.CHAT_SEARCH_MAX_MATCHES, settings.CHAT_SEARCH_PAGE_SIZE = 10, 5
    client.force_login(alice)
    say(general, alice, "kiwi alone")
    client.get("/search/", {"q": "kiwi"})  # the session and the like, cached from here on
    with CaptureQueriesContext(connection) as few:
        client.get("/search/", {"q": "kiwi"})
    for i in range(30):
        say(general, alice, f"kiwi {i}")
    with CaptureQueriesContext(connection) as many:
        response = client.get("/search/", {"q": "kiwi"})

    assert len(response.context["hits"]) == 5
    assert len(many.captured_queries) == len(few.captured_queries)
    assert not [q["sql"] for q in many.captured_queries if "COUNT(" in q["sql"].upper()]


def test_the_search_page_refuses_a_bad_query_with_what_to_fix(client, alice):
    client.force_login(alice)
    response = client.get("/search/", {"q": "after:soon"})
    assert response.status_code == 400
    assert "after: takes a day as YYYY-MM-DD" in response.content.decode()


def test_the_header_links_to_search(client, alice):
    client.force_login(alice)
    assert 'href="/search/"' in client.get("/").content.decode()


# Opening a room at a message ------------------------------------------------------------


def test_messages_around_a_seq_hold_it_in_the_middle(alice, general):
    messages = [say(general, alice, f"m{i}") for i in range(1, 21)]
    messages[9].deleted_at = datetime.now(UTC)
    messages[9].save()

    page = selectors.messages_around(room=general, seq=10, limit=6)
    assert [m.seq for m in page.messages] == [6, 7, 8, 9, 11, 12]  # 10 deleted: its place
    assert (page.has_more, page.has_newer) == (True, True)
    edge = selectors.messages_around(room=general, seq=19, limit=6)
    assert [m.seq for m in edge.messages] == [16, 17, 18, 19, 20]
    assert (edge.has_more, edge.has_newer) == (True, False)


def config_of(response: Any) -> dict:
    """The room page's config as the browser reads it (json_script)."""
    return json.loads(json.dumps(response.context["config"]))


def test_a_room_opened_at_an_old_message_shows_it_and_follows_the_room_from_its_counter(
    client, alice, general, settings
):
    settings.CHAT_PAGE_SIZE = 6
    for i in range(1, 21):
        say(general, alice, f"m{i}")
    client.force_login(alice)

    response = client.get("/chat/general/", {"at": 5})
    config = config_of(response)
    assert [line["seq"] for line in response.context["lines"]] == [2, 3, 4, 5, 6, 7]
    assert (config["at"], config["detached"], config["lastSeq"]) == (5, True, 20)
    assert 'id="detached"' in response.content.decode()

    near_end = client.get("/chat/general/", {"at": 18})
    config = config_of(near_end)
    assert (config["detached"], config["lastSeq"], config["hasMore"]) == (False, 20, True)
    assert 'id="detached"' not in near_end.content.decode()


@pytest.mark.parametrize("at", ["x", "-3", "0", "1e3", "99999999999999999999"])
def test_a_room_opened_at_no_seq_shows_its_latest_messages(client, alice, general, at):
    for i in range(1, 4):
        say(general, alice, f"m{i}")
    client.force_login(alice)

    config = config_of(client.get("/chat/general/", {"at": at}))
    assert (config["at"], config["detached"], config["lastSeq"]) == (None, False, 3)


# The index itself ----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_migration_indexes_the_messages_already_there(make_user):
    before, after = (
        ("chat", "0012_merge_0010_message_room_index_0011"),
        ("chat", "0013_message_search"),
    )
    alice = make_user("alice")
    executor = MigrationExecutor(connection)
    executor.migrate([before])
    apps = executor.loader.project_state([before]).apps
    OldRoom, OldMessage = apps.get_model("chat", "Room"), apps.get_model("chat", "Message")
    room = OldRoom.objects.create(name="Old", slug="old", last_seq=2)
    OldMessage.objects.create(room=room, author_id=alice.pk, body="archaeology", seq=1, rev=1)
    OldMessage.objects.create(
        room=room,
        author_id=alice.pk,
        body="archaeology gone",
        seq=2,
        rev=2,
        deleted_at=datetime.now(UTC),
    )

    executor = MigrationExecutor(connection)
    executor.migrate([after])
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert found(alice, "archaeology") == ["archaeology"]


@pytest.mark.skipif("connection.vendor != 'sqlite'")
@pytest.mark.django_db(transaction=True)
def test_sqlite_triggers_lost_to_a_table_remake_are_rebuilt_after_migrate(alice, general):
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TRIGGER {fulltext.FTS_TABLE}_insert")
    say(general, alice, "written while the trigger was gone")

    assert fulltext.sqlite_ensure(connection) is True
    assert found(alice, "trigger") == ["written while the trigger was gone"]
    assert fulltext.sqlite_ensure(connection) is False  # whole again: nothing to do
