"""First message visible on a slow phone (issue 15): a room page served as in production,
loaded in Chromium with its CPU slowed 4 times, timed from navigation start to the first
message line painted in view (target: under 300 ms).

The server is one daphne process with debug off (`DJANGO_DEBUG=0`), its static files
collected into a temporary folder (hashed names, gzip and brotli) and served by WhiteNoise,
on a fresh SQLite database: alice, a member of general, where bob posted --messages messages
(the room page shows the latest 50). The browser is Playwright's Chromium (Debian's) with a
phone's screen (390 x 844 CSS px, touch), signed in as alice, with
`Emulation.setCPUThrottlingRate` --throttle; the network is the loopback, slowed only by
--latency (ms added to every request, to show the module waterfall).

What is timed: Element Timing (`elementtiming`, set by an init script on every message body
as the parser adds it, so the page needs no hook) reports when each body's text is first
painted and where; *first message visible* is the earliest inside the viewport: what the
HTML and the render-blocking stylesheet give, no script needed. *Newest line in view* is the
frame after room.js scrolls the list to its end (the list starts at its oldest line). Also
printed: first contentful paint, when the HTML and the last module had arrived, and the
requests and bytes over the wire (CDP `Network.loadingFinished`, headers included) of the
first cold load. A *cold* load has an empty cache (a new browser context, so a renderer
process started for it); a *warm* load is the same context navigating to the page again (CSS
and JS from its cache); an *opened* load is that tab again with its cache disabled: a first
visit to the room from another page of the site. With --no-scripts every script request is
refused: what the HTML and the stylesheet alone cost, the floor of the page as it is. Each figure is
the median of --loads loads. With --profile, one more cold load is traced: the main
thread's wall and CPU time by phase until the first message was visible.

    .venv/bin/python bench/firstpaint.py [--loads 15] [--throttle 4] [--messages 200]
                                        [--latency 150] [--profile] [--no-scripts] [--json]

Prints a Markdown table (docs/performance.md, "Page weight and first paint", quotes runs).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

import servers

ROOT = Path(__file__).resolve().parent.parent
PYTHON = Path(sys.executable)
TARGET_MS = 300
ROOM = "/chat/general/"
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}

SEED = """
from django.contrib.auth import get_user_model
from django.test import Client
from chat import services
from chat.models import Room
users = get_user_model().objects
alice, bob = users.create_user("alice"), users.create_user("bob")
services.user_welcome(user=alice)
services.user_welcome(user=bob)
room = Room.objects.get(slug="general")
services.messages_create(drafts=[
    services.MessageDraft(
        room=room, author=bob, client_id=str(i),
        body=f"Message {{i}}: a line of **chat** about the _thing_ we talked about yesterday",
    )
    for i in range({messages})
])
client = Client()
client.force_login(alice)
print("SESSION " + client.cookies["sessionid"].value)
"""

# Marks every message body and its paragraphs as the parser adds them (before they are
# painted: mutation records are delivered at the end of the parser's task), keeps the
# Element Timing entries, and notes when room.js first scrolls the list (to its newest line)
# and the frame after that.
OBSERVE = """
window.__paints = [];
new PerformanceObserver((list) => window.__paints.push(...list.getEntries()))
  .observe({ type: "element", buffered: true });
// Cheap, as it runs for every node parsed (on the slowed main thread): the parser adds a
// body, then its paragraphs one by one, each a record of its own.
const mark = (node) => {
  if (node.nodeType !== 1) return;
  const body = node.classList.contains("body") ? node : node.parentElement;
  if (body && body.classList.contains("body")) node.setAttribute("elementtiming", "message");
};
new MutationObserver((records) => records.forEach((r) => r.addedNodes.forEach(mark)))
  .observe(document, { childList: true, subtree: true });
document.addEventListener("scroll", (event) => {
  if (event.target.id !== "messages" || window.__scrolled) return;
  window.__scrolled = -1;
  requestAnimationFrame(() => { window.__scrolled = performance.now(); });
}, { capture: true });
"""

# Once the first message is painted in view and the list is at its newest line: the times,
# in ms from navigation start.
FIGURES = """
() => {
  const visible = window.__paints.filter(
    (e) => e.intersectionRect.width > 0 && e.intersectionRect.height > 0);
  if (!visible.length || !(window.__scrolled > 0 || window.__noScripts)) return null;
  const fcp = performance.getEntriesByName("first-contentful-paint")[0];
  const nav = performance.getEntriesByType("navigation")[0];
  const scripts = performance.getEntriesByType("resource")
    .filter((e) => e.initiatorType === "script" || e.initiatorType === "link"
      || e.initiatorType === "other")
    .filter((e) => e.name.endsWith(".js"));
  return {
    first: Math.min(...visible.map((e) => e.renderTime)),
    fcp: fcp ? fcp.startTime : null,
    html: nav.responseEnd,
    parsed: nav.domInteractive,
    modules: window.__noScripts ? null : Math.max(...scripts.map((e) => e.responseEnd)),
    newest: window.__noScripts ? null : window.__scrolled,
  };
}
"""


def run_quiet(args: list[str], *, env: dict[str, str]) -> str:
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{' '.join(args[:3])} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def production_env(folder: Path) -> dict[str, str]:
    """Debug off, as `make serve` runs it, on plain http and a database of its own."""
    env = dict(os.environ)
    env.pop("REDIS_URL", None)
    env.update(
        DJANGO_SETTINGS_MODULE="chatsite.settings",
        DJANGO_DEBUG="0",
        DJANGO_HTTPS="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        DJANGO_STATIC_ROOT=str(folder / "static"),
        DATABASE_URL=f"sqlite:///{folder / 'firstpaint.sqlite3'}",
    )
    return env


def serve(folder: Path, messages: int) -> tuple[subprocess.Popen, str, str]:
    """Collect, migrate, seed and start the server; return it, its URL and alice's session."""
    env = production_env(folder)
    manage = [str(PYTHON), "manage.py"]
    run_quiet([*manage, "collectstatic", "--noinput"], env=env)
    run_quiet([*manage, "migrate", "--noinput"], env=env)
    out = run_quiet([*manage, "shell", "-c", SEED.format(messages=messages)], env=env)
    session = next(line.split()[1] for line in out.splitlines() if line.startswith("SESSION "))
    port = free_port()
    log = (folder / "server.log").open("wb")
    server = subprocess.Popen(
        servers.daphne_command(port), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{base}/", timeout=2):
                return server, base, session
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"the server did not start; see {folder / 'server.log'}")
            time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((servers.HOST, 0))
        return sock.getsockname()[1]


def load(page, url: str) -> dict[str, float]:
    """Navigate and wait for a message in view and the list at its newest line."""
    page.goto(url, wait_until="load")  # no polling of a slowed page while it loads
    page.wait_for_function(f"({FIGURES})() !== null", timeout=30_000, polling=100)
    return page.evaluate(FIGURES)


def measure(
    base: str, session: str, *, loads: int, throttle: float, latency: float, scripts: bool
) -> dict:
    from playwright.sync_api import sync_playwright

    cold, warm, opened, weight = [], [], [], None
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
        try:
            for i in range(loads):
                context = browser.new_context(**PHONE)
                context.add_cookies([{"name": "sessionid", "value": session, "url": base}])
                context.add_init_script(OBSERVE)
                if not scripts:
                    context.add_init_script("window.__noScripts = true;")
                    context.route("**/*.js", lambda route: route.abort())
                page = context.new_page()
                cdp = context.new_cdp_session(page)
                cdp.send("Network.enable")
                cdp.send("Emulation.setCPUThrottlingRate", {"rate": throttle})
                if latency:
                    conditions = {"latency": latency, "downloadThroughput": -1}
                    cdp.send(
                        "Network.emulateNetworkConditions",
                        {**conditions, "offline": False, "uploadThroughput": -1},
                    )
                wire: dict[str, dict] = {}
                cdp.on(
                    "Network.responseReceived",
                    lambda e, w=wire: w.setdefault(e["requestId"], {}).update(
                        url=e["response"]["url"], type=e["type"]
                    ),
                )
                cdp.on(
                    "Network.loadingFinished",
                    lambda e, w=wire: w.setdefault(e["requestId"], {}).update(
                        bytes=e["encodedDataLength"]
                    ),
                )
                cold.append(load(page, base + ROOM))
                if i == 0:
                    page.wait_for_load_state("networkidle")
                    weight = summarize(wire, base)
                warm.append(load(page, base + ROOM))
                # The same tab, its renderer running, nothing cached: a first visit to the
                # room from another page of the site.
                cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
                opened.append(load(page, base + ROOM))
                context.close()
        finally:
            browser.close()
    return {"cold": cold, "opened": opened, "warm": warm, "weight": weight}


PHASES = {
    "ParseHTML": "parse HTML",
    "UpdateLayoutTree": "style",
    "Layout": "layout",
    "PrePaint": "paint",
    "Paint": "paint",
    "Layerize": "paint",
    "Commit": "paint",
    "EvaluateScript": "script",
    "v8.evaluateModule": "script",
    "FunctionCall": "script",
    "v8.compileModule": "script",
}


def profile(base: str, session: str, *, throttle: float) -> dict[str, list[float]]:
    """One cold load under DevTools tracing: the renderer's main thread until the first
    message is visible, by phase, in ms of wall time and of CPU time (`tdur`; the throttle
    only stretches the former). Phases nest (a script may run inside parsing)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
        context = browser.new_context(**PHONE)
        context.add_cookies([{"name": "sessionid", "value": session, "url": base}])
        context.add_init_script(OBSERVE)
        page = context.new_page()
        context.new_cdp_session(page).send("Emulation.setCPUThrottlingRate", {"rate": throttle})
        browser.start_tracing(page=page, categories=["devtools.timeline", "loading"])
        figures = load(page, base + ROOM)
        events = json.loads(browser.stop_tracing())["traceEvents"]
        browser.close()
    # The trace's first contentful paint is the page's, in trace time: it anchors the rest.
    fcp = max(e["ts"] for e in events if e.get("name") == "firstContentfulPaint")
    start = fcp - figures["fcp"] * 1000
    end = start + figures["first"] * 1000
    main = Counter((e["pid"], e["tid"]) for e in events if e.get("name") == "ParseHTML")
    thread = main.most_common(1)[0][0]
    phases: dict[str, list[float]] = {}
    for e in events:
        if (e.get("pid"), e.get("tid")) != thread or e.get("ph") != "X":
            continue
        if not start <= e["ts"] <= end:
            continue
        name = PHASES.get(e["name"])
        if name:
            wall, cpu = phases.setdefault(name, [0.0, 0.0])
            phases[name] = [wall + e.get("dur", 0) / 1000, cpu + e.get("tdur", 0) / 1000]
    return {"first": figures["first"], "phases": phases}


def summarize(wire: dict[str, dict], base: str) -> dict[str, list[int]]:
    """Requests and bytes over the wire of one load, by kind."""
    kinds: dict[str, list[int]] = {}
    for entry in wire.values():
        if "url" not in entry or not entry["url"].startswith(base):
            continue
        kind = {"Document": "HTML", "Stylesheet": "CSS", "Script": "JS"}.get(entry["type"], "other")
        count, size = kinds.get(kind, [0, 0])
        kinds[kind] = [count + 1, size + entry.get("bytes", 0)]
    return kinds


COLUMNS = {
    "first": "first message visible",
    "fcp": "first contentful paint",
    "html": "HTML received",
    "modules": "last module received",
    "newest": "newest line in view",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loads", type=int, default=15)
    parser.add_argument("--throttle", type=float, default=4)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0, help="ms added to each request")
    parser.add_argument("--json", action="store_true", help="print every load's figures")
    parser.add_argument("--no-scripts", action="store_true", help="refuse every script request")
    parser.add_argument(
        "--profile", action="store_true", help="also trace a cold load: main thread by phase"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="firstpaint-") as scratch:
        server, base, session = serve(Path(scratch), args.messages)
        try:
            results = measure(
                base,
                session,
                loads=args.loads,
                throttle=args.throttle,
                latency=args.latency,
                scripts=not args.no_scripts,
            )
            if args.profile:
                results["profile"] = profile(base, session, throttle=args.throttle)
        finally:
            server.terminate()
            server.wait(timeout=10)
    if args.json:
        print(json.dumps(results, indent=1))
    load_average = ", ".join(f"{figure:.1f}" for figure in os.getloadavg())
    print(
        f"Medians of {args.loads} loads, ms from navigation start; CPU slowed {args.throttle:g}x,"
        f" {args.latency:g} ms added per request; load average {load_average}\n"
    )
    print("| load | " + " | ".join(COLUMNS.values()) + f" | under {TARGET_MS} ms |")
    print("|---|" + "---:|" * len(COLUMNS) + "---|")
    for kind in ("cold", "opened", "warm"):
        medians = {  # with --no-scripts, no module arrives and the list is not scrolled
            key: statistics.median(r[key] for r in results[kind])
            for key in COLUMNS
            if results[kind][0][key] is not None
        }
        first = [r["first"] for r in results[kind]]
        spread = f" ({min(first):.0f} to {max(first):.0f})"
        cells = [
            (f"{medians[key]:.0f}" if key in medians else "n/a")
            + (spread if key == "first" else "")
            for key in COLUMNS
        ]
        verdict = "met" if medians["first"] < TARGET_MS else "missed"
        print(f"| {kind} | " + " | ".join(cells) + f" | {verdict} |")
    print("\n| first cold load | requests | bytes over the wire |\n|---|---:|---:|")
    for kind, (count, size) in sorted(results["weight"].items()):
        print(f"| {kind} | {count} | {size:,} |")
    if args.profile:
        traced = results["profile"]
        print(f"\nTraced cold load, first message visible at {traced['first']:.0f} ms; the main")
        print("thread until then (phases nest):\n\n| phase | wall ms | CPU ms |\n|---|---:|---:|")
        for name, (wall, cpu) in sorted(traced["phases"].items(), key=lambda kv: -kv[1][0]):
            print(f"| {name} | {wall:.0f} | {cpu:.0f} |")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
