"""A separate process posting into one room from many threads, for the concurrency tests.

    python -m tests.support.concurrent_sender ROOM_ID THREADS MESSAGES USER_ID…

Thread t posts MESSAGES messages as USER_ID[t % len] with client_ids "t{t}-m{n}"; every
process given the same arguments sends the same client_ids, so processes race on
idempotency as well as on seq numbers. Prints {client_id: [id, seq]} as JSON.
"""

import json
import os
import sys

from tests.support.race import run_together


def main(room_id: int, threads: int, messages: int, user_ids: list[int]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection

    from chat import services
    from chat.models import Room

    room = Room.objects.get(pk=room_id)
    users = [get_user_model().objects.get(pk=pk) for pk in user_ids]
    connection.close()
    acks: dict[str, list[int]] = {}

    def post(t: int) -> None:
        for n in range(messages):
            client_id = f"t{t}-m{n}"
            draft = services.MessageDraft(
                room=room, author=users[t % len(users)], body=client_id, client_id=client_id
            )
            (result,) = services.messages_create(drafts=[draft])
            if isinstance(result, BaseException):
                raise result
            message, _ = result
            acks[client_id] = [message.pk, message.seq]

    run_together(threads, post)
    print(json.dumps(acks))


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), [int(a) for a in sys.argv[4:]])
