"""The ASGI module's own setup (chatsite/asgi.py), in a fresh interpreter each."""

import os
import subprocess
import sys

from tests.support import PROJECT_ROOT


def test_the_asgi_module_freezes_what_startup_made_for_the_collector():
    """Full collections skip the process's startup objects (chatsite/asgi.py): run in a
    fresh interpreter, since this one imported chatsite.asgi long ago."""
    script = (
        "import gc; before = gc.get_freeze_count(); import chatsite.asgi;"
        " print(before, gc.get_freeze_count())"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "chatsite.settings"}
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    before, after = map(int, result.stdout.split())
    assert before == 0
    assert after > 50_000  # Django, channels, Twisted and the project's modules
