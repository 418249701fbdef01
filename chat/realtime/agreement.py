"""Settings every worker of a site must share, compared through Redis: CHAT_FANOUT_SHARDS.

A worker whose shard count differs from the others' puts rooms' events in layer groups the
others do not join, and joins groups they do not send to (layer_events.carrier): live
delivery between them would stop without an error anywhere, each side's clients healing
only at their next resync. So every TTL/3 each worker writes its value under one key unless
a value is there, keeps a matching value alive, and compares. A difference is logged as an
error (once, until it ends) and fails /healthz, so a deploy that mixes values is seen.
"""

import logging
from typing import TYPE_CHECKING

from django.conf import settings

from .heartbeat import Heartbeat

if TYPE_CHECKING:
    from .runtime import Runtime

logger = logging.getLogger(__name__)

KEY = "chat:settings:fanout_shards"


class SharedSettings(Heartbeat):
    """This worker's CHAT_FANOUT_SHARDS against the site's, as Redis last said."""

    def __init__(self, redis, *, ttl: float, key: str = KEY) -> None:
        self.redis = redis  # a redis.asyncio client this registry does not own
        self.ttl = ttl
        self.key = key
        self.agree = True  # until Redis says otherwise
        self.theirs: str | None = None

    async def beat(self) -> None:
        mine = str(settings.CHAT_FANOUT_SHARDS)
        expiry = max(1, round(self.ttl * 3))  # outlives two missed beats of a live worker
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.key, mine, nx=True, ex=expiry)
            pipe.get(self.key)
            _, theirs = await pipe.execute()
        theirs = theirs.decode() if isinstance(theirs, bytes) else theirs
        if theirs == mine:
            await self.redis.expire(self.key, expiry)
        self._found(mine, theirs)

    def _found(self, mine: str, theirs: str | None) -> None:
        agree = theirs is None or theirs == mine
        if not agree and (self.agree or theirs != self.theirs):
            logger.error(
                "CHAT_FANOUT_SHARDS is %s here but %s on another worker of this site: rooms'"
                " events between them are not delivered live. Give every worker the same"
                " value.",
                mine,
                theirs,
            )
        elif agree and not self.agree:
            logger.warning("CHAT_FANOUT_SHARDS agrees with the other workers again (%s)", mine)
        self.agree, self.theirs = agree, theirs


def shared_settings(runtime: "Runtime") -> SharedSettings | None:
    """The comparison of a runtime whose socket cap lives in Redis (through the same
    client), heartbeat running; None for a single process (nothing to disagree with)."""
    redis = getattr(runtime.limits, "redis", None)
    if redis is None:
        return None
    shared = SharedSettings(redis, ttl=settings.CHAT_PRESENCE_TTL)
    runtime.start("shared settings heartbeat", shared.beat_forever)
    return shared
