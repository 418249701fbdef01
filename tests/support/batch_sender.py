"""A separate process storing group commits of several drafts from many threads, for the
race tests of the batch path (services.messages_create).

    python -m tests.support.batch_sender ROOM_IDS THREADS BATCHES USER_ID…

ROOM_IDS is comma-separated. Thread t stores BATCHES batches; batch b holds one draft per
room, in a different order of rooms each time, as USER_ID[(t + k) % len] with client_id
"t{t}-b{b}-k{k}", and one more in the first room as the first user with client_id
"b{b}", which every thread of every process sends too. Every process given the same
arguments sends the same client_ids, so processes race on idempotency as well as on seq
numbers. Prints {"room:author:client_id": [id, seq]} as JSON: one ack per key, checked
to be the same row when several threads were acked for it.
"""

import json
import os
import sys
import threading

from tests.support.race import run_together


def main(room_ids: list[int], threads: int, batches: int, user_ids: list[int]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection

    from chat import services
    from chat.models import Room

    rooms = [Room.objects.get(pk=pk) for pk in room_ids]
    users = [get_user_model().objects.get(pk=pk) for pk in user_ids]
    connection.close()
    lock = threading.Lock()
    acks: dict[str, list[int]] = {}

    def post(t: int) -> None:
        for b in range(batches):
            order = rooms[(t + b) % len(rooms) :] + rooms[: (t + b) % len(rooms)]
            drafts = [
                services.MessageDraft(
                    room=room,
                    author=users[(t + k) % len(users)],
                    body=f"t{t}-b{b}-k{k}",
                    client_id=f"t{t}-b{b}-k{k}",
                )
                for k, room in enumerate(order)
            ]
            shared = f"b{b}"  # every thread of every process sends this one too
            drafts.append(
                services.MessageDraft(room=rooms[0], author=users[0], body=shared, client_id=shared)
            )
            for draft, result in zip(drafts, services.messages_create(drafts=drafts), strict=True):
                if isinstance(result, BaseException):
                    raise result
                message, _ = result
                key = f"{draft.room.pk}:{draft.author.pk}:{draft.client_id}"
                with lock:
                    if acks.setdefault(key, [message.pk, message.seq]) != [message.pk, message.seq]:
                        raise AssertionError(f"{key} acked as two rows")

    run_together(threads, post)
    print(json.dumps(acks))


if __name__ == "__main__":
    main(
        [int(pk) for pk in sys.argv[1].split(",")],
        int(sys.argv[2]),
        int(sys.argv[3]),
        [int(a) for a in sys.argv[4:]],
    )
