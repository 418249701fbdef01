"""Collected static files: the client's ES modules import each other by hashed name."""

import re
from pathlib import Path

import pytest
from django.core.management import call_command

IMPORT = re.compile(r'^import .* from "\./([\w.]+)";$', re.MULTILINE)
HASHED = re.compile(r"\w+\.[0-9a-f]{12}\.js")


@pytest.fixture
def collected(settings, tmp_path: Path) -> Path:
    """The app's static files as collectstatic leaves them in production: their folder."""
    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "chatsite.storage.StaticFilesStorage"},
    }
    call_command("collectstatic", interactive=False, verbosity=0)
    return tmp_path / "chat"


def test_collected_modules_import_their_dependencies_by_hashed_name(collected: Path):
    entries = list(collected.glob("room.*.js"))
    assert len(entries) == 1
    imported = IMPORT.findall(entries[0].read_text())
    assert "sync.js" not in imported
    assert any(re.fullmatch(r"sync\.[0-9a-f]{12}\.js", name) for name in imported), imported
    assert all((collected / name).exists() for name in imported)


def test_every_collected_module_imports_hashed_names_only(collected: Path):
    """transport.js imports fallback.js: a module two imports deep is rewritten too."""
    modules = [path for path in collected.glob("*.js") if HASHED.fullmatch(path.name)]
    (transport,) = [path for path in modules if path.name.startswith("transport.")]
    assert any(name.startswith("fallback.") for name in IMPORT.findall(transport.read_text()))
    for module in modules:
        for name in IMPORT.findall(module.read_text()):
            assert HASHED.fullmatch(name), (module.name, name)
            assert (collected / name).exists(), (module.name, name)
