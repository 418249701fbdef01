"""`manage.py sweep_uploads`: delete files uploaded into rooms but never sent with a message
(older than a day, or `--hours`), and their stored bytes. Run it from cron, e.g. hourly."""

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand

from chat import services


class Command(BaseCommand):
    help = "Delete uploads never sent with a message, older than a day (or --hours)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--hours", type=float, default=24, help="age to sweep from")

    def handle(self, *args: Any, hours: float, **options: Any) -> None:
        swept = services.attachments_sweep(older_than=timedelta(hours=hours))
        self.stdout.write(f"Deleted {swept} unsent upload{'' if swept == 1 else 's'}.")
