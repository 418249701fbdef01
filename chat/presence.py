"""Who is online in which room, counted per socket so several tabs of one user count once.

This is the in-process registry: right for one process (the laptop default, `runserver`, one
daphne). Anonymous readers are never registered.
"""

from collections import defaultdict


class LocalPresence:
    """Room id → username → the channel names of that user's sockets in the room."""

    def __init__(self) -> None:
        self._rooms: dict[int, dict[str, set[str]]] = defaultdict(dict)

    def add(self, *, room_id: int, username: str, channel_name: str) -> bool:
        """Register a socket; True when it is the user's first socket in the room."""
        sockets = self._rooms[room_id].setdefault(username, set())
        first = not sockets
        sockets.add(channel_name)
        return first

    def remove(self, *, room_id: int, username: str, channel_name: str) -> bool:
        """Forget a socket; True when it was the user's last socket in the room."""
        users = self._rooms.get(room_id, {})
        sockets = users.get(username)
        if not sockets or channel_name not in sockets:
            return False
        sockets.discard(channel_name)
        if sockets:
            return False
        del users[username]
        if not users:
            self._rooms.pop(room_id, None)
        return True

    def online(self, *, room_id: int) -> list[str]:
        """Usernames with at least one socket in the room, sorted."""
        return sorted(self._rooms.get(room_id, {}))

    def clear(self) -> None:
        self._rooms.clear()


presence = LocalPresence()
