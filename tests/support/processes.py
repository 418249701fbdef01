"""Python in a fresh process with the project's settings and a clean environment: how a
deployment loads them, so what a test sees is what `manage.py` would."""

import os
import subprocess
import sys

from tests.support import PROJECT_ROOT

CLEAN = {
    k: v
    for k, v in os.environ.items()
    if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL", "CHAT_"))
}


def run(*args: str, **env: str) -> subprocess.CompletedProcess:
    """`python ARGS` in the checkout, with only the settings variables given in `env`."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=PROJECT_ROOT,
        env={**CLEAN, "DJANGO_SETTINGS_MODULE": "chatsite.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
