"""Pages. Thin: read the request, call a selector or service, render."""

import json
import math
from collections.abc import Callable

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST
from django.views.static import serve

from .. import access, addresses, reactions, selectors, services
from ..models import Membership, Room
from ..protocol import events
from ..protocol.errors import ChatError, ErrorCode
from ..realtime import fallback
from ..search_query import parse_search
from . import throttle
from .forms import AccountForm, RoomCreateForm, RoomDetailsForm, SignupForm, UsernameForm


def lobby(request: HttpRequest) -> HttpResponse:
    """The rooms this visitor may see, and a form to create one when signed in."""
    return _render_lobby(request, RoomCreateForm())


@login_required
@require_POST
def room_create(request: HttpRequest) -> HttpResponse:
    form = RoomCreateForm(request.POST)
    keys = [f"user:{request.user.pk}", f"address:{addresses.request_address(request)}"]
    limit = settings.CHAT_ROOM_CREATE_RATE_LIMIT
    retry_after = throttle.action_retry_after(kind="room-create", keys=keys, limit=limit)
    if retry_after is not None:
        form.add_error(None, f"Too many new rooms: try again in {_minutes(retry_after)}.")
        return _too_many(_render_lobby(request, form, status=429), retry_after)
    if form.is_valid():
        try:
            room = services.room_create(
                name=form.cleaned_data["name"],
                topic=form.cleaned_data["topic"],
                created_by=request.user,
                is_private=form.cleaned_data["private"],
            )
        except ChatError as error:
            form.add_error("name", error.message)
        else:
            throttle.action_done(kind="room-create", keys=keys, limit=limit)
            return redirect(room)
    return _render_lobby(request, form, status=400)


def _render_lobby(request: HttpRequest, form: RoomCreateForm, status: int = 200) -> HttpResponse:
    query = request.GET.get("q", "")[:80]
    rooms = selectors.rooms_with_unread(
        rooms=selectors.rooms_in_lobby(user=request.user, query=query), user=request.user
    )
    # A page at a time: as many as one socket follows, so each listed room counts live.
    page = Paginator(rooms, settings.CHAT_LOBBY_PAGE_SIZE).get_page(request.GET.get("page"))
    directs = selectors.rooms_with_unread(
        rooms=selectors.rooms_visible_to(user=request.user, direct=True), user=request.user
    )
    username = request.user.get_username() if request.user.is_authenticated else None
    context = {
        "rooms": page.object_list,
        "page": page,
        "directs": directs,
        "form": form,
        "query": query,
        "lobby_config": {
            "username": username,
            "maxRooms": settings.CHAT_MAX_ROOMS_PER_SOCKET,
            # Where a room made elsewhere belongs: on this page of this search, or not.
            "query": query.strip(),
            "firstPage": not page.has_previous(),
            "lastPage": not page.has_next(),
            "pageSize": settings.CHAT_LOBBY_PAGE_SIZE,
        },
    }
    return render(request, "chat/lobby.html", context, status=status)


@login_required
def people(request: HttpRequest) -> HttpResponse:
    """The people directory: active users, searched by username (`?q=`), a page at a time,
    each with a "Message" link to the direct-message room with them."""
    query = request.GET.get("q", "")[:150]
    paginator = Paginator(selectors.people_search(query=query), settings.CHAT_PEOPLE_PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    context = {"page": page, "query": query, "max_others": services.DIRECT_MAX_PEOPLE - 1}
    return render(request, "chat/people.html", context)


@login_required
def search(request: HttpRequest) -> HttpResponse:
    """Messages the user may read that match `?q=` (words, and the filters `in:room`,
    `from:user`, `after:YYYY-MM-DD`, `before:YYYY-MM-DD`), best first, a page at a time; each
    opens its room at the message. Signed-in users only, like the people directory. Of many
    matches, only the newest CHAT_SEARCH_MAX_MATCHES are ranked and paged (`more` says so)."""
    query = request.GET.get("q", "")
    context: dict = {
        "query": query[:400],
        "page": None,
        "hits": [],
        "error": None,
        "more": False,
        "max_matches": settings.CHAT_SEARCH_MAX_MATCHES,
    }
    status = 200
    try:
        parsed = parse_search(query)
    except ChatError as error:
        context["error"], status = error.message, 400
    else:
        if not parsed.is_empty():
            found = selectors.messages_search(user=request.user, query=parsed)
            paginator = Paginator(found.ids, settings.CHAT_SEARCH_PAGE_SIZE)
            page = paginator.get_page(request.GET.get("page"))
            context["page"] = page
            context["more"], context["ranked"] = found.more, bool(parsed.text)
            context["hits"] = selectors.search_hits(ids=list(page.object_list), text=parsed.text)
    return render(request, "chat/search.html", context, status=status)


def room(request: HttpRequest, slug: str) -> HttpResponse:
    """A room's page: the latest messages, or with `?at=<seq>` those around that message
    (a search result), highlighted; the socket takes over from the last seq shown."""
    try:
        room = selectors.room_get_open_to(slug=slug, user=request.user)
    except ChatError as error:
        if error.code == ErrorCode.FORBIDDEN:
            raise PermissionDenied(error.message) from None
        raise Http404("No such room.") from None
    return _render_room(request, room)


@login_required
def direct(request: HttpRequest, username: str) -> HttpResponse:
    """/chat/@<username>/: the direct-message room with that user, made on first use;
    /chat/@<name>,<name>,…/ the group one with those users (the viewer may be named too)."""
    names = {name for name in username.split(",") if name} - {request.user.get_username()}
    if not names or len(names) >= services.DIRECT_MAX_PEOPLE:
        raise Http404("No such conversation.")
    others = [selectors.user_get_active(username=name) for name in sorted(names)]
    if any(other is None or other.pk == request.user.pk for other in others):
        raise Http404("No such user.")
    room = services.direct_group_get_or_create(user=request.user, others=others)
    return _render_room(request, room)


@login_required
def people_group(request: HttpRequest) -> HttpResponse:
    """The people page's "Message together": the group direct message with those checked."""
    names = request.GET.getlist("with")
    if not names:
        return redirect("chat:people")
    return redirect("chat:direct", username=",".join(names))


def _render_room(request: HttpRequest, room: Room) -> HttpResponse:
    """A room's page: its latest messages, and a sidebar of the visitor's rooms (with live
    counts) to switch between without reloading; the socket takes over from there.

    With `?at=<seq>` (a whole number; anything else is ignored), the messages around that
    seq instead. When newer ones lie beyond them the page is *detached*: it says so, links
    to the latest, and the socket follows the room from its counter (`room.last_seq`, read
    with the room, before the messages), so new messages still arrive; the gap between is
    not loaded, and the room is not marked read from this page."""
    user = request.user
    at = _seq_param(request.GET.get("at"))
    detached = False
    if at is None:
        page = selectors.messages_latest(room=room, limit=settings.CHAT_PAGE_SIZE)
    else:
        page = selectors.messages_around(room=room, seq=at, limit=settings.CHAT_PAGE_SIZE)
        detached = page.has_newer
    last_shown = page.messages[-1].seq if page.messages else 0
    membership = selectors.room_membership(room=room, user=user)
    rooms = selectors.rooms_of(user=user)
    directs = selectors.rooms_with_unread(
        rooms=selectors.rooms_visible_to(user=user, direct=True), user=user
    )
    config = {
        "room": room.slug,
        "name": room.name,
        "topic": room.topic,
        "lastSeq": room.last_seq if detached else last_shown,
        "hasMore": page.has_more,
        "at": at,
        "detached": detached,
        "username": user.get_username() if user.is_authenticated else None,
        "isStaff": access.is_moderator(user),  # may delete others' messages, manage rooms
        "manage": access.may_run_open(user, room, membership),  # the settings link
        "owner": membership is not None and membership.role == Membership.Role.OWNER,
        "archived": room.is_archived,
        "direct": room.is_direct,
        # A group DM of 3 or more may be left ("Leave conversation"); one of two may not.
        "people": selectors.room_member_count(room=room) if room.is_direct else None,
        "member": membership is not None,
        "starred": membership is not None and membership.starred,
        "notify": membership.notify if membership is not None else None,
        "maxLength": settings.CHAT_MAX_MESSAGE_LENGTH,
        "maxFiles": settings.CHAT_UPLOAD_MAX_FILES,
        "maxUploadBytes": settings.CHAT_UPLOAD_MAX_BYTES,
        "editWindowSeconds": settings.CHAT_EDIT_WINDOW_SECONDS,
        "reactions": list(reactions.PALETTE.items()),  # [emoji, name]: the palette
        "maxRooms": settings.CHAT_MAX_ROOMS_PER_SOCKET,
    }
    return render(
        request,
        "chat/room.html",
        {
            "room": room,
            "lines": [events.message_dict(m) for m in page.messages],
            "has_more": page.has_more,
            "detached": detached,
            "rooms": rooms,
            "directs": directs,
            "config": config,
            "membership": membership,
        },
    )


def _seq_param(value: str | None) -> int | None:
    """A seq from the query string: a whole number from 1, or None."""
    if value is None or not (value.isascii() and value.isdigit()) or len(value) > 18:
        return None
    return int(value) or None


def _room_for_membership(request: HttpRequest, slug: str) -> Room:
    """The room a membership form names, as the room page finds it (404, 403 on a ban)."""
    try:
        return selectors.room_get_open_to(slug=slug, user=request.user)
    except ChatError as error:
        if error.code == ErrorCode.FORBIDDEN:
            raise PermissionDenied(error.message) from None
        raise Http404("No such room.") from None


@login_required
@require_POST
def room_join(request: HttpRequest, slug: str) -> HttpResponse:
    """The "Join room" form: the room goes into the user's rooms, on every tab of theirs."""
    room = _room_for_membership(request, slug)
    try:
        services.membership_join(room=room, user=request.user)
    except ChatError as error:
        if error.code == ErrorCode.FORBIDDEN:
            raise PermissionDenied(error.message) from None
        messages.error(request, error.message)
    return redirect(room)


@login_required
@require_POST
def room_leave(request: HttpRequest, slug: str) -> HttpResponse:
    """The "Leave room" form: out of the user's rooms; out of a private room altogether."""
    room = _room_for_membership(request, slug)
    try:
        services.membership_leave(room=room, user=request.user)
    except ChatError as error:
        messages.error(request, error.message)
        return redirect(room)
    return redirect("chat:lobby" if room.is_private else room)


@login_required
@require_POST
def direct_add_people(request: HttpRequest, slug: str) -> HttpResponse:
    """A direct message's "Add people" form (`usernames`, separated by commas or spaces):
    opens the conversation of everyone here and them, a new one (this one's history stays
    with the people here)."""
    room = _room_for_membership(request, slug)
    names = request.POST.get("usernames", "")[:1000].replace(",", " ").split()
    try:
        added = services.direct_people_add(room=room, by=request.user, usernames=names)
    except ChatError as error:
        if error.code == ErrorCode.NOT_FOUND:
            raise Http404("No such room.") from None
        messages.error(request, error.message)
        return redirect(room)
    return redirect(added)


@login_required
@require_POST
def room_star(request: HttpRequest, slug: str) -> HttpResponse:
    """Star (`starred=1`) or unstar one of the user's rooms."""
    room = _room_for_membership(request, slug)
    try:
        services.membership_star(
            room=room, user=request.user, starred=request.POST.get("starred") == "1"
        )
    except ChatError as error:
        messages.error(request, error.message)
    return redirect(room)


@login_required
@require_POST
def room_notify(request: HttpRequest, slug: str) -> HttpResponse:
    """What of one of the user's rooms notifies them: `notify=all`, `mentions` or `mute`."""
    room = _room_for_membership(request, slug)
    try:
        services.membership_notify(
            room=room, user=request.user, notify=request.POST.get("notify", "")
        )
    except ChatError as error:
        messages.error(request, error.message)
    return redirect(room)


def _refusal_to_http(error: ChatError) -> Exception:
    """A refusal as the site's pages answer it: 404 for what one may not see, else 403."""
    if error.code == ErrorCode.NOT_FOUND:
        return Http404("No such room.")
    return PermissionDenied(error.message)


@login_required
def room_settings(request: HttpRequest, slug: str) -> HttpResponse:
    """A room's settings, for its owners and staff: name and topic, members (invite,
    remove, make owner), step down, archive; an archived room's, only *Un-archive*. Plain
    forms; settings.js only suggests names."""
    room = _room_for_membership(request, slug)
    if room.is_archived:
        refusal = access.unarchive_refusal(request.user, room)
    else:
        refusal = access.manage_refusal(request.user, room)
    if refusal is not None:
        raise _refusal_to_http(refusal)
    context = {
        "room": room,
        "members": selectors.room_members(room=room),
        "details": RoomDetailsForm(initial={"name": room.name, "topic": room.topic}),
        "owner": access.is_owner(request.user, room),
    }
    return render(request, "chat/room_settings.html", context)


def _settings_action(
    request: HttpRequest, slug: str, act: Callable[[Room], str], *, done: str = "settings"
) -> HttpResponse:
    """Run one settings form's service (`act` returns what to tell the user); a refusal of
    the room itself is a 404 or 403 as on its pages, any other is shown on the page."""
    room = _room_for_membership(request, slug)
    try:
        note = act(room)
    except ChatError as error:
        if error.code in {ErrorCode.NOT_FOUND, ErrorCode.AUTH_REQUIRED}:
            raise _refusal_to_http(error) from None
        if error.code == ErrorCode.FORBIDDEN and not access.can_manage(request.user, room):
            raise _refusal_to_http(error) from None
        messages.error(request, error.message)
        return redirect("chat:room_settings", slug=room.slug)
    messages.success(request, note)
    if done == "room":
        return redirect(room)
    return redirect("chat:room_settings", slug=room.slug)


def _username(request: HttpRequest) -> str:
    form = UsernameForm(request.POST)
    if not form.is_valid():
        raise ChatError(ErrorCode.BAD_REQUEST, "Name a user.")
    return form.cleaned_data["username"]


@login_required
@require_POST
def room_settings_details(request: HttpRequest, slug: str) -> HttpResponse:
    """Rename the room and change its topic."""

    def act(room: Room) -> str:
        form = RoomDetailsForm(request.POST)
        if not form.is_valid():
            raise ChatError(ErrorCode.BAD_REQUEST, "A room needs a name of at most 80 characters.")
        data = form.cleaned_data
        services.room_update(room=room, by=request.user, name=data["name"], topic=data["topic"])
        return "Saved."

    return _settings_action(request, slug, act)


@login_required
@require_POST
def room_settings_invite(request: HttpRequest, slug: str) -> HttpResponse:
    """Invite a user by name: the room appears in their sidebar at once."""

    def act(room: Room) -> str:
        membership = services.membership_invite(
            room=room, by=request.user, username=_username(request)
        )
        return f"{membership.user.get_username()} is a member."

    return _settings_action(request, slug, act)


@login_required
@require_POST
def room_settings_remove(request: HttpRequest, slug: str) -> HttpResponse:
    """Take a member out of the room, on every tab of theirs."""

    def act(room: Room) -> str:
        username = _username(request)
        services.membership_remove(room=room, by=request.user, username=username)
        return f"{username} is no longer a member."

    return _settings_action(request, slug, act)


@login_required
@require_POST
def room_settings_make_owner(request: HttpRequest, slug: str) -> HttpResponse:
    """Make a member an owner too."""

    def act(room: Room) -> str:
        username = _username(request)
        services.membership_make_owner(room=room, by=request.user, username=username)
        return f"{username} is an owner."

    return _settings_action(request, slug, act)


@login_required
@require_POST
def room_settings_step_down(request: HttpRequest, slug: str) -> HttpResponse:
    """Stop being an owner (another owner must remain)."""

    def act(room: Room) -> str:
        services.membership_step_down(room=room, user=request.user)
        return "You are no longer an owner of this room."

    return _settings_action(request, slug, act, done="room")


@login_required
@require_POST
def room_settings_archive(request: HttpRequest, slug: str) -> HttpResponse:
    """Archive the room: read-only, closed on every open tab."""

    def act(room: Room) -> str:
        services.room_archive_as(room=room, by=request.user)
        return "The room is archived."

    return _settings_action(request, slug, act, done="room")


@login_required
@require_POST
def room_settings_unarchive(request: HttpRequest, slug: str) -> HttpResponse:
    """Un-archive the room: open again, on every open tab that showed it closed."""

    def act(room: Room) -> str:
        services.room_unarchive_as(room=room, by=request.user)
        return "The room is open again."

    return _settings_action(request, slug, act, done="room")


@login_required
@require_http_methods(["GET"])
def usernames(request: HttpRequest) -> JsonResponse:
    """`?q=<prefix>`: up to 10 active users' names starting with it (the invite field's
    suggestions), for signed-in users only; never inactive accounts. With `&room=<slug>`
    (the composer's @ suggestions): the room's members who would hear a mention, the user
    aside, an empty prefix naming the first ten; a room the user may not read is a 404."""
    prefix = request.GET.get("q", "")[:150]
    slug = request.GET.get("room")
    if slug is None:
        return JsonResponse({"usernames": selectors.usernames_starting(prefix=prefix)})
    room = _room_for_membership(request, slug)
    names = selectors.usernames_starting(prefix=prefix, room=room, asker=request.user)
    return JsonResponse({"usernames": names})


@login_required
@require_http_methods(["GET"])
def people_profiles(request: HttpRequest) -> JsonResponse:
    """`?u=<name>&u=<name>…`: what signed-in users see of those people in a profile card and
    the online list (display name, status, time zone, avatar), for up to 50 active users at
    once; unknown and inactive names are left out."""
    found = selectors.profiles_by_username(usernames=request.GET.getlist("u"))
    profiles = {
        name: {
            "display_name": profile.display_name,
            "status": profile.status,
            "time_zone": profile.time_zone,
            "avatar": profile.avatar_url(),
        }
        for name, profile in found.items()
    }
    return JsonResponse({"profiles": profiles})


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """Create an account with Django's form and validators, then sign in."""
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = ""
    form = SignupForm(request.POST or None)
    keys = [f"address:{addresses.request_address(request)}"]
    limit = settings.CHAT_SIGNUP_RATE_LIMIT
    retry_after = throttle.action_retry_after(kind="signup", keys=keys, limit=limit)
    if request.method == "POST" and retry_after is not None:
        form.add_error(None, f"Too many sign-ups: try again in {_minutes(retry_after)}.")
        context = {"form": form, "next": next_url}
        response = render(request, "registration/signup.html", context, status=429)
        return _too_many(response, retry_after)
    if request.method == "POST" and form.is_valid():
        throttle.action_done(kind="signup", keys=keys, limit=limit)
        user = form.save()
        services.user_welcome(user=user)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect(next_url or settings.LOGIN_REDIRECT_URL)
    return render(request, "registration/signup.html", {"form": form, "next": next_url})


def _minutes(seconds: int) -> str:
    minutes = math.ceil(seconds / 60)
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


def _too_many(response: HttpResponse, retry_after: int) -> HttpResponse:
    response["Retry-After"] = str(retry_after)
    return response


_django_login = LoginView.as_view()


@sensitive_post_parameters()
def login_page(request: HttpRequest) -> HttpResponse:
    """Django's login view, behind the failed-login throttle."""
    return _throttled_login(request, _django_login)


@sensitive_post_parameters()
def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin's login view, behind the same throttle."""
    return _throttled_login(request, admin.site.login)


def _throttled_login(
    request: HttpRequest, login_view: Callable[[HttpRequest], HttpResponse]
) -> HttpResponse:
    """A throttled username or address gets 429 before any password is checked; otherwise
    the view runs, and its outcome is counted: signed in as that username, or a failure."""
    if request.method != "POST":
        return login_view(request)
    username = request.POST.get(get_user_model().USERNAME_FIELD, "")
    address = addresses.request_address(request)
    retry_after = throttle.login_retry_after(username=username, address=address)
    if retry_after is not None:
        response = render(
            request,
            "registration/login_throttled.html",
            {"minutes": math.ceil(retry_after / 60), "login_url": request.path},
            status=429,
        )
        response["Retry-After"] = str(retry_after)
        return response
    response = login_view(request)
    user = request.user
    if user.is_authenticated and throttle.login_username(
        user.get_username()
    ) == throttle.login_username(username):
        throttle.login_succeeded(username=username)
    else:
        throttle.login_failed(username=username, address=address)
    return response


@require_POST
async def fallback_send(request: HttpRequest) -> HttpResponse:
    """A fallback connection's frames, in order (chat/realtime/fallback.py): the CSRF token
    and the session cookie as for any POST, and the connection's token from its stream."""
    body = request.body  # Django refuses more than DATA_UPLOAD_MAX_MEMORY_SIZE (400)
    if len(body) > settings.CHAT_FALLBACK_MAX_POST_BYTES:
        limit = settings.CHAT_FALLBACK_MAX_POST_BYTES
        return JsonResponse({"error": f"At most {limit} bytes per POST."}, status=413)
    try:
        frames = json.loads(body)
    except ValueError:
        return JsonResponse({"error": "The body is not JSON."}, status=400)
    batch = request.headers.get("X-Chat-Batch", "")
    if not (batch.isascii() and batch.isdigit()) or not 0 < int(batch) < 2**53:
        return JsonResponse({"error": "X-Chat-Batch must number the POST from 1."}, status=400)
    user = await request.auser()
    try:
        accepted = await fallback.forward(
            token=request.headers.get("X-Chat-Session", ""),
            user_id=user.pk,
            batch=int(batch),
            frames=frames,
            close=request.headers.get("X-Chat-Close") == "1",
        )
    except fallback.FallbackError as error:
        return JsonResponse({"error": str(error)}, status=error.status)
    return JsonResponse({"accepted": accepted}, status=202)


@login_required
@require_http_methods(["GET", "POST"])
def account(request: HttpRequest) -> HttpResponse:
    """Your account: display name, status, time zone, avatar and email; the password has
    Django's own page (linked)."""
    profile = selectors.profile_of(user=request.user)
    if request.method == "POST":
        form = AccountForm(request.POST, request.FILES)
        if form.is_valid():
            data = form.cleaned_data
            services.profile_update(
                user=request.user,
                display_name=data["display_name"],
                status=data["status"],
                time_zone=data["time_zone"],
                email=data["email"],
                avatar=data["avatar"],
                remove_avatar=data["remove_avatar"],
            )
            messages.success(request, "Your account is saved.")
            return redirect("chat:account")
        status = 400
    else:
        form = AccountForm(
            initial={
                "display_name": profile.display_name,
                "status": profile.status,
                "time_zone": profile.time_zone,
                "email": request.user.email,
            }
        )
        status = 200
    return render(
        request,
        "chat/account.html",
        {
            "form": form,
            "profile": profile,
            "memberships": selectors.memberships_of(user=request.user),
            "notify_choices": Membership.Notify.choices,
        },
        status=status,
    )


@login_required
@require_POST
def account_notifications(request: HttpRequest) -> HttpResponse:
    """The account page's notifications: `notify-<slug>` for any of the user's rooms (the
    rest stay as they are); one refused value saves none."""
    levels = {
        membership.room: request.POST[f"notify-{membership.room.slug}"]
        for membership in selectors.memberships_of(user=request.user)
        if f"notify-{membership.room.slug}" in request.POST
    }
    try:
        services.memberships_notify(user=request.user, levels=levels)
    except ChatError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Your notification settings are saved.")
    return redirect(f"{reverse('chat:account')}#notifications-heading")


@require_POST
def file_upload(request: HttpRequest, slug: str) -> JsonResponse:
    """POST /chat/<slug>/files/ (multipart, field `file`, CSRF as any POST): store a file
    for a message of the signed-in user's to carry (`send` with `attachments`); answers the
    MSG `files` entry it will have, or {"error"} with 400, 403, 404 (a room the user may not
    see), 413 (too large) or 429 (too many uploads: Retry-After)."""
    if not access.signed_in(request.user):
        return JsonResponse({"error": "Log in to upload files."}, status=403)
    try:
        room = selectors.room_get_open_to(slug=slug, user=request.user)
    except ChatError as error:
        status = 403 if error.code == ErrorCode.FORBIDDEN else 404
        return JsonResponse({"error": error.message}, status=status)
    upload = request.FILES.get("file")
    if upload is None:
        return JsonResponse({"error": "Send the file as the form field “file”."}, status=400)
    keys = [f"user:{request.user.pk}"]
    limit = settings.CHAT_UPLOAD_RATE_LIMIT
    retry_after = throttle.action_retry_after(kind="upload", keys=keys, limit=limit)
    if retry_after is not None:
        response = JsonResponse(
            {"error": f"Too many uploads: try again in {_minutes(retry_after)}."}, status=429
        )
        return _too_many(response, retry_after)
    try:
        attachment = services.attachment_upload(room=room, uploader=request.user, upload=upload)
    except ChatError as error:
        status = {ErrorCode.TOO_LONG: 413, ErrorCode.FORBIDDEN: 403}.get(error.code, 400)
        return JsonResponse({"error": error.message}, status=status)
    throttle.action_done(kind="upload", keys=keys, limit=limit)
    return JsonResponse(events.file_dict(attachment), status=201)


def _file_response(request: HttpRequest, file_id: int, *, thumbnail: bool) -> FileResponse:
    attachment = selectors.attachment_for_reader(file_id=file_id, user=request.user)
    stored = attachment and (attachment.thumbnail if thumbnail else attachment.file)
    if not stored:
        raise Http404("No such file.")
    inline = thumbnail or attachment.is_image
    response = FileResponse(
        stored.open("rb"),
        as_attachment=not inline,
        filename=attachment.name,
        content_type="image/png" if thumbnail else attachment.content_type,
    )
    response["X-Content-Type-Options"] = "nosniff"
    # Whatever the file holds, it runs nothing and loads nothing, even opened on its own.
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=3600"
    return response


@require_http_methods(["GET", "HEAD"])
def file_download(request: HttpRequest, file_id: int, name: str) -> FileResponse:
    """/files/<id>/<name>: a message's file for those who may read its room (asked again on
    every fetch), else 404. Images (PNG, JPEG, GIF, WebP, as Pillow found them) show
    inline; every other file, SVG and HTML included, is a download
    (`Content-Disposition: attachment`); all with `X-Content-Type-Options: nosniff`."""
    return _file_response(request, file_id, thumbnail=False)


@require_http_methods(["GET", "HEAD"])
def file_thumb(request: HttpRequest, file_id: int) -> FileResponse:
    """/files/<id>/thumb/: an image's preview (a PNG without metadata), as `file_download`."""
    return _file_response(request, file_id, thumbnail=True)


def media(request: HttpRequest, path: str) -> HttpResponse:
    """Uploaded files (avatars), served by Django in debug only: in production the proxy
    serves MEDIA_ROOT at MEDIA_URL (README, "A production deployment")."""
    if not settings.DEBUG:
        raise Http404
    return serve(request, path, document_root=settings.MEDIA_ROOT)
