"""The suite's own shape: every test module lives in a tier folder, and none imports another
test module (shared code lives in tests/support, fixtures are registered in tests/conftest.py)."""

import ast

from tests.support import PROJECT_ROOT

TESTS = PROJECT_ROOT / "tests"
TIERS = {"unit", "asgi", "live", "browser", "js"}


def test_every_test_module_is_in_a_tier_folder():
    modules = [path for path in TESTS.rglob("test_*.py") if "node_modules" not in path.parts]
    misplaced = [str(p.relative_to(TESTS)) for p in modules if p.parent.name not in TIERS]
    assert len(modules) > 30  # the glob finds the suite
    assert misplaced == []


def test_no_module_imports_a_test_module_or_the_conftest():
    offenders = []
    for path in TESTS.rglob("*.py"):
        if "node_modules" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                parts = name.split(".")
                if parts[0] == "tests" and (
                    "conftest" in parts or any(p.startswith("test_") for p in parts)
                ):
                    offenders.append(f"{path.relative_to(TESTS)} imports {name}")
    assert offenders == []
