"""Is this process well? What it depends on (the database, Redis, the channel layer) and
whether each answers, and, inside a server, whether its background loops are alive.

Two doors: `GET /healthz` asks the serving process itself (its runtime's loops, as that
worker sees them; 200 when all is well, else 503), and `manage.py health` asks the
dependencies from a fresh process (exit 0 or 1), e.g. before starting the workers.
Both report booleans and names only, nothing a visitor could use.
"""

import asyncio
import uuid
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

from .layers import CHANNEL_PREFIX
from .runtime import runtime_for_loop

CHECK_TIMEOUT = 3.0  # seconds a dependency may take to answer
LAYER_CHECK = "health.check"  # a channel-layer message to itself, never a frame


def _database_answers() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:
        return False


async def database_answers() -> bool:
    return await database_sync_to_async(_database_answers)()


async def redis_answers(url: str) -> bool:
    import redis.asyncio as redis

    client = redis.Redis.from_url(url, socket_timeout=CHECK_TIMEOUT)
    try:
        return bool(await client.ping())
    except Exception:
        return False
    finally:
        await client.aclose()


async def layer_answers() -> bool:
    """A message sent to a fresh channel of the layer comes back."""
    layer = get_channel_layer()
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            channel = await layer.new_channel(CHANNEL_PREFIX)
            token = uuid.uuid4().hex
            await layer.send(channel, {"type": LAYER_CHECK, "token": token})
            return (await layer.receive(channel)).get("token") == token
    except Exception:
        return False


async def dependencies() -> dict[str, bool]:
    """Each dependency of this configuration: does it answer?"""
    checks = {"database": database_answers()}
    if settings.REDIS_URL:
        checks["redis"] = redis_answers(settings.REDIS_URL)
    results = await asyncio.gather(*checks.values())
    return dict(zip(checks, results, strict=True))


async def process_health() -> dict[str, Any]:
    """This serving process: its dependencies, as asked now, and its runtime's loops."""
    runtime = runtime_for_loop().health()
    answers = await dependencies()
    answers.update(
        {f"{name} (as the loops see it)": ok for name, ok in runtime["dependencies"].items()}
    )
    loops_alive = all(loop["alive"] for loop in runtime["loops"].values())
    return {
        "ok": all(answers.values()) and loops_alive,
        "dependencies": answers,
        "loops": runtime["loops"],
    }


async def healthz(request: HttpRequest) -> JsonResponse:
    """GET /healthz: 200 and {"ok": true, …} when this worker is well, else 503."""
    report = await process_health()
    return JsonResponse(report, status=200 if report["ok"] else 503)
