"""Issue 15: the edge of every form control keeps 3:1 against what is around it (WCAG
1.4.11, non-text contrast), in the light scheme and the dark one: every input, textarea,
select and checkbox shown on the pages of tests/support/a11y.py, a room's thread panel open."""

import io
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from tests.support.a11y import MINE, PAGES, install_colour, opened, seed_conversation
from tests.support.live_server import LiveSite

pytestmark = [pytest.mark.browser, pytest.mark.own_database]

# Each shown control's border (or, with none, its fill) against the opaque colour behind it.
# A checkbox or radio button drawn by the browser (appearance: auto) has no border in CSS:
# its box is returned, and its pixels are measured instead.
MEASURE = """
() => {
  const colour = window.__colour;
  const controls = document.querySelectorAll(
    "input:not([type=hidden], [type=submit], [type=button], [type=reset]), textarea, select");
  return Array.from(controls).filter((el) => {
    const box = el.getBoundingClientRect();
    return box.width > 4 && box.height > 4 && el.checkVisibility({ visibilityProperty: true })
      && !el.closest("[aria-hidden=true]");  // the composer's file input: the 📎 button stands in
  }).map((el) => {
    const s = getComputedStyle(el);
    const around = colour.behind(el.parentElement);
    const name = `${el.tagName.toLowerCase()} ${el.id || el.name || el.type}`;
    if (s.appearance === "auto" && (el.type === "checkbox" || el.type === "radio")) {
      const b = el.getBoundingClientRect();
      const box = { x: b.x, y: b.y, width: b.width, height: b.height };
      return { name, edge: "drawn", around: colour.name(around), aroundRgb: around, box };
    }
    const bordered = parseFloat(s.borderTopWidth) > 0 && s.borderTopStyle !== "none";
    const edge = bordered ? s.borderTopColor : s.backgroundColor;
    const ratio = colour.ratio(colour.over(colour.parse(edge), around), around);
    return { name, edge, around: colour.name(around), ratio };
  });
}
"""


def luminance(rgb: tuple[float, ...]) -> float:
    """WCAG's relative luminance of an sRGB colour (0-255 channels)."""
    linear = [
        c / 255 / 12.92 if c / 255 <= 0.03928 else ((c / 255 + 0.055) / 1.055) ** 2.4
        for c in rgb[:3]
    ]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def ratio(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    high, low = sorted([luminance(a), luminance(b)], reverse=True)
    return (high + 0.05) / (low + 0.05)


def drawn_ratio(page: Page, control: dict[str, Any]) -> float:
    """The strongest contrast a pixel of a browser-drawn checkbox has against what is behind
    it: its edge, the darkest (or, dark scheme, lightest) ring of an unchecked box."""
    image = Image.open(io.BytesIO(page.screenshot(clip=control["box"]))).convert("RGB")
    around = tuple(control["aroundRgb"][:3])
    return max(ratio(pixel, around) for pixel in image.get_flattened_data())


def measure(page: Page) -> list[dict[str, Any]]:
    install_colour(page)
    found = page.evaluate(MEASURE)
    for control in found:
        if control["edge"] == "drawn":
            control["ratio"] = drawn_ratio(page, control)
    return found


@pytest.fixture(scope="module")
def seeded(browser: Browser, live_site: LiveSite) -> LiveSite:
    seed_conversation(browser, live_site)
    return live_site


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize(("who", "path", "what"), PAGES, ids=[p[2] for p in PAGES])
def test_every_form_control_edge_has_3_to_1_contrast(
    browser: Browser, seeded: LiveSite, who: str | None, path: str, what: str, scheme: str
) -> None:
    with opened(browser, seeded, who, path, color_scheme=scheme) as page:
        if path == "/chat/general/":  # the thread panel's box and checkbox too
            line = page.get_by_role("log").locator("li[data-seq]").filter(has_text=MINE)
            line.locator(".thread-link").click()
            expect(page.get_by_label("Also send to the room")).to_be_visible()
        found = measure(page)
        assert found or path in ("/people/",), f"{what}: no form control measured"
        low = [f"{c['name']}: {c['edge']} on {c['around']} {c['ratio']:.2f}:1" for c in found]
        low = [text for text, c in zip(low, found, strict=True) if c["ratio"] < 3]
        assert not low, f"{what}, {scheme} scheme:\n" + "\n".join(low)
