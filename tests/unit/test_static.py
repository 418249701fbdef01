"""Collected static files: the client's ES modules import each other by hashed name."""

import re
from pathlib import Path

from django.core.management import call_command

IMPORT = re.compile(r'^import .* from "\./([\w.]+)";$', re.MULTILINE)


def test_collected_modules_import_their_dependencies_by_hashed_name(settings, tmp_path: Path):
    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "chatsite.storage.StaticFilesStorage"},
    }

    call_command("collectstatic", interactive=False, verbosity=0)

    entries = list((tmp_path / "chat").glob("room.*.js"))
    assert len(entries) == 1
    imported = IMPORT.findall(entries[0].read_text())
    assert "sync.js" not in imported
    assert any(re.fullmatch(r"sync\.[0-9a-f]{12}\.js", name) for name in imported), imported
    assert all((tmp_path / "chat" / name).exists() for name in imported)
