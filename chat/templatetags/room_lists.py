"""`{% room_items %}`: the rows of a list of rooms (templates/chat/_room_list.html)."""

from collections.abc import Iterable

from django import template
from django.urls import reverse
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from ..models import Membership, Room

register = template.Library()


@register.simple_tag
def room_items(
    rooms: Iterable[Room], current: str = "", show_members: bool = False, show_topics: bool = False
) -> SafeString:
    """One <li> per room, as chat/static/chat/sidebar.js `newItem` makes one live: its
    slug, counter, read mark, unread count and flags as data attributes, its link (marked
    when `current` is its slug), its badges; the member count with `show_members` (the
    lobby: `rooms_in_lobby`), the topic with `show_topics`.

    Built here and not in a template loop, as the admin builds its result rows
    (admin_list.items_for_result): a sidebar lists hundreds of rooms, and a loop of ~20
    template nodes and a reverse() per row took 15 ms for 200 of them, this under 4
    (docs/performance.md, "Pages at scale"). Every value from the room goes through
    format_html, so it is escaped; what is marked safe here is fixed text and numbers."""
    # Room.get_absolute_url, reversed once: a slug ([-a-zA-Z0-9_]) needs no quoting.
    before, after = map(escape, reverse("chat:room", kwargs={"slug": "-"}).rsplit("-", 1))
    return format_html_join(
        "\n",
        "{}",
        ((_item(room, current, before, after, show_members, show_topics),) for room in rooms),
    )


def _item(
    room: Room, current: str, before: str, after: str, show_members: bool, show_topics: bool
) -> SafeString:
    here = room.slug == current
    starred = getattr(room, "starred", False)  # rooms_of's annotations, not the lobby's
    flags = "".join(  # fixed text
        flag
        for flag, on in (
            (" data-private", room.is_private),
            (" data-direct", room.is_direct),
            (" data-starred", starred),
            (" data-owner", getattr(room, "is_owner", False)),
            (' class="current"', here),
        )
        if on
    )
    notify = getattr(room, "notify", None)  # Membership.Notify: fixed text, or None
    if notify in Membership.Notify.values:
        flags += f' data-notify="{notify}"'
    people = getattr(room, "people", None)  # a DM's head count (selectors)
    if room.is_direct and people is not None:
        flags += f' data-people="{int(people)}"'
    badges = ""  # all safe: fixed text, and a number
    if starred:
        badges += '\n<span class="badge starred" title="starred">★</span>'
    if room.is_private and not room.is_direct:
        badges += '\n<span class="badge">private</span>'
    if notify == Membership.Notify.MUTE:
        badges += '\n<span class="badge muted" title="notifications muted">muted</span>'
    if show_members:
        count = int(room.member_count)
        badges += f'\n<span class="member-count">{count} member{"" if count == 1 else "s"}</span>'
        if room.is_member:
            badges += ' <span class="badge joined">joined</span>'
    topic = ""
    if show_topics and room.topic:
        topic = format_html('\n<span class="topic">{}</span>', room.topic)
    return format_html(
        '<li data-room="{slug}" data-last-seq="{last_seq}" data-read="{read}"'
        ' data-unread="{unread}"{flags}>\n'
        '<a href="{before}{slug}{after}"{aria}>{name}</a>{badges}\n'
        '<span class="badge unread" title="unread messages"{hidden}>{unread}</span>\n'
        '<span class="online-count"></span>{topic}\n'
        "</li>",
        slug=room.slug,
        last_seq=room.last_seq,
        read="" if room.read_mark is None else room.read_mark,
        unread=room.unread,
        flags=mark_safe(flags),
        before=before,
        after=after,
        aria=mark_safe(' aria-current="page"') if here else "",
        name=room.name,
        badges=mark_safe(badges),
        hidden=mark_safe(" hidden") if not room.unread else "",
        topic=topic,
    )
