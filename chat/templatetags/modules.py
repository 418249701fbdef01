"""`{% modulepreload "chat/room.js" "chat/switcher.js" %}`: a `<link rel="modulepreload">` for
each ES module a page runs and every module they import, however deep.

Without them the browser finds a module's imports only once it has fetched and parsed that
module: room.js → log.js → render.js → files.js is four round trips one after the other,
which a phone on a slow network pays in full. With the whole graph named in the page's
<head>, all of it is fetched at once, in parallel with the HTML. The hrefs come from
`{% static %}`, so in production they are the hashed names the collected modules import
(chatsite/storage.py) and the preloaded copies are the ones used.
"""

import functools
import re
from pathlib import PurePosixPath

from django import template
from django.conf import settings
from django.contrib.staticfiles import finders
from django.templatetags.static import static
from django.utils.html import format_html_join
from django.utils.safestring import SafeString

register = template.Library()

# Static imports and re-exports of a sibling module: `import { a } from "./b.js";` (over
# several lines too), `import "./b.js";`, `export { a } from "./b.js";`. Not `import("…")`:
# a dynamic import is loaded when it is needed, not up front.
IMPORT = re.compile(r"""^\s*(?:import|export)\b[^;()]*?["'](\./[\w./-]+\.js)["']""", re.MULTILINE)


def module_graph(entry: str) -> list[str]:
    """`entry` (a static path, "chat/room.js") and the static paths of every module it
    imports directly or indirectly, each once, entry first, then breadth first."""
    graph, queue = [entry], [entry]
    while queue:
        path = queue.pop(0)
        source = finders.find(path)
        if source is None:
            raise ValueError(f"no static file {path!r} (imported by the graph of {entry!r})")
        with open(source, encoding="utf-8") as module:
            text = module.read()
        folder = PurePosixPath(path).parent
        for relative in IMPORT.findall(text):
            imported = str(folder / PurePosixPath(relative))
            if imported not in graph:
                graph.append(imported)
                queue.append(imported)
    return graph


_cached_graph = functools.lru_cache(maxsize=16)(module_graph)


@register.simple_tag
def modulepreload(*entries: str) -> SafeString:
    """The <link rel="modulepreload"> elements of the graphs of `entries` (a page's entry
    modules: each of its `<script type="module">`), each module once. With debug on the
    graphs are read again on every page, so an edited import needs no restart; without it,
    once."""
    graph = module_graph if settings.DEBUG else _cached_graph
    paths = list(dict.fromkeys(path for entry in entries for path in graph(entry)))
    return format_html_join(
        "\n", '<link rel="modulepreload" href="{}">', ((static(path),) for path in paths)
    )
