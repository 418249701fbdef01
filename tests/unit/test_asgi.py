"""The ASGI module's own setup (chatsite/asgi.py), in a fresh interpreter each."""

from tests.support.processes import run


def _after_import(script: str) -> list[int]:
    """What `script` prints (integers) after importing chatsite.asgi, run in a fresh
    interpreter: this one imported it long ago."""
    result = run("-c", f"import gc; before = gc.get_freeze_count(); import chatsite.asgi; {script}")
    assert result.returncode == 0, result.stderr
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
