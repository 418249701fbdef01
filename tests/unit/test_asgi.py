"""The ASGI module's own setup (chatsite/asgi.py), in a fresh interpreter each."""

import os
import subprocess
import sys

from tests.support import PROJECT_ROOT


def _after_import(script: str) -> list[int]:
    """What `script` prints (integers) after importing chatsite.asgi, run in a fresh
    interpreter: this one imported it long ago."""
    script = f"import gc; before = gc.get_freeze_count(); import chatsite.asgi; {script}"
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
    return [int(word) for word in result.stdout.split()]


def test_the_asgi_module_freezes_what_startup_made_for_the_collector():
    """Full collections skip the process's startup objects."""
    before, after = _after_import("print(before, gc.get_freeze_count())")
    assert before == 0
    assert after > 50_000  # Django, channels, Twisted and the project's modules


def test_full_collections_wait_for_ten_times_the_default_middle_collections():
    """A socket storm no longer runs a full collection every quarter's growth; the young
    generations keep Python's defaults."""
    assert _after_import("print(*gc.get_threshold())") == [700, 10, 100]
