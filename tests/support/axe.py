"""axe-core (pinned in tests/js/package.json, installed by `make test`'s `npm ci`) run in a
page: the WCAG 2.1 A and AA rules, and the violations that matter (serious, critical)."""

from pathlib import Path
from typing import Any

from playwright.sync_api import Page

from tests.support.deps import need

AXE = Path(__file__).resolve().parent.parent / "js" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = {"serious", "critical"}


def violations(page: Page) -> list[dict[str, Any]]:
    """The page's serious and critical WCAG 2.1 A/AA violations, as axe reports them.

    axe's source is evaluated through the DevTools protocol, which the page's CSP does not
    govern, so the page is checked as served, policy and all."""
    need("node", AXE.exists(), f"axe-core is not installed at {AXE} (cd tests/js && npm ci)")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    found = page.evaluate(
        """async (tags) => {
          const result = await axe.run(document, { runOnly: { type: "tag", values: tags } });
          return result.violations.map((v) => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map((n) => n.target.join(" ")).slice(0, 5),
          }));
        }""",
        WCAG_21_AA,
    )
    return [v for v in found if v["impact"] in BLOCKING]


def describe(found: list[dict[str, Any]]) -> str:
    return "\n".join(f"{v['impact']} {v['id']}: {v['help']} at {v['nodes']}" for v in found)
