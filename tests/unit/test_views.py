"""Pages: lobby, rooms, accounts, and who may see what."""

import datetime
import importlib
import re

import pytest
from django.apps import apps as django_apps
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import resolve, reverse

from chat import avatars, services
from chat.models import Ban, Profile, Room
from chat.web import views
from tests.support.factories import DM_LOOKALIKE_NAMES, PASSWORD, post_messages

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_client(alice) -> Client:
    client = Client()
    client.force_login(alice)
    return client


def test_a_fresh_install_has_a_public_general_room():
    """The data migration makes it (run here on its own: a transactional test that ran
    before in this process flushed the row the migrations made)."""
    Room.objects.filter(slug="general").delete()
    general_room = importlib.import_module("chat.migrations.0002_general_room")

    general_room.create_general(django_apps, None)

    room = Room.objects.get(slug="general")
    assert not room.is_private
    assert not room.is_archived


def test_lobby_lists_visible_rooms_with_links(client, alice, make_room, general):
    make_room("mine", is_private=True, members=(alice,))
    make_room("theirs", is_private=True)
    make_room("closed", is_archived=True)

    anonymous = client.get("/").content.decode()
    client.force_login(alice)
    signed_in = client.get("/").content.decode()

    assert 'href="/chat/general/"' in anonymous
    assert "/chat/mine/" not in anonymous
    assert 'href="/chat/mine/"' in signed_in
    assert "/chat/theirs/" not in signed_in
    assert "/chat/closed/" not in signed_in


def test_signed_in_users_create_a_public_room_from_a_name(alice_client, alice):
    response = alice_client.post("/rooms/new/", {"name": "Django Tips", "topic": "ORM"})

    assert response.status_code == 302
    assert re.fullmatch(r"/chat/django-tips-[0-9a-f]{6}/", response["Location"])
    room = Room.objects.get(slug__startswith="django-tips-")
    assert (room.name, room.topic, room.is_private, room.created_by) == (
        "Django Tips",
        "ORM",
        False,
        alice,
    )


@pytest.mark.parametrize("name", ["日本語チーム", "Ελληνικά", "Café Ünïcode"])
def test_the_lobby_creates_a_room_named_in_any_script_and_lands_in_it(alice_client, name):
    response = alice_client.post("/rooms/new/", {"name": name}, follow=True)

    assert response.status_code == 200
    (location, _status), *_ = response.redirect_chain
    room = Room.objects.get(name=name)
    assert location == f"/chat/{room.slug}/"
    assert f'<h1 id="room-name">{name}</h1>' in response.content.decode()


def test_the_lobby_form_says_an_emoji_only_name_needs_a_letter(alice_client):
    response = alice_client.post("/rooms/new/", {"name": "🎉🎉🎉"})

    assert response.status_code == 400
    assert "at least one letter or digit" in response.content.decode()
    assert not Room.objects.exclude(slug="general").exists()


def test_creating_a_room_with_a_taken_name_shows_an_error(alice_client, general):
    response = alice_client.post("/rooms/new/", {"name": "General"})

    assert response.status_code == 400
    assert "already exists" in response.content.decode()
    assert Room.objects.filter(slug="general").count() == 1


@pytest.mark.parametrize("name", DM_LOOKALIKE_NAMES)
def test_the_lobby_form_refuses_every_name_in_the_direct_message_namespace(alice_client, name):
    response = alice_client.post("/rooms/new/", {"name": name})

    assert response.status_code == 400
    assert "kept for direct messages" in response.content.decode()
    assert not Room.objects.filter(slug__istartswith="dm").exists()


def test_the_lobby_form_never_says_a_hidden_room_exists(alice_client, bob, make_room):
    make_room("secret", name="Secret", is_private=True, members=(bob,))

    response = alice_client.post("/rooms/new/", {"name": "Secret"})

    assert response.status_code == 302
    assert re.fullmatch(r"/chat/secret-[0-9a-f]{6}/", response["Location"])


@pytest.mark.parametrize("slug", ["new", "rooms", "admin", "accounts", "static", "dm"])
def test_every_room_slug_reaches_its_room_page_and_no_other_route(slug):
    """/chat/@user/ is the only other route under /chat/, and no slug holds an "@"."""
    assert resolve(f"/chat/{slug}/").func is views.room
    assert resolve(reverse("chat:room", kwargs={"slug": slug})).url_name == "room"


def create_room(client: Client, name: str, address: str = "198.51.100.7"):
    return client.post("/rooms/new/", {"name": name}, REMOTE_ADDR=address)


def test_room_creation_is_limited_per_user(settings, alice_client, make_user):
    settings.CHAT_ROOM_CREATE_RATE_LIMIT = "2/3600"
    made = [create_room(alice_client, f"Room {n}", address=f"203.0.113.{n}") for n in range(2)]

    refused = create_room(alice_client, "One more", address="203.0.113.99")
    other = Client()
    other.force_login(make_user("carol"))

    assert [r.status_code for r in made] == [302, 302]
    assert refused.status_code == 429
    assert 3500 <= int(refused["Retry-After"]) <= 3600
    assert "Too many new rooms" in refused.content.decode()
    assert not Room.objects.filter(name="One more").exists()
    assert create_room(other, "Carols", address="192.0.2.1").status_code == 302


def test_room_creation_is_limited_per_address(settings, make_user):
    settings.CHAT_ROOM_CREATE_RATE_LIMIT = "2/3600"
    clients = []
    for n in range(3):
        clients.append(Client())
        clients[-1].force_login(make_user(f"sock{n}"))

    replies = [create_room(c, f"Puppet {n}").status_code for n, c in enumerate(clients)]

    assert replies == [302, 302, 429]
    assert create_room(clients[2], "Elsewhere", address="192.0.2.1").status_code == 302


def test_a_refused_room_form_does_not_count(settings, alice_client, general):
    settings.CHAT_ROOM_CREATE_RATE_LIMIT = "1/3600"
    assert create_room(alice_client, "General").status_code == 400  # taken

    assert create_room(alice_client, "Fresh").status_code == 302


def test_anonymous_visitors_cannot_create_rooms(client):
    response = client.post("/rooms/new/", {"name": "Sneaky"})

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert not Room.objects.filter(slug="sneaky").exists()


def test_room_page_renders_latest_messages_composer_and_status(alice_client, alice, general):
    post_messages(general, alice, 55)

    page = alice_client.get("/chat/general/").content.decode()

    assert "message 55" in page
    assert "message 6<" in page
    assert "message 5<" not in page  # older than the latest 50
    assert '<label for="composer-input">Message</label>' in page
    assert ">Send</button>" in page
    assert 'role="log"' in page
    assert 'role="status"' in page
    assert '"lastSeq": 55' in page


def test_room_page_escapes_user_text(alice_client, alice, make_room):
    room = make_room("xss", name="<script>alert(1)</script>", topic="<img src=x onerror=alert(2)>")
    post_messages(room, alice, 0)
    room.messages.create(author=alice, body="<script>alert(3)</script>", seq=1, rev=1)

    page = alice_client.get("/chat/xss/").content.decode()

    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in page
    assert "<img src=x" not in page


def test_anonymous_visitors_can_read_and_are_invited_to_log_in(client, alice, general):
    post_messages(general, alice, 1)

    page = client.get("/chat/general/").content.decode()

    assert "message 1" in page
    assert "composer-input" not in page
    assert "/accounts/login/?next=/chat/general/" in page


@pytest.mark.parametrize("who", ["anonymous", "outsider"])
def test_private_rooms_are_404_to_non_members(client, make_user, make_room, who):
    make_room("secret", is_private=True)
    if who == "outsider":
        client.force_login(make_user())

    response = client.get("/chat/secret/")

    assert response.status_code == 404
    assert client.get("/chat/no-such-room/").status_code == 404


def test_private_rooms_open_for_members(alice_client, alice, make_room):
    make_room("secret", is_private=True, members=(alice,))

    assert alice_client.get("/chat/secret/").status_code == 200


def test_login_page_logs_in_and_follows_next(client, alice):
    form = client.get("/accounts/login/?next=/chat/general/")
    response = client.post(
        "/accounts/login/",
        {"username": "alice", "password": PASSWORD, "next": "/chat/general/"},
    )

    assert form.status_code == 200
    assert response.status_code == 302
    assert response["Location"] == "/chat/general/"
    assert client.get("/").context["user"] == alice


def test_signup_creates_the_account_and_signs_in(client, general):
    response = client.post(
        "/accounts/signup/",
        {"username": "carol", "password1": PASSWORD, "password2": PASSWORD, "next": "/chat/x/"},
    )

    assert response.status_code == 302
    assert response["Location"] == "/chat/x/"
    assert client.get("/").context["user"].username == "carol"
    # A new account starts with the default room in its sidebar.
    carol = get_user_model().objects.get(username="carol")
    assert list(Room.objects.filter(members=carol).values_list("slug", flat=True)) == ["general"]


def sign_up(username: str, address: str = "198.51.100.7"):
    return Client().post(
        "/accounts/signup/",
        {"username": username, "password1": PASSWORD, "password2": PASSWORD},
        REMOTE_ADDR=address,
    )


@pytest.mark.parametrize(
    ("username", "why"),
    [
        ("\u0430lice", "mix letters"),  # Cyrillic a, then Latin
        ("b\u043eb", "mix letters"),  # Cyrillic o
        ("\u03a9mega", "mix letters"),  # Greek Omega, then Latin
        ("\u0430\u0440\u0435", "look like one in Latin"),  # all Cyrillic, reads "ape"
        ("\u03bf\u03ba", "look like one in Latin"),  # all Greek, reads "ok"
        ("\u3164", "letters or digits you can see"),  # Hangul filler: a letter that draws nothing
        ("x\u3164", "letters or digits you can see"),
        # What @room and @here mean (services.EVERYONE_WORDS), in any letter case.
        ("room", "notifies a whole room"),
        ("Here", "notifies a whole room"),
    ],
)
def test_signup_refuses_usernames_that_could_pass_for_another(username, why):
    response = sign_up(username)

    assert response.status_code == 200
    assert why in response.content.decode()
    assert not get_user_model().objects.filter(username=username).exists()


@pytest.mark.parametrize(
    "username",
    ["j\u00fcrgen", "\u0438\u0432\u0430\u043d", "\u305f\u306a\u304b\u592a\u90ce", "ann_2", "roomy"],
)
def test_signup_accepts_names_in_one_script(username):
    assert sign_up(username).status_code == 302
    assert get_user_model().objects.filter(username=username).exists()


def test_signups_are_limited_per_address(settings):
    settings.CHAT_SIGNUP_RATE_LIMIT = "2/3600"
    made = [sign_up(f"new{n}").status_code for n in range(2)]

    refused = sign_up("one-more")

    assert made == [302, 302]
    assert refused.status_code == 429
    assert 3500 <= int(refused["Retry-After"]) <= 3600
    assert "Too many sign-ups" in refused.content.decode()
    assert not get_user_model().objects.filter(username="one-more").exists()
    assert sign_up("elsewhere", address="192.0.2.1").status_code == 302
    assert Client().get("/accounts/signup/", REMOTE_ADDR="198.51.100.7").status_code == 200


@pytest.mark.parametrize("taken", ["alice", "ALICE"])
def test_signup_with_a_taken_username_says_so(alice, taken):
    response = sign_up(taken)

    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert get_user_model().objects.filter(username__iexact="alice").count() == 1


def test_signup_applies_djangos_password_validators(client):
    response = client.post(
        "/accounts/signup/", {"username": "dave", "password1": "123", "password2": "123"}
    )

    assert response.status_code == 200
    assert "too short" in response.content.decode()
    assert not get_user_model().objects.filter(username="dave").exists()


def test_signup_ignores_an_offsite_next(client):
    response = client.post(
        "/accounts/signup/",
        {
            "username": "erin",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "next": "https://evil.example/",
        },
    )

    assert response["Location"] == "/"


def test_logout_is_a_post(alice_client):
    assert alice_client.get("/accounts/logout/").status_code == 405
    response = alice_client.post("/accounts/logout/")

    assert response.status_code == 302
    assert not alice_client.get("/").context["user"].is_authenticated


def test_opening_a_dm_never_lands_in_a_room_that_took_its_slug(alice_client, alice, make_user):
    carol, attacker = make_user("carol"), make_user("mallory")
    low, high = sorted([alice.pk, carol.pk])
    squat = Room.objects.create(name="Dm", slug=f"dm-{low}-{high}")  # made before the fix
    squat.members.add(attacker)

    response = alice_client.get("/chat/@carol/")

    room = response.context["room"]
    assert response.status_code == 200
    assert room != squat
    assert room.is_direct
    assert room.is_private
    assert set(room.members.all()) == {alice, carol}
    spy = Client()
    spy.force_login(attacker)
    assert spy.get(f"/chat/{room.slug}/").status_code == 404


# Membership: "your rooms" ------------------------------------------------------------------


def sidebar(response) -> list[str]:
    return [room.slug for room in response.context["rooms"]]


def test_the_sidebar_lists_the_users_rooms_starred_first_then_by_name(
    alice_client, alice, make_room, general
):
    for slug in ("apples", "zebras", "mangos"):
        services.membership_join(room=make_room(slug), user=alice)
    make_room("unjoined")
    make_room("secret", is_private=True, members=(alice,))
    services.membership_star(room=Room.objects.get(slug="zebras"), user=alice, starred=True)

    response = alice_client.get("/chat/general/")

    assert sidebar(response) == ["zebras", "apples", "mangos", "secret"]
    html = response.content.decode()
    assert 'id="join-form"' in html
    assert 'action="/chat/general/join/"' in html


def test_a_public_room_one_has_not_joined_opens_by_url_with_a_join_button(alice_client, general):
    html = alice_client.get("/chat/general/").content.decode()

    join = re.search(r'<form class="inline" id="join-form"[^>]*>', html).group(0)
    leave = re.search(r'<form class="inline" id="leave-form"[^>]*>', html).group(0)
    assert "hidden" not in join
    assert "hidden" in leave


def test_the_join_leave_and_star_forms_change_the_sidebar(alice_client, alice, general):
    assert alice_client.post("/chat/general/join/").status_code == 302
    assert sidebar(alice_client.get("/chat/general/")) == ["general"]
    alice_client.post("/chat/general/star/", {"starred": "1"})
    assert general.memberships.get(user=alice).starred is True

    response = alice_client.post("/chat/general/leave/")

    assert response["Location"] == "/chat/general/"
    after = alice_client.get("/chat/general/")
    assert sidebar(after) == []
    assert "Rooms you join are listed here" in after.content.decode()


def test_leaving_a_private_room_goes_to_the_lobby_and_the_room_is_gone(
    alice_client, alice, make_room
):
    make_room("secret", is_private=True, members=(alice,))

    response = alice_client.post("/chat/secret/leave/")

    assert response["Location"] == "/"
    assert alice_client.get("/chat/secret/").status_code == 404


def test_leaving_a_direct_message_of_two_is_refused_with_a_clear_error(alice_client, alice, bob):
    dm = services.direct_room_get_or_create(user=alice, other=bob)

    response = alice_client.post(f"/chat/{dm.slug}/leave/", follow=True)

    assert services.DIRECT_PAIR_LEAVES in response.content.decode()
    assert set(dm.members.all()) == {alice, bob}


def leave_form_shown(client: Client, room: Room) -> bool:
    page = client.get(f"/chat/{room.slug}/").content.decode()
    form = re.search(r'<form[^>]*id="leave-direct-form"[^>]*>', page)
    assert form is not None
    return " hidden" not in form.group(0)


def test_a_group_dm_offers_leave_conversation_and_a_dm_of_two_does_not(
    alice_client, alice, bob, make_user
):
    carol = make_user("carol")
    pair = services.direct_room_get_or_create(user=alice, other=bob)
    group = services.direct_group_get_or_create(user=alice, others=[bob, carol])

    assert (leave_form_shown(alice_client, pair), leave_form_shown(alice_client, group)) == (
        False,
        True,
    )
    page = alice_client.get(f"/chat/{pair.slug}/").content.decode()
    assert f'data-room="{group.slug}"' in page
    assert re.search(rf'data-room="{group.slug}"[^>]*data-people="3"', page)

    response = alice_client.post(f"/chat/{group.slug}/leave/")

    assert response["Location"] == "/"
    assert alice_client.get(f"/chat/{group.slug}/").status_code == 404
    bob_client = Client()
    bob_client.force_login(bob)
    assert leave_form_shown(bob_client, group) is False  # two are left: it stays theirs


def test_add_people_opens_the_new_conversation_of_everyone(alice_client, alice, bob, make_user):
    make_user("carol"), make_user("dave")
    pair = services.direct_room_get_or_create(user=alice, other=bob)

    response = alice_client.post(f"/chat/{pair.slug}/people/", {"usernames": "carol, dave"})

    group = Room.objects.get(is_direct=True, name="alice, bob, carol & dave")
    assert response["Location"] == f"/chat/{group.slug}/"
    assert set(pair.members.all()) == {alice, bob}


def test_add_people_shows_a_refusal_and_hides_the_room_from_others(
    alice_client, alice, bob, make_user
):
    pair = services.direct_room_get_or_create(user=alice, other=bob)
    outsider = Client()
    outsider.force_login(make_user("carol"))

    refused = alice_client.post(f"/chat/{pair.slug}/people/", {"usernames": "nobody"}, follow=True)

    assert "No user called &#x27;nobody&#x27;." in refused.content.decode()
    assert outsider.post(f"/chat/{pair.slug}/people/", {"usernames": "carol"}).status_code == 404
    assert alice_client.get(f"/chat/{pair.slug}/people/").status_code == 405
    assert Room.objects.filter(is_direct=True).count() == 1


def test_the_banned_cannot_join(alice_client, alice, general):
    Ban.objects.create(room=general, user=alice)

    assert alice_client.post("/chat/general/join/").status_code == 403
    assert not general.members.exists()


def test_membership_forms_need_a_login_a_post_and_the_csrf_token(alice, general):
    anonymous = Client()
    response = anonymous.post("/chat/general/join/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    assert strict.post("/chat/general/join/").status_code == 403
    assert strict.get("/chat/general/join/").status_code == 405
    assert not general.members.exists()


def test_the_lobby_lists_every_public_room_with_member_counts_marking_the_users(
    alice_client, alice, bob, make_room, general
):
    services.membership_join(room=general, user=alice)
    services.membership_join(room=general, user=bob)
    make_room("quiet")

    response = alice_client.get("/")

    counts = {r.slug: (r.member_count, r.is_member) for r in response.context["rooms"]}
    assert counts == {"general": (2, True), "quiet": (0, False)}
    assert "2 members" in response.content.decode()


def test_the_lobby_searches_room_names_in_any_case(client, make_room, general):
    make_room("django-tips", name="Django Tips")
    make_room("djangonauts", name="DJANGOnauts")

    response = client.get("/?q=djAngo")

    assert sorted(r.slug for r in response.context["rooms"]) == ["django-tips", "djangonauts"]
    assert "No room called" in client.get("/?q=nothing-like-it").content.decode()


def test_lobby_and_room_pages_take_a_bounded_number_of_queries_at_scale(
    alice_client, alice, general, django_assert_num_queries, settings
):
    rooms = Room.objects.bulk_create(
        Room(name=f"Room {i:04}", slug=f"room-{i:04}") for i in range(1000)
    )
    Room.members.through.objects.bulk_create(
        Room.members.through(room=room, user=alice) for room in rooms[:200]
    )

    # The lobby: session, user, the rooms' count, a page of rooms (with counts and marks),
    # direct messages; on the last page as on the first.
    with django_assert_num_queries(5):
        lobby = alice_client.get("/")
    with django_assert_num_queries(5):
        last = alice_client.get("/?page=21")
    # The room: session, user, room, ban, messages, membership, sidebar, direct messages.
    with django_assert_num_queries(8):
        page = alice_client.get("/chat/room-0000/")

    assert len(lobby.context["rooms"]) == settings.CHAT_LOBBY_PAGE_SIZE
    assert lobby.context["page"].paginator.count == 1001
    assert len(last.context["rooms"]) == 1001 % settings.CHAT_LOBBY_PAGE_SIZE
    assert len(page.context["rooms"]) == 200


def test_the_lobby_is_paged_and_its_pages_keep_the_search(alice_client, alice, settings):
    settings.CHAT_LOBBY_PAGE_SIZE = 2
    for i in range(5):
        services.room_create(name=f"Team {i}", created_by=alice)
    services.room_create(name="Other", created_by=alice)

    first = alice_client.get("/?q=team").content.decode()
    third = alice_client.get("/?q=team&page=3")

    assert 'href="?q=team&amp;page=2"' in first
    assert "Page 1 of 3" in first
    assert [room.name for room in third.context["rooms"]] == ["Team 4"]
    assert 'rel="prev" href="?q=team&amp;page=2"' in third.content.decode()


# Rooms run by their owners: the settings page and its forms ---------------------------------


def test_the_lobby_form_makes_a_private_room_its_creator_owns(alice_client, alice, bob):
    response = alice_client.post("/rooms/new/", {"name": "Plans", "topic": "", "private": "on"})

    room = Room.objects.get(name="Plans")
    assert response.status_code == 302
    assert response["Location"] == f"/chat/{room.slug}/"
    assert room.is_private
    assert list(room.memberships.values_list("user", "role")) == [(alice.pk, "owner")]
    page = alice_client.get(f"/chat/{room.slug}/").content.decode()
    assert f'href="/chat/{room.slug}/settings/" id="room-settings">' in page
    other = Client()
    other.force_login(bob)
    assert other.get(f"/chat/{room.slug}/").status_code == 404


@pytest.fixture
def plans(alice, bob) -> Room:
    """Alice's private room, with bob invited."""
    room = services.room_create(name="Plans", created_by=alice, is_private=True)
    services.membership_invite(room=room, by=alice, username="bob")
    return room


@pytest.mark.parametrize(
    ("who", "status"),
    [("alice", 200), ("bob", 403), ("carol", 404), ("moderator", 404), (None, 302)],
)
def test_a_private_rooms_settings_open_to_its_owners_and_are_a_404_to_outsiders(
    plans, make_user, who, status
):
    make_user("carol")
    make_user("moderator", is_staff=True)
    client = Client()
    if who:
        client.force_login(get_user_model().objects.get(username=who))

    response = client.get(f"/chat/{plans.slug}/settings/")

    assert response.status_code == status
    if status == 200:
        page = response.content.decode()
        assert 'list="invite-suggestions"' in page
        assert "Make owner: bob" in page


def test_staff_run_public_rooms_from_their_settings(staff, alice):
    room = services.room_create(name="Open", created_by=alice)
    client = Client()
    client.force_login(staff)

    assert client.get(f"/chat/{room.slug}/settings/").status_code == 200
    assert 'id="room-settings">' in client.get(f"/chat/{room.slug}/").content.decode()
    response = client.post(f"/chat/{room.slug}/settings/details/", {"name": "Agora", "topic": ""})
    assert response.status_code == 302
    assert Room.objects.get(pk=room.pk).name == "Agora"


def test_the_settings_forms_need_the_csrf_token(plans, alice, make_user):
    make_user("carol")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)

    refused = strict.post(f"/chat/{plans.slug}/settings/invite/", {"username": "carol"})
    page = strict.get(f"/chat/{plans.slug}/settings/")
    token = page.cookies["csrftoken"].value
    accepted = strict.post(
        f"/chat/{plans.slug}/settings/invite/", {"username": "carol", "csrfmiddlewaretoken": token}
    )

    assert refused.status_code == 403
    assert accepted.status_code == 302
    assert plans.members.filter(username="carol").exists()


def test_the_settings_forms_run_the_room_and_say_what_went_wrong(plans, alice, alice_client):
    url = f"/chat/{plans.slug}/settings/"

    step_down = alice_client.post(url + "step-down/", follow=True)
    assert "last owner" in step_down.content.decode()
    assert alice_client.post(url + "owner/", {"username": "bob"}).status_code == 302
    assert alice_client.post(url + "step-down/")["Location"] == f"/chat/{plans.slug}/"
    assert alice_client.get(url).status_code == 403  # a member now
    assert alice_client.post(url + "remove/", {"username": "bob"}).status_code == 403
    assert plans.members.filter(username="bob").exists()


def test_an_owner_removes_a_member_and_archives_the_room(plans, alice_client, bob):
    url = f"/chat/{plans.slug}/settings/"

    assert alice_client.post(url + "remove/", {"username": "bob"}).status_code == 302
    assert not plans.members.filter(pk=bob.pk).exists()
    assert alice_client.post(url + "archive/")["Location"] == f"/chat/{plans.slug}/"
    assert Room.objects.get(pk=plans.pk).is_archived
    # Archived: nothing left to run but un-archiving it, which the room page still leads to.
    room_page = alice_client.get(f"/chat/{plans.slug}/").content.decode()
    assert f'href="/chat/{plans.slug}/settings/" id="room-settings">' in room_page
    settings_page = alice_client.get(url).content.decode()
    assert 'id="unarchive-form"' in settings_page
    assert 'id="invite-form"' not in settings_page
    assert 'id="archive-form"' not in settings_page
    assert alice_client.post(url + "invite/", {"username": "bob"}, follow=True).status_code == 200
    assert not plans.members.filter(pk=bob.pk).exists()
    assert alice_client.post(url + "unarchive/")["Location"] == f"/chat/{plans.slug}/"
    assert not Room.objects.get(pk=plans.pk).is_archived
    again = alice_client.post(url + "unarchive/", follow=True).content.decode()
    assert "This room is not archived." in again


def test_nobody_outside_a_private_room_can_post_to_its_settings(plans, make_user):
    client = Client()
    client.force_login(make_user("carol"))

    for action in ("details", "invite", "remove", "owner", "step-down", "archive", "unarchive"):
        response = client.post(f"/chat/{plans.slug}/settings/{action}/", {"username": "bob"})
        assert response.status_code == 404, action
    assert client.get(f"/chat/{plans.slug}/settings/details/").status_code == 405


def test_usernames_suggests_active_names_to_signed_in_users_only(client, alice, make_user):
    make_user("alfred")
    make_user("alan", is_active=False)

    anonymous = client.get("/usernames/?q=al")
    client.force_login(alice)
    answer = client.get("/usernames/?q=AL")

    assert anonymous.status_code == 302
    assert answer.status_code == 200
    assert sorted(answer.json()["usernames"]) == ["alfred", "alice"]
    assert client.get("/usernames/").json() == {"usernames": []}


def test_usernames_in_a_room_suggests_who_would_hear_a_mention_to_its_readers_only(
    client, plans, alice, bob, make_user
):
    """The composer's @ suggestions: the room's members who may be notified (active, not
    banned), the asker aside; a room the asker may not read answers like its page."""
    for name in ("bea", "bert", "bill"):
        make_user(name)
    services.membership_invite(room=plans, by=alice, username="bea")
    services.membership_invite(room=plans, by=alice, username="bert")
    services.membership_invite(room=plans, by=alice, username="bill")
    type(alice).objects.filter(username="bert").update(is_active=False)
    Ban.objects.create(room=plans, user=type(alice).objects.get(username="bill"))
    url = f"/usernames/?room={plans.slug}&q="

    client.force_login(alice)
    assert client.get(f"{url}B").json() == {"usernames": ["bea", "bob"]}
    assert client.get(url).json() == {"usernames": ["bea", "bob"]}  # not alice herself
    client.force_login(bob)
    assert client.get(url).json() == {"usernames": ["alice", "bea"]}
    client.force_login(make_user("outsider"))
    assert client.get(url).status_code == 404  # a private room it may not see
    assert client.get("/usernames/?room=nowhere&q=a").status_code == 404
    client.force_login(type(alice).objects.get(username="bill"))
    assert client.get(url).status_code == 403  # banned


def test_the_room_page_offers_its_settings_to_owners_only(plans, alice, bob):
    def page_of(user) -> str:
        client = Client()
        client.force_login(user)
        return client.get(f"/chat/{plans.slug}/").content.decode()

    link = f'href="/chat/{plans.slug}/settings/" id="room-settings"'
    assert f"{link}>" in page_of(alice)
    assert f"{link} hidden>" in page_of(bob)


# The people directory -------------------------------------------------------------------------


def test_the_people_page_asks_anonymous_visitors_to_log_in(client):
    response = client.get("/people/?q=bob")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/people/%3Fq%3Dbob"


def test_the_people_page_lists_active_users_each_with_a_message_link(
    alice_client, alice, bob, make_user
):
    make_user("zed", is_active=False)

    page = alice_client.get("/people/").content.decode()

    names = [p.username for p in alice_client.get("/people/").context["page"].object_list]
    assert names == ["alice", "bob"]  # zed is deactivated: nobody
    assert 'href="/chat/@bob/"' in page
    assert 'href="/chat/@alice/"' not in page  # no DM with oneself
    # As a word: the page's CSRF token and CSP nonce are random letters and digits.
    assert re.search(r"\bzed\b", page) is None


def test_the_people_page_searches_usernames_in_any_letter_case(alice_client, make_user):
    for name in ("Bobby", "rebob", "carol"):
        make_user(name)

    response = alice_client.get("/people/?q=BOB")

    assert [p.username for p in response.context["page"].object_list] == ["Bobby", "rebob"]
    assert "Nobody called" in alice_client.get("/people/?q=nothing-like-it").content.decode()


def test_the_people_page_is_paginated_and_keeps_the_search(alice_client, make_user, settings):
    settings.CHAT_PEOPLE_PAGE_SIZE = 2
    for name in ("pat1", "pat2", "pat3", "other"):
        make_user(name)

    first = alice_client.get("/people/?q=pat")
    second = alice_client.get("/people/?q=pat&page=2")
    beyond = alice_client.get("/people/?q=pat&page=99")

    assert [p.username for p in first.context["page"].object_list] == ["pat1", "pat2"]
    assert 'href="?q=pat&amp;page=2"' in first.content.decode()
    assert [p.username for p in second.context["page"].object_list] == ["pat3"]
    assert [p.username for p in beyond.context["page"].object_list] == ["pat3"]  # the last


def test_the_people_page_takes_a_bounded_number_of_queries(alice_client, django_assert_num_queries):
    get_user_model().objects.bulk_create(
        get_user_model()(username=f"user{i:04}") for i in range(500)
    )

    # Session, user, the count for the paginator, one page of people.
    with django_assert_num_queries(4):
        response = alice_client.get("/people/?q=user")

    assert len(response.context["page"].object_list) == 50


def test_a_first_direct_message_counts_as_unread_in_the_recipients_sidebar(alice, bob):
    room = services.direct_room_get_or_create(user=alice, other=bob)
    post_messages(room, alice, 2)
    client = Client()
    client.force_login(bob)

    page = client.get("/chat/general/")

    (direct,) = page.context["directs"]
    assert (direct.slug, direct.unread, direct.read_mark) == (room.slug, 2, 0)


def test_a_group_direct_message_opens_from_its_names_in_any_order(alice_client, alice, make_user):
    for name in ("bob", "carol", "dave"):
        make_user(name)

    first = alice_client.get("/chat/@carol,bob/")
    again = alice_client.get("/chat/@bob,alice,carol/")  # naming oneself too changes nothing

    assert first.status_code == again.status_code == 200
    assert first.context["room"] == again.context["room"]
    assert first.context["room"].name == "alice, bob & carol"
    assert alice_client.get("/chat/@bob,nobody/").status_code == 404
    assert alice_client.get("/chat/@alice/").status_code == 404
    assert alice_client.get("/chat/@,/").status_code == 404
    assert Room.objects.filter(is_direct=True).count() == 1


def test_a_group_direct_message_of_more_than_eight_is_refused_before_any_lookup(
    alice_client, django_assert_max_num_queries
):
    names = ",".join(f"user{i}" for i in range(8))
    with django_assert_max_num_queries(2):  # session and user: the names are never looked up
        assert alice_client.get(f"/chat/@{names}/").status_code == 404


def test_the_people_page_starts_a_group_with_the_people_ticked(alice_client, make_user):
    for name in ("bob", "carol"):
        make_user(name)

    page = alice_client.get("/people/").content.decode()
    response = alice_client.get("/people/group/?with=carol&with=bob")

    assert 'name="with" value="bob"' in page
    assert 'name="with" value="alice"' not in page
    assert response.status_code == 302
    assert response["Location"] == "/chat/@carol,bob/"
    assert alice_client.get("/people/group/")["Location"] == "/people/"


# Profiles beside messages ------------------------------------------------------------------


def test_the_room_page_shows_display_names_and_avatars_beside_messages(client, alice, bob, general):
    Profile.objects.create(user=alice, display_name="Alice Liddell", avatar="avatars/a.png")
    post_messages(general, alice, 1)
    post_messages(general, bob, 1)

    html = client.get("/chat/general/").content.decode()

    assert 'data-username="alice" title="@alice">Alice Liddell</button>' in html
    assert '<img class="avatar" src="/media/avatars/a.png" alt=""' in html
    assert 'data-username="bob">bob</button>' in html  # no profile: the username, initials
    hue = avatars.initials_hue("bob")
    assert f'<span class="avatar initials hue-{hue}" data-initials="B" aria-hidden="true">' in html


# Statuses, time zones and times -------------------------------------------------------------


def test_the_people_page_shows_each_persons_display_name_and_status_as_text(
    alice_client, bob, make_user
):
    Profile.objects.create(user=bob, display_name="Robert", status="<b>at lunch</b>")
    make_user("carol")  # never saved a profile: the username alone

    html = alice_client.get("/people/").content.decode()

    bob_row = html[html.index('data-user="bob"') : html.index('data-user="carol"')]
    assert '<span class="person-display">Robert</span>' in bob_row
    assert '<span class="person-status">&lt;b&gt;at lunch&lt;/b&gt;</span>' in bob_row
    carol_row = html[html.index('data-user="carol"') :]
    assert "person-status" not in carol_row.split("</li>")[0]


def test_profiles_answer_signed_in_users_for_active_people_only(
    alice_client, client, bob, make_user
):
    Profile.objects.create(
        user=bob, display_name="Robert", status="on call", time_zone="Asia/Tokyo"
    )
    make_user("carol")
    make_user("zed", is_active=False)

    answer = alice_client.get("/people/profiles/?u=bob&u=carol&u=zed&u=nobody").json()

    assert answer == {
        "profiles": {
            "bob": {
                "display_name": "Robert",
                "status": "on call",
                "time_zone": "Asia/Tokyo",
                "avatar": "",
            },
            "carol": {"display_name": "", "status": "", "time_zone": "", "avatar": ""},
        }
    }
    assert client.get("/people/profiles/?u=bob").status_code == 302  # log in first
    assert alice_client.post("/people/profiles/?u=bob").status_code == 405


def test_profiles_answer_at_most_50_names_in_a_bounded_number_of_queries(
    alice_client, django_assert_num_queries
):
    get_user_model().objects.bulk_create(
        get_user_model()(username=f"user{i:03}") for i in range(60)
    )
    query = "&".join(f"u=user{i:03}" for i in range(60))

    with django_assert_num_queries(3):  # session, user, the people with their profiles
        answer = alice_client.get(f"/people/profiles/?{query}").json()

    assert len(answer["profiles"]) == 50


def test_a_message_line_carries_its_full_date_for_the_page_to_show_on_hover(client, alice, general):
    (message,) = post_messages(general, alice, 1)
    stamp = message.created_at.astimezone(datetime.UTC)

    html = client.get("/chat/general/").content.decode()

    day, minute = stamp.strftime("%Y-%m-%d"), stamp.strftime("%H:%M")
    assert f'title="{day} {minute} UTC">{minute}</time>' in html
