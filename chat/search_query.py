"""What the search box asks: its filters (`in:room`, `from:user`, `after:` and `before:` a
day) and the words left over. Pure text in, a `SearchQuery` out; no database."""

import re
from dataclasses import dataclass
from datetime import date

from .protocol.errors import ChatError, ErrorCode

MAX_QUERY_LENGTH = 300
FILTER_RE = re.compile(r"(?<!\S)(in|from|after|before):(\S*)", re.IGNORECASE)


@dataclass(frozen=True)
class SearchQuery:
    """`text`: the words to find (may be empty); `room`: a slug; `author`: a username;
    `after` / `before`: days (UTC) the messages were posted strictly after or before."""

    text: str = ""
    room: str | None = None
    author: str | None = None
    after: date | None = None
    before: date | None = None

    def is_empty(self) -> bool:
        """Nothing asked: no words and no filter."""
        return not self.text and not any((self.room, self.author, self.after, self.before))


def parse_search(raw: str) -> SearchQuery:
    """The search box's text as a query; bad_request with what to fix for a filter without
    a value, one given twice, a day that is not YYYY-MM-DD, or an empty range."""
    if len(raw) > MAX_QUERY_LENGTH:
        raise ChatError(ErrorCode.BAD_REQUEST, f"Search for at most {MAX_QUERY_LENGTH} characters.")
    found: dict[str, str] = {}
    for match in FILTER_RE.finditer(raw):
        name, value = match.group(1).lower(), match.group(2)
        if not value:
            raise ChatError(
                ErrorCode.BAD_REQUEST, f"{name}: needs a value, e.g. {_EXAMPLES[name]}."
            )
        if name in found:
            raise ChatError(ErrorCode.BAD_REQUEST, f"Use {name}: once.")
        found[name] = value
    after, before = _day(found, "after"), _day(found, "before")
    if after and before and after >= before:
        raise ChatError(ErrorCode.BAD_REQUEST, "after: must be a day before before:.")
    text = " ".join(FILTER_RE.sub(" ", raw).split())
    return SearchQuery(
        text=text,
        room=found.get("in", "").lstrip("#") or None,
        author=found.get("from", "").lstrip("@") or None,
        after=after,
        before=before,
    )


_EXAMPLES = {
    "in": "in:general",
    "from": "from:alice",
    "after": "after:2026-01-31",
    "before": "before:2026-01-31",
}


def _day(found: dict[str, str], name: str) -> date | None:
    if name not in found:
        return None
    value = found[name]
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ChatError(
        ErrorCode.BAD_REQUEST, f"{name}: takes a day as YYYY-MM-DD, e.g. {_EXAMPLES[name]}."
    )
