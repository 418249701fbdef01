"""The reaction palette (chat/reactions.py), the summary a MSG carries
(events.reaction_summary) and the page's reaction buttons (chat/templatetags/reactions.py)."""

import pytest
from django.template import Context, Template

from chat import reactions, selectors, services
from chat.models import Message, Reaction
from chat.protocol import events
from chat.protocol.errors import ChatError
from chat.templatetags.reactions import who_reacted
from tests.support.factories import post_messages


@pytest.mark.parametrize(
    ("text", "expected"),
    [("👍", "👍"), ("❤️", "❤️"), ("❤", "❤️"), ("👍🏽", None), ("\ufe0f", None), ("", None)],
)
def test_only_the_palette_and_its_alternate_spellings_are_reactions(text, expected):
    assert reactions.canonical(text) == expected


@pytest.mark.parametrize(
    ("users", "count", "said"),
    [
        (["alice"], 1, "alice"),
        (["alice", "bob"], 2, "alice and bob"),
        (["alice", "bob", "carol"], 3, "alice, bob and carol"),
        (["alice", "bob"], 3, "alice, bob and 1 other"),
        (["alice", "bob"], 7, "alice, bob and 5 others"),
    ],
)
def test_who_reacted_names_them_and_counts_the_rest(users, count, said):
    assert who_reacted(users, count) == said


def test_the_summary_names_at_most_the_cap_and_counts_everyone(settings, general, make_user):
    settings.CHAT_REACTION_NAMES = 2
    [message] = post_messages(general, make_user("author"), 1)
    for n in range(3):
        user = make_user(f"fan{n}")
        services.reaction_set(room=general, message_id=message.pk, user=user, emoji="🎉", on=True)

    message.refresh_from_db()
    assert events.reaction_summary(message) == [
        {"emoji": "🎉", "count": 3, "users": ["fan0", "fan1"]}
    ]


def test_a_message_never_changed_since_it_was_posted_costs_no_query(
    general, alice, django_assert_num_queries
):
    [posted] = post_messages(general, alice, 1)
    loaded = Message.objects.select_related("room", "author", "author__profile")
    message = loaded.get(pk=posted.pk)  # as services and selectors load a message
    with django_assert_num_queries(0):
        assert events.message_dict(message)["reactions"] == []


def test_a_refused_reaction_stores_nothing(general, alice):
    [message] = post_messages(general, alice, 1)
    with pytest.raises(ChatError):
        services.reaction_set(room=general, message_id=message.pk, user=alice, emoji="x", on=True)
    assert not Reaction.objects.exists()


def test_a_reaction_button_escapes_every_text_and_presses_only_mine():
    template = Template("{% load reactions %}{% reaction_button r me %}")
    r = {"emoji": "👍", "count": 2, "users": ['<img src=x onerror="1">', "bob"]}

    mine = template.render(Context({"r": r, "me": "bob"}))
    theirs = template.render(Context({"r": r, "me": ""}))

    assert "<img" not in mine
    assert "&lt;img src=x onerror=&quot;1&quot;&gt; and bob reacted with 👍" in mine
    assert 'aria-pressed="true"' in mine
    assert 'aria-pressed="false"' in theirs


def test_a_page_loads_its_reactions_in_one_query(
    general, alice, bob, make_user, django_assert_num_queries
):
    messages = post_messages(general, alice, 5)
    for message, user, emoji in [(1, bob, "👍"), (1, alice, "👍"), (3, bob, "✅")]:
        services.reaction_set(
            room=general, message_id=messages[message].pk, user=user, emoji=emoji, on=True
        )

    with django_assert_num_queries(2):  # the page, then the reactions of its two
        page = selectors.messages_before(room=general, seq=None, limit=50)
        summaries = [events.message_dict(m)["reactions"] for m in page.messages]

    assert summaries == [
        [],
        [{"emoji": "👍", "count": 2, "users": ["bob", "alice"]}],
        [],
        [{"emoji": "✅", "count": 1, "users": ["bob"]}],
        [],
    ]
