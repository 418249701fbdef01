"""What Chromium hands a screen reader for part of a page: the accessibility tree, read
through the DevTools protocol (Accessibility.getFullAXTree). No screen reader runs here;
this is the tree NVDA, VoiceOver or Orca would read from (docs/accessibility.md)."""

from dataclasses import dataclass

from playwright.sync_api import CDPSession, Locator

# Nodes a reader speaks by their name, not by what is inside them.
NAMED = {"button", "link", "checkbox", "textbox", "combobox", "img", "image"}


@dataclass
class Spoken:
    """An element as a screen reader gets it: its words in reading order and the live
    region it is in ("polite", "assertive"; "" when none)."""

    words: list[str]
    live: str

    @property
    def text(self) -> str:
        return " ".join(self.words)


def spoken(locator: Locator) -> Spoken:
    """The words of `locator`'s element, in the order the accessibility tree gives them, and
    its live region's politeness."""
    page = locator.page
    session = page.context.new_cdp_session(page)
    try:
        described = session.send("DOM.describeNode", {"objectId": _object_id(session, locator)})
        backend = described["node"]["backendNodeId"]
        nodes = session.send("Accessibility.getFullAXTree")["nodes"]
    finally:
        session.detach()
    by_id = {node["nodeId"]: node for node in nodes}
    start = next(node for node in nodes if node.get("backendDOMNodeId") == backend)
    words: list[str] = []

    def walk(node: dict) -> None:
        role = node.get("role", {}).get("value", "")
        name = str(node.get("name", {}).get("value", "")).strip()
        if not node.get("ignored") and (role in NAMED or role in ("StaticText", "text")):
            if name:
                words.append(name)
            if role != "StaticText":
                return
        for child in node.get("childIds", []):
            if child in by_id:
                walk(by_id[child])

    walk(start)
    live = ""
    node: dict | None = start
    while node is not None and not live:  # the nearest region around the element, or its own
        for prop in node.get("properties", []):
            if prop["name"] == "live":
                live = str(prop["value"]["value"])
        node = by_id.get(node.get("parentId", ""))
    return Spoken(words=words, live=live)


def _object_id(session: CDPSession, locator: Locator) -> str:
    """A DevTools object id for `locator`'s element (found again by a unique mark)."""
    locator.evaluate("(el) => { el.dataset.axProbe = '1'; }")
    try:
        result = session.send(
            "Runtime.evaluate", {"expression": "document.querySelector('[data-ax-probe]')"}
        )
    finally:
        locator.evaluate("(el) => { delete el.dataset.axProbe; }")
    return result["result"]["objectId"]
