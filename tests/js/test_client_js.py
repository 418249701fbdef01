"""The browser client's delivery logic, unit-tested with Node's own test runner."""

import subprocess
from pathlib import Path

from tests.support.js_client import need_node

JS_TESTS = Path(__file__).resolve().parent


def test_sync_js_unit_tests_pass():
    """`node --test tests/js/`: gap detection, dedup, outbox, ping/pong (sync.test.js)."""
    node = need_node()
    run = subprocess.run(
        [node, "--test", str(JS_TESTS)], capture_output=True, text=True, timeout=120, check=False
    )
    summary = [line for line in run.stdout.splitlines() if line.startswith("# ")]
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "# fail 0" in summary
    assert any(line.startswith("# pass ") and line != "# pass 0" for line in summary)
