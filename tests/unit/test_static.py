"""Collected static files: the client's ES modules import each other by hashed name, and
the pages preload each module graph by those names (chat/templatetags/modules.py)."""

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.template import Context, Template
from django.test import override_settings

from chat.templatetags.modules import module_graph

IMPORT = re.compile(r'^import .* from "\./([\w.]+)";$', re.MULTILINE)
HASHED = re.compile(r"\w+\.[0-9a-f]{12}\.js")


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The app's static files as collectstatic leaves them in production: their folder.
    Collected once for the module (compressing them all is slow) and served while it runs."""
    root = tmp_path_factory.mktemp("static")
    production = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "chatsite.storage.StaticFilesStorage"},
    }
    with override_settings(STATIC_ROOT=root, STORAGES=production):
        call_command("collectstatic", interactive=False, verbosity=0)
        yield root / "chat"


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


def test_the_preload_graph_of_room_js_is_every_module_it_reaches_once_entry_first():
    graph = module_graph("chat/room.js")

    assert graph[0] == "chat/room.js"
    assert len(graph) == len(set(graph))
    # transport.js imports fallback.js; log.js imports render.js (over several lines), which
    # imports files.js; thread.js imports render.js too.
    assert {"chat/transport.js", "chat/fallback.js", "chat/render.js", "chat/files.js"} <= set(
        graph
    )
    assert "chat/lobby.js" not in graph


def test_a_module_graph_reads_every_kind_of_static_import_and_no_dynamic_one(tmp_path, settings):
    folder = tmp_path / "app"
    (folder / "m").mkdir(parents=True)
    (folder / "m" / "entry.js").write_text(
        'import { a,\n  b } from "./a.js";\nimport "./side.js";\nexport { c } from "./c.js";\n'
        'const later = () => import("./lazy.js");\n'
    )
    for name in ("a", "side", "c", "lazy"):
        (folder / "m" / f"{name}.js").write_text('import { a } from "./a.js";\n')
    settings.STATICFILES_DIRS = [folder]

    assert module_graph("m/entry.js") == ["m/entry.js", "m/a.js", "m/side.js", "m/c.js"]


def test_preload_links_in_production_name_the_hashed_modules_that_import_each_other(
    collected: Path, settings
):
    settings.DEBUG = False  # the graph is cached: as served
    html = Template('{% load modules %}{% modulepreload "chat/room.js" %}').render(Context())
    names = re.findall(r'<link rel="modulepreload" href="/static/chat/([^"]+)">', html)
    room = names[0]
    imported = IMPORT.findall((collected / room).read_text())

    assert len(names) == len(module_graph("chat/room.js"))
    assert all(HASHED.fullmatch(name) and (collected / name).exists() for name in names), names
    assert set(imported) <= set(names)
