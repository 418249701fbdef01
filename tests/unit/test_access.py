"""chat/access.py: each rule's forms (Python on one room, Q on rooms or users, SQL for the
write-time check) agree with each other and with one table of roles and kinds of room; so
do fetching a message's file (as reading) and uploading one (as writing)."""

from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from chat import access, selectors, services
from chat.models import Attachment, Ban, Membership, Message, Room
from chat.protocol.errors import ChatError

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "member", "non_member", "left", "banned", "staff", "deactivated")
KINDS = ("public", "private", "archived", "direct", "group_direct")

# role → the kinds of room it may read (page, join) and write in (post, edit, delete).
# Staff are no member here; a deactivated account is a member that counts as nobody; a
# left member was one and left (chat.services.membership_leave): a non-member again.
READS = {
    "anonymous": {"public", "archived"},
    "member": {"public", "private", "archived", "direct", "group_direct"},
    "non_member": {"public", "archived"},
    "left": {"public", "archived"},
    "banned": set(),
    "staff": {"public", "archived"},
    "deactivated": {"public", "archived"},
}
WRITES = {
    "anonymous": set(),
    "member": {"public", "private", "direct", "group_direct"},
    "non_member": {"public"},
    "left": {"public"},
    "banned": set(),
    "staff": {"public"},
    "deactivated": set(),
}
# Notified (mentions, DMs) only of the rooms one is a member of: public ones too.
NOTIFIED = {role: READS[role] if role == "member" else set() for role in ROLES}


def arrange(role: str, kind: str, make_user: Any) -> tuple[Any, Room]:
    other = make_user("other")
    user: Any = AnonymousUser()
    if role != "anonymous":
        user = make_user(role, is_staff=role == "staff", is_active=role != "deactivated")
    third = make_user("third")  # a group direct message's third member
    direct = kind in {"direct", "group_direct"}
    key = f"{other.pk}:{user.pk}" + (f":{third.pk}" if kind == "group_direct" else "")
    room = Room.objects.create(
        slug=f"{kind}-room",
        name=f"{kind} room",
        is_private=kind == "private" or direct,
        is_archived=kind == "archived",
        is_direct=direct,
        direct_key=key if direct else None,
    )
    room.members.add(other)
    if kind == "group_direct":
        room.members.add(third)
    if role in {"member", "left", "banned", "deactivated"}:
        room.members.add(user)
    if role == "left":
        room.members.remove(user)
    if role == "banned":
        Ban.objects.create(room=room, user=user)
    return user, room


def sql_may_write(user: Any, room: Room) -> bool:
    """The write-time predicate, evaluated on the room's row (anonymous: an id no account has)."""
    fragment, params = access.may_write_sql(actor_id=user.pk if user.pk is not None else -1)
    table = connection.ops.quote_name(Room._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {fragment} FROM {table} WHERE {table}.id = %s", [*params, room.pk])
        (allowed,) = cursor.fetchone()
    return bool(allowed)


def sql_notifiable(user: Any, room: Room) -> bool:
    """The group commit's predicate on the user's membership row of the room, if any."""
    memberships = connection.ops.quote_name(Membership._meta.db_table)
    fragment = access.notifiable_sql(membership="hm")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COUNT(*) FROM {memberships} hm"
            f" WHERE hm.room_id = %s AND hm.user_id = %s AND {fragment}",
            [room.pk, user.pk if user.pk is not None else -1],
        )
        (count,) = cursor.fetchone()
    return count > 0


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("role", ROLES)
def test_every_form_of_each_rule_agrees_with_the_table(role, kind, make_user):
    user, room = arrange(role, kind, make_user)
    username = user.get_username() or "nobody"

    reads = access.can_read(user, room)
    writes_orm = access.can_post(user, room)
    writes_sql = sql_may_write(user, room)
    sees_q = Room.objects.filter(access.visible_rooms(user), pk=room.pk).exists()
    reads_q = Room.objects.filter(access.readable_rooms(user), pk=room.pk).exists()
    notified = access.may_be_notified(user, room)
    notified_q = access.notifiable_users(room, {username}).exists()
    notified_members = access.notifiable_members(room).filter(pk=getattr(user, "pk", None))
    notified_rows = access.notifiable_memberships(room).filter(user=getattr(user, "pk", None))
    notified_sql = sql_notifiable(user, room)

    assert reads == reads_q == (kind in READS[role])
    assert writes_orm == writes_sql == (kind in WRITES[role])
    assert sees_q == access.can_see(user, room)
    assert notified == notified_q == notified_members.exists() == notified_rows.exists()
    assert notified_sql == notified
    assert notified == (kind in NOTIFIED[role])


def test_only_the_author_edits_and_only_within_the_window(alice, bob, staff, general, settings):
    message = Message.objects.create(room=general, author=alice, body="hi", seq=1, rev=1)

    assert access.can_edit(alice, message)
    assert not access.can_edit(bob, message)
    assert not access.can_edit(staff, message)
    settings.CHAT_EDIT_WINDOW_SECONDS = 0
    assert (
        access.edit_refusal(alice, message) == "Messages can be edited for 0 minutes after posting."
    )


def test_the_author_and_active_staff_delete_asking_the_database_about_staff(
    alice, bob, staff, general
):
    message = Message.objects.create(room=general, author=alice, body="hi", seq=1, rev=1)

    assert access.can_delete(alice, message)
    assert access.can_delete(staff, message)
    assert not access.can_delete(bob, message)
    assert not access.can_delete(AnonymousUser(), message)
    type(staff).objects.filter(pk=staff.pk).update(is_active=False)  # the object is now stale
    assert not access.can_delete(staff, message)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("role", ROLES)
def test_files_are_fetched_by_whoever_reads_and_uploaded_by_whoever_writes(role, kind, make_user):
    user, room = arrange(role, kind, make_user)
    other = room.members.get(username="other")
    message = Message.objects.create(room=room, author=other, body="a file", seq=1, rev=1)
    attachment = Attachment.objects.create(
        room=room,
        uploader=other,
        message=message,
        file="attachments/f.bin",
        name="f.bin",
        content_type="application/octet-stream",
        size=1,
    )

    fetched = selectors.attachment_for_reader(file_id=attachment.pk, user=user)
    try:
        services.attachment_upload(
            room=room, uploader=user, upload=SimpleUploadedFile("u.txt", b"upload")
        )
        uploaded = True
    except ChatError:
        uploaded = False

    assert (fetched is not None) == (kind in READS[role])
    assert uploaded == (kind in WRITES[role])
