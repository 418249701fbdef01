"""Messages written straight into a live site's SQLite file (a long history, fast): every
column the site's own write fills (services._store) is filled the same way here, so a new
NOT NULL column needs one change, in this file."""

import json
import sqlite3
from datetime import datetime

from chat import formatting


def insert_message(
    db: sqlite3.Connection,
    *,
    room_id: int,
    author_id: int,
    body: str,
    seq: int,
    created_at: datetime,
) -> None:
    """One stored message, numbered `seq` (the caller bumps the room's last_seq)."""
    db.execute(
        "INSERT INTO chat_message"
        " (room_id, author_id, body, body_html, files, seq, rev, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            room_id,
            author_id,
            body,
            formatting.render(body),  # as the site stores it (chat/formatting.py)
            json.dumps([]),  # no files (Message.files)
            seq,
            seq,
            created_at.isoformat(" "),
        ],
    )
