"""`manage.py health`: does each dependency of this configuration answer? Exit 1 if not.

With `--url`, asks a running server's /healthz as well (its background loops)."""

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from chat.realtime import health


class Command(BaseCommand):
    help = "Check the database, Redis and the channel layer (and a server's /healthz)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--url", help="a running server's /healthz to ask as well")

    def handle(self, *args: Any, url: str | None = None, **options: Any) -> None:
        async def check() -> dict[str, bool]:
            answers = await health.dependencies()
            answers["channel layer"] = await health.layer_answers()
            return answers

        answers = asyncio.run(check())
        if url:
            answers[f"server at {url}"] = self._server_is_well(url)
        for name, ok in answers.items():
            self.stdout.write(f"{name}: {'ok' if ok else 'NOT ANSWERING'}")
        if not all(answers.values()):
            raise CommandError("unhealthy")

    def _server_is_well(self, url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=health.CHECK_TIMEOUT) as response:
                report = json.load(response)
        except urllib.error.HTTPError as error:
            report = json.load(error)
        except OSError:
            return False
        for name, loop in report.get("loops", {}).items():
            self.stdout.write(f"  loop {name}: {'alive' if loop['alive'] else 'DEAD'}")
        return bool(report.get("ok"))
