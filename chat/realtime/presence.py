"""Who is online in which room, counted per socket so several tabs of one user count once.

Two registries with one interface:
- `LocalPresence`, in this process's memory: right for one process (the laptop default,
  `runserver`, a single daphne). Chosen when `REDIS_URL` is unset.
- `RedisPresence`, shared by every worker through Redis. Each worker refreshes the entries of
  its own sockets (a heartbeat); an entry not refreshed within `CHAT_PRESENCE_TTL` seconds
  belonged to a worker that died, and a sweep, run by every live worker, removes it and tells
  the room the user went offline. A SIGKILLed worker's users are shown offline within
  TTL + TTL/3 seconds (40 s by default).

Anonymous readers are counted, never named: their sockets are registered under GUEST, a
name no account can have, which `online` leaves out and `guests` counts. Changes in a room's
guest count are broadcast at most once a second per room and process (`guests_changed`), so
a crowd of readers arriving costs one frame per second, not one per reader.

Every change of a room's presence, and every read of it a page is told, takes the room's
next *version* (`v`): microseconds since the epoch, from the registry's clock (Redis's own,
shared by every worker), and always above the room's last one, so a Redis that restarted
empty goes on from where the clock is. The frames carry it, and a page keeps the newest per
user (docs/protocol.md, "Presence"): two workers announce independently (each coalescing its
own second, `PresenceNews`), so a reload that closes a tab on one worker and opens one on
another could tell a page "online" from the second before "offline" from the first, and the
page listed someone present as gone until their next change.
"""

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from django.conf import settings

from ..protocol import events
from .heartbeat import Heartbeat
from .outages import Fallbacks, redis_away, redis_client
from .publisher import publish
from .redis_turns import ScriptCall, Turns

if TYPE_CHECKING:
    from .runtime import Runtime

logger = logging.getLogger(__name__)

# Called with (room_id, room_slug, username, v) when a sweep finds a user gone, or when a
# heartbeat puts back a user Redis had lost; v is the change's version.
PresenceCallback = Callable[[int, str, str, int], Awaitable[None]]

GUEST = "\x00guest"  # the registry's name for anonymous sockets (no username has a NUL)
GUESTS_EVERY = 1.0  # seconds: at most one guest-count broadcast per room per process
PRESENCE_EVERY = 1.0  # seconds: a room's presence changes within this go out together
# Seconds a user's going is held before the room hears it: back within it (a reload, a
# socket that dropped and reconnected), and they never went.
OFFLINE_GRACE = 1.0


class Change(NamedTuple):
    """What an add or a remove did: `changed` says it was the user's first socket in the
    room (an add) or their last (a remove); `v` is its version (see the module)."""

    changed: bool
    v: int


class Snapshot(NamedTuple):
    """A room's presence as one read saw it: what a join tells its socket."""

    online: list[str]
    guests: int
    v: int  # the read's version: every change it shows is below it, every later one above


class LocalPresence:
    """Room id → username → the ids of that user's sockets in the room."""

    def __init__(self) -> None:
        self._rooms: dict[int, dict[str, set[str]]] = defaultdict(dict)
        self._last = 0  # the last version given (one clock for every room)

    def _version(self) -> int:
        self._last = max(time.time_ns() // 1000, self._last + 1)
        return self._last

    async def add(self, *, room_id: int, room_slug: str, username: str, socket_id: str) -> Change:
        """Register a socket; `changed` when it is the user's first socket in the room."""
        sockets = self._rooms[room_id].setdefault(username, set())
        first = not sockets
        sockets.add(socket_id)
        return Change(first, self._version())

    async def remove(self, *, room_id: int, username: str, socket_id: str) -> Change:
        """Forget a socket; `changed` when it was the user's last socket in the room."""
        users = self._rooms.get(room_id, {})
        sockets = users.get(username)
        if not sockets or socket_id not in sockets:
            return Change(False, self._version())
        sockets.discard(socket_id)
        if sockets:
            return Change(False, self._version())
        del users[username]
        if not users:
            self._rooms.pop(room_id, None)
        return Change(True, self._version())

    async def online(self, *, room_id: int) -> list[str]:
        """Usernames with at least one socket in the room, sorted."""
        return sorted(name for name in self._rooms.get(room_id, {}) if name != GUEST)

    async def guests(self, *, room_id: int) -> int:
        """Anonymous sockets in the room."""
        return len(self._rooms.get(room_id, {}).get(GUEST, ()))

    async def in_room(self, *, room_id: int) -> Snapshot:
        """`online` and `guests` of the room, read together (what a join tells its socket)."""
        online, guests = await self.online(room_id=room_id), await self.guests(room_id=room_id)
        return Snapshot(online, guests, self._version())

    async def counted(self, *, room_id: int) -> tuple[int, int]:
        """The room's guests and the read's version (what a `guests` frame tells)."""
        return await self.guests(room_id=room_id), self._version()


# Keys: {p}rooms (set of room ids), {p}slugs (hash id → slug), {p}r:<id> (zset username →
# expiry), {p}r:<id>:<username> (zset socket id → expiry), {p}v:<id> (the room's last
# version). A username is the last part of its key, so it cannot be confused with another key.

# The room's next version (KEYS[n] its key): Redis's clock in microseconds, above the last
# one given. Kept a day: a room quiet for longer starts again from the clock. Stored with
# %.0f, since Lua's own conversion of a number to a string keeps only 14 digits.
VERSION = """
local function version(key)
  local t = redis.call('TIME')
  local v = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local last = tonumber(redis.call('GET', key))
  if last and v <= last then v = last + 1 end
  redis.call('SET', key, string.format('%.0f', v), 'EX', 86400)
  return v
end
"""


def versioned(script: str) -> str:
    """A Lua script that may call `version(key)`."""
    return VERSION + script


# Returns {first, v}: first is 1 when this is the user's first socket in the room.
ADD = versioned("""
local room_key, user_key = KEYS[1], KEYS[2]
local socket, expiry, now, username = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local room_id, slug = ARGV[5], ARGV[6]
redis.call('ZREMRANGEBYSCORE', user_key, '-inf', now)
local listed = redis.call('ZSCORE', room_key, username)
local first = redis.call('ZCARD', user_key) == 0 and listed == false
redis.call('ZADD', user_key, expiry, socket)
redis.call('ZADD', room_key, 'GT', expiry, username)
redis.call('SADD', KEYS[3], room_id)
redis.call('HSET', KEYS[4], room_id, slug)
local v = version(KEYS[5])
if first then return {1, v} end
return {0, v}
""")

# Returns {last, v}: last is 1 when the user was listed and this was their last socket. The
# removal of a socket the worker had (ARGV[4] = 1) says 1 whenever the user has no socket
# left, listed or not: a Redis that restarted empty lists nobody until the workers' next
# beats, and the pages open before it must still hear that the user went (should another
# worker's tab of theirs not be back yet, that worker's beat announces them again, with a
# newer version). A socket removed twice is not the worker's the second time: said once.
REMOVE = versioned("""
local room_key, user_key = KEYS[1], KEYS[2]
local socket, now, username, known = ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1'
redis.call('ZREM', user_key, socket)
redis.call('ZREMRANGEBYSCORE', user_key, '-inf', now)
if redis.call('ZCARD', user_key) > 0 then return {0, version(KEYS[3])} end
redis.call('DEL', user_key)
local listed = redis.call('ZREM', room_key, username)
if known then listed = 1 end
return {listed, version(KEYS[3])}
""")

# Remove the users of one room whose every socket expired; return {v, them} (each exactly
# once, whichever worker sweeps first; v is 0 when there were none).
SWEEP = versioned("""
local room_key, rooms_key = KEYS[1], KEYS[2]
local now, room_id = ARGV[1], ARGV[2]
local gone = {}
for _, username in ipairs(redis.call('ZRANGEBYSCORE', room_key, '-inf', now)) do
  local user_key = room_key .. ':' .. username
  redis.call('ZREMRANGEBYSCORE', user_key, '-inf', now)
  local newest = redis.call('ZRANGE', user_key, -1, -1, 'WITHSCORES')
  if newest[2] then
    redis.call('ZADD', room_key, newest[2], username)
  else
    redis.call('DEL', user_key)
    redis.call('ZREM', room_key, username)
    table.insert(gone, username)
  end
end
if redis.call('ZCARD', room_key) == 0 then redis.call('SREM', rooms_key, room_id) end
if #gone == 0 then return {0, gone} end
return {version(KEYS[3]), gone}
""")

# A heartbeat's refresh of one room (or of a share of its sockets: BEAT_CHUNK at most): push
# each socket's expiry and its user's forward, and return {v, the users that were not listed
# in the room} (Redis lost them, or a sweep took them; v is 0 when there were none). ARGV:
# expiry, room id, slug, then for each user: username, n, and its n socket ids. One command
# for a room's every socket, where a command per socket cost redis-py 60 ms of the loop per
# 1,000 sockets (Analysis item 25).
BEAT = versioned("""
local room_key = KEYS[1]
local expiry, room_id = ARGV[1], ARGV[2]
redis.call('SADD', KEYS[2], room_id)
redis.call('HSET', KEYS[3], room_id, ARGV[3])
local back = {}
local i = 4
while i <= #ARGV do
  local username, n = ARGV[i], tonumber(ARGV[i + 1])
  local user_key = room_key .. ':' .. username
  for j = i + 2, i + 1 + n do
    redis.call('ZADD', user_key, expiry, ARGV[j])
  end
  if redis.call('ZADD', room_key, 'GT', expiry, username) == 1 then
    table.insert(back, username)
  end
  i = i + 2 + n
end
if #back == 0 then return {0, back} end
return {version(KEYS[4]), back}
""")

# A room's presence as a join tells it, read at once: {names listed, guests, v}.
IN_ROOM = versioned("""
local now = ARGV[1]
local names = redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')
local guests = redis.call('ZCOUNT', KEYS[2], now, '+inf')
return {names, guests, version(KEYS[3])}
""")

# A room's guests as a `guests` frame tells them: {count, v}.
GUESTS = versioned("""
return {redis.call('ZCOUNT', KEYS[1], ARGV[1], '+inf'), version(KEYS[2])}
""")
BEAT_CHUNK = 1000  # sockets per BEAT call: bounds how long one call holds Redis


class RedisPresence(Heartbeat):
    """Presence shared by every worker through Redis, with a TTL heartbeat."""

    def __init__(self, url: str, *, ttl: float, prefix: str = "chat:presence:") -> None:
        self.redis = redis_client(url)
        self.ttl = ttl
        self.prefix = prefix
        self.scripts = {
            name: self.redis.register_script(code)
            for name, code in (
                ("add", ADD),
                ("remove", REMOVE),
                ("sweep", SWEEP),
                ("beat", BEAT),
                ("in_room", IN_ROOM),
                ("guests", GUESTS),
            )
        }
        self.turns = Turns(self.redis)  # a turn's joins and leaves in one pipeline
        # This process's own entries, refreshed by the heartbeat: room id → socket → username.
        self.local: dict[int, dict[str, str]] = defaultdict(dict)
        self.slugs: dict[int, str] = {}  # of the rooms in `local`
        # Removals Redis refused (it was away), made by the next beat: (room id, socket) →
        # (username, slug); each value a tuple of its own, so a settled removal is told
        # from one owed again since.
        self.owed: dict[tuple[int, str], tuple[str, str]] = {}
        self.fallbacks = Fallbacks("Redis (presence removals)", logger)
        self.on_offline: PresenceCallback | None = None
        self.on_online: PresenceCallback | None = None  # a user the heartbeat put back

    def _room_key(self, room_id: int) -> str:
        return f"{self.prefix}r:{room_id}"

    def _keys(self, room_id: int, username: str) -> list[str]:
        room_key = self._room_key(room_id)
        return [room_key, f"{room_key}:{username}", f"{self.prefix}rooms", f"{self.prefix}slugs"]

    def _version_key(self, room_id: int) -> str:
        return f"{self.prefix}v:{room_id}"

    async def add(self, *, room_id: int, room_slug: str, username: str, socket_id: str) -> Change:
        now = time.time()
        self.owed.pop((room_id, socket_id), None)  # joined again: the entry must stay
        self.local[room_id][socket_id] = username
        self.slugs[room_id] = room_slug
        keys = [*self._keys(room_id, username), self._version_key(room_id)]
        args = [socket_id, now + self.ttl, now, username, room_id, room_slug]
        ((first, v),) = await self.turns.run(ScriptCall(self.scripts["add"], keys, args))
        return Change(bool(first), v)

    async def remove(self, *, room_id: int, username: str, socket_id: str) -> Change:
        """Forget a socket; `changed` when it was the user's last in the room. While Redis is
        away the removal is owed, not lost: left to expire, the entry showed its user online
        for up to the TTL (30 s) after the tab closed, and a disconnect logged a traceback
        per room. The heartbeat makes it as soon as Redis answers and tells the room if the
        user went (`_settle`); meanwhile this says not changed (not known to be the last).
        A user with another socket here is not gone, whatever Redis says: after it restarted
        empty, and before this worker's beat put its entries back, Redis knew no socket of
        theirs (a tab closing then told no one before, and the pages open since before the
        restart listed its user online for good)."""
        slug = self.slugs.get(room_id, "")
        sockets = self.local.get(room_id, {})
        known = sockets.pop(socket_id, None) is not None
        still_here = username in sockets.values()
        if not sockets:
            self.local.pop(room_id, None)
            self.slugs.pop(room_id, None)
        try:
            removal = self._removal(room_id, username, socket_id, known=known)
            ((last, v),) = await self.turns.run(removal)
        except Exception:  # Redis away (a bug is logged each time, and dropped by _settle)
            self.owed[(room_id, socket_id)] = (username, slug)
            self.fallbacks.failed("Could not remove a socket's presence (Redis); owed")
            self.owed_soon()
            return Change(False, 0)
        self.fallbacks.answered()
        return Change(bool(last) and not still_here, v)

    def _removal(self, room_id: int, username: str, socket_id: str, *, known: bool) -> ScriptCall:
        keys = [*self._keys(room_id, username)[:2], self._version_key(room_id)]
        args = [socket_id, time.time(), username, int(known)]
        return ScriptCall(self.scripts["remove"], keys, args)

    async def _settle(self) -> None:
        """Make the removals Redis refused, in one turn (one pipeline), and tell each room
        of a user who has no socket left, listed or not (Redis may have restarted empty
        meanwhile: the pages open since before must still hear the user went; should
        another worker's tab of theirs not be back in Redis yet, its beat announces them
        again), and of its guest count. Run after the beat put this worker's own entries
        back. Raises, owing them still, while Redis is away; a removal Redis refuses
        outright (a bug) is logged and dropped, so that it cannot fail every beat after."""
        if not self.owed:
            return
        owed = list(self.owed.items())
        # Asked for at once, so a join asked for after this beat began goes after them.
        results = await self.turns.each(
            *(
                self._removal(room_id, username, socket_id, known=True)
                for (room_id, socket_id), (username, _) in owed
            )
        )
        away: Exception | None = None
        for ((room_id, socket_id), entry), result in zip(owed, results, strict=True):
            if isinstance(result, Exception) and redis_away(result):
                away = result
                continue
            if self.owed.get((room_id, socket_id)) is entry:  # not joined, nor owed, anew
                del self.owed[(room_id, socket_id)]
            username, slug = entry
            if isinstance(result, Exception):
                logger.error(
                    "Could not remove socket %s of %r from room %s's presence; left to expire",
                    socket_id,
                    username,
                    room_id,
                    exc_info=result,
                )
            elif (result[0] or username == GUEST) and self.on_offline is not None:
                await self.on_offline(room_id, slug, username, result[1])  # a guest: the count
        if away is not None:
            raise away
        self.fallbacks.answered()

    async def online(self, *, room_id: int) -> list[str]:
        names = await self.redis.zrangebyscore(self._room_key(room_id), time.time(), "+inf")
        return _named(names)

    async def guests(self, *, room_id: int) -> int:
        return await self.redis.zcount(f"{self._room_key(room_id)}:{GUEST}", time.time(), "+inf")

    async def in_room(self, *, room_id: int) -> Snapshot:
        """`online` and `guests` in one round trip, with the other joins of this turn: in a
        storm of joins each command costs as much in redis-py as the trip itself, and the
        joins of one room asking in the same turn share one read."""
        room_key = self._room_key(room_id)
        keys = [room_key, f"{room_key}:{GUEST}", self._version_key(room_id)]
        ((names, guests, v),) = await self.turns.shared(
            ("in_room", room_id), ScriptCall(self.scripts["in_room"], keys, [time.time()])
        )
        return Snapshot(_named(names), guests, v)

    async def counted(self, *, room_id: int) -> tuple[int, int]:
        """The room's guests and the read's version (what a `guests` frame tells)."""
        keys = [f"{self._room_key(room_id)}:{GUEST}", self._version_key(room_id)]
        ((guests, v),) = await self.turns.run(
            ScriptCall(self.scripts["guests"], keys, [time.time()])
        )
        return guests, v

    async def beat(self) -> None:
        await self.heartbeat()
        await self.sweep()

    async def heartbeat(self) -> list[tuple[int, str, str]]:
        """Push the expiry of every local socket's entry forward, and list its room for the
        sweep: after Redis restarted empty, one beat puts back all this process knows. The
        users it had to put back in a room's list (Redis lost them, or a sweep took them
        while this worker could not beat) are announced online again, so pages that joined
        meanwhile, and were told they were away, learn otherwise. Returns them. Then the
        removals Redis refused are made (`remove`)."""
        expiry = time.time() + self.ttl
        shared = [f"{self.prefix}rooms", f"{self.prefix}slugs"]
        rooms: list[int] = []  # the room of each call, in order
        calls: list[ScriptCall] = []
        for room_id, sockets in list(self.local.items()):
            keys = [self._room_key(room_id), *shared, self._version_key(room_id)]
            head = [expiry, room_id, self.slugs.get(room_id, "")]
            entries = list(sockets.items())
            for start in range(0, len(entries), BEAT_CHUNK):
                by_user: dict[str, list[str]] = defaultdict(list)
                for socket_id, username in entries[start : start + BEAT_CHUNK]:
                    by_user[username].append(socket_id)
                args: list[Any] = list(head)
                for username, socket_ids in by_user.items():
                    args += [username, len(socket_ids), *socket_ids]
                rooms.append(room_id)
                calls.append(ScriptCall(self.scripts["beat"], keys, args))
        # One turn (a pipeline); after Redis restarted empty, each call loads the script.
        results = await self.turns.run(*calls) if calls else []
        back: dict[tuple[int, str], int] = {}  # (room id, username) → the version
        for room_id, (v, users) in zip(rooms, results, strict=True):
            for username in users:
                back[(room_id, username.decode())] = v
        restored = [
            (room_id, self.slugs[room_id], username)
            for room_id, username in sorted(back)
            if username in self.local.get(room_id, {}).values()  # not left meanwhile
        ]
        if self.on_online is not None:
            for room_id, slug, username in restored:
                await self.on_online(room_id, slug, username, back[(room_id, username)])
        await self._settle()
        return restored

    async def sweep(self) -> list[tuple[int, str, str]]:
        """Remove users whose sockets all expired (their worker died); tell their rooms."""
        now = time.time()
        gone = []
        for raw_id in await self.redis.smembers(f"{self.prefix}rooms"):
            room_id = int(raw_id)
            keys = [self._room_key(room_id), f"{self.prefix}rooms", self._version_key(room_id)]
            v, users = await self.scripts["sweep"](keys=keys, args=[now, room_id])
            if not users:
                continue
            slug = (await self.redis.hget(f"{self.prefix}slugs", room_id) or b"").decode()
            for user in users:
                gone.append((room_id, slug, user.decode(), v))
        if self.on_offline is not None:
            for room_id, slug, username, v in gone:
                await self.on_offline(room_id, slug, username, v)
        return [(room_id, slug, username) for room_id, slug, username, _ in gone]


Presence = LocalPresence | RedisPresence


def _named(names: list[bytes]) -> list[str]:
    """A room's usernames as Redis lists them, without its guests' entry, sorted."""
    return sorted(name for name in map(bytes.decode, names) if name != GUEST)


def make_presence(runtime: "Runtime") -> Presence:
    """The registry of a runtime: through Redis, heartbeat running, when
    CHAT_PRESENCE_REDIS_URL is set; else in memory (a Redis client belongs to its loop)."""
    if not settings.CHAT_PRESENCE_REDIS_URL:
        return LocalPresence()
    registry = RedisPresence(settings.CHAT_PRESENCE_REDIS_URL, ttl=settings.CHAT_PRESENCE_TTL)
    registry.on_offline = runtime.news.announce_offline
    registry.on_online = runtime.news.announce_online
    runtime.start("presence heartbeat", registry.beat_forever)
    return registry


# user → (online before the window, online now, the version of the latest change)
Window = dict[str, tuple[bool, bool, int]]


class PresenceNews:
    """The room broadcasts of who is here, coalesced per room: guest counts at most once a
    second, and named presence at once in a quiet room, else the net change per user once
    a second. One per runtime (the timers belong to its loop)."""

    def __init__(self, runtime: "Runtime") -> None:
        self.runtime = runtime
        self.guest_updates: dict[int, asyncio.Task] = {}  # room id → its pending count
        # While Redis is away every room's count fails: logged once an outage.
        self.count_fallbacks = Fallbacks("Redis (presence)", logger)
        self.windows: dict[int, Window] = {}  # rooms whose presence changed in the last second
        # Users gone from a room, told once OFFLINE_GRACE has passed: (room id, user) → timer.
        self.going: dict[tuple[int, str], asyncio.TimerHandle] = {}

    def guests_changed(self, room_id: int, room_slug: str) -> None:
        """Tell the room its guest count within GUESTS_EVERY seconds (one frame for any
        number of changes meanwhile); the count is read when the frame is sent."""
        if room_id in self.guest_updates:
            return

        async def send_count() -> None:
            await asyncio.sleep(GUESTS_EVERY)
            del self.guest_updates[room_id]
            try:
                count, v = await self.runtime.presence.counted(room_id=room_id)
            except Exception:
                self.count_fallbacks.failed("Could not count a room's guests")
                return
            self.count_fallbacks.answered()
            frame = events.guests_frame(room_slug=room_slug, count=count, v=v)
            publish(*events.room_broadcast(room_id, frame))

        self.guest_updates[room_id] = asyncio.get_running_loop().create_task(send_count())

    def presence_changed(
        self, room_id: int, room_slug: str, username: str, *, online: bool, v: int
    ) -> None:
        """Tell the room a user came or went: at once if its presence has been quiet for
        PRESENCE_EVERY seconds, else at the end of that window, once per user and only if
        their state changed over it. So someone joining a quiet room shows at once, while
        join/leave churn costs each listener at most one frame per churning user per second,
        not two per join (540 join+leave pairs once pushed 1,080 frames to everyone). Each
        frame carries the version `v` of the change it tells (the latest, for a window's).

        A user's going waits OFFLINE_GRACE first, and their coming back within it cancels
        both: a reload that stayed on this worker showed the user gone for the rest of the
        room's second (seen running it as users). Coming back on another worker is told at
        once by that worker, with a newer version, so the late "gone" from here changes
        nothing on the pages."""
        going = self.going.pop((room_id, username), None)
        if going is not None:
            going.cancel()
            if online:
                return  # back before anyone heard they went
        if not online:
            self.going[(room_id, username)] = asyncio.get_running_loop().call_later(
                OFFLINE_GRACE, self._gone, room_id, room_slug, username, v
            )
            return
        self._changed(room_id, room_slug, username, online=online, v=v)

    def _gone(self, room_id: int, room_slug: str, username: str, v: int) -> None:
        del self.going[(room_id, username)]
        self._changed(room_id, room_slug, username, online=False, v=v)

    def _changed(
        self, room_id: int, room_slug: str, username: str, *, online: bool, v: int
    ) -> None:
        """A change the room hears: at once in a quiet room, else at the window's end."""
        window = self.windows.get(room_id)
        if window is None:
            self.windows[room_id] = {}
            _announce(room_id, room_slug, username, online=online, v=v)
            asyncio.get_running_loop().call_later(
                PRESENCE_EVERY, self._close_window, room_id, room_slug
            )
            return
        before = window[username][0] if username in window else not online
        latest = max(v, window[username][2]) if username in window else v
        window[username] = (before, online, latest)

    def _close_window(self, room_id: int, room_slug: str) -> None:
        """Send the net changes of a room's window; while there were any, open the next."""
        window = self.windows.pop(room_id, {})
        changed = []
        for user, (before, now, v) in window.items():
            if before == now:
                continue
            going = self.going.pop((room_id, user), None) if now else None
            if going is not None:  # came and went within the window: no one hears either
                going.cancel()
                continue
            changed.append((user, now, v))
        for username, online, v in changed:
            _announce(room_id, room_slug, username, online=online, v=v)
        if changed:
            self.windows[room_id] = {}
            asyncio.get_running_loop().call_later(
                PRESENCE_EVERY, self._close_window, room_id, room_slug
            )

    async def announce_offline(self, room_id: int, room_slug: str, username: str, v: int) -> None:
        """A sweep found a user gone with their dead worker: tell the room."""
        self._registry_changed(room_id, room_slug, username, online=False, v=v)

    async def announce_online(self, room_id: int, room_slug: str, username: str, v: int) -> None:
        """A heartbeat put a user back that Redis had lost: tell the room."""
        self._registry_changed(room_id, room_slug, username, online=True, v=v)

    def _registry_changed(
        self, room_id: int, room_slug: str, username: str, *, online: bool, v: int
    ) -> None:
        """The registry's own change of a room's users (not a socket's): a guest changes
        the count, anyone else is named."""
        if username == GUEST:
            self.guests_changed(room_id, room_slug)
        else:
            self.presence_changed(room_id, room_slug, username, online=online, v=v)


def _announce(room_id: int, room_slug: str, username: str, *, online: bool, v: int) -> None:
    frame = events.presence_frame(room_slug=room_slug, username=username, online=online, v=v)
    publish(*events.room_broadcast(room_id, frame))
