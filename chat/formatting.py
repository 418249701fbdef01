"""A message body as HTML: a CommonMark subset, rendered once when a message is written or
edited (services) and stored beside its source (`Message.body_html`).

markdown-it-py parses with raw HTML off (a user's `<b>` shows as the text `<b>`) and only
the rules listed in ALLOWED_RULES; the output then goes through nh3 (Ammonia), which keeps
only the tags, attributes, classes and URL schemes below. The sanitiser is the last word:
whatever the renderer or a plugin emits, nothing else reaches a page.
"""

import re
from collections.abc import Collection, Sequence
from html import escape

import emoji
import nh3
from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token

# What a body may use: emphasis, strong, ~~strikethrough~~, `code`, fenced code blocks,
# > quotes, lists, [links](https://…), <https://…> and bare links (linkify), hard line breaks
# (a chat's Enter). Not headings, rules, tables, indented code, reference definitions, raw
# HTML or images: a chat line that starts with "#", "---" or four spaces means what it says.
BLOCK_RULES = ["fence", "blockquote", "list", "paragraph"]
INLINE_RULES = [
    "text",
    "linkify",
    "newline",
    "escape",
    "backticks",
    "strikethrough",
    "emphasis",
    "link",
    "autolink",
    "entity",
]
INLINE2_RULES = ["balance_pairs", "strikethrough", "emphasis", "fragments_join"]

# An @name: not after a letter, digit, "@" or "." (so not in an email address). Who gets
# notified reads the whole body (services.mentioned_usernames); the rendering marks only
# the @names in text, so an @ in code or in a link's text stays as written.
MENTION_RE = re.compile(r"(?<![\w@.])@([\w.+-][\w.@+-]{0,149})")
EVERYONE_WORDS = frozenset({"room", "here"})

ALLOWED_TAGS = {
    "p",
    "br",
    "em",
    "strong",
    "s",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "a",
    "span",
    "button",
}
ALLOWED_ATTRIBUTES = {
    "*": set(),  # not even Ammonia's default lang and title on every tag
    "a": {"href", "title"},
    "ol": {"start"},
    "button": {"type", "data-username", "aria-haspopup", "aria-expanded"},
}
ALLOWED_CLASSES = {"button": {"mention", "person"}, "span": {"mention"}}
URL_SCHEMES = {"http", "https", "mailto"}
# A link is made only to an absolute URL of those schemes: not to a relative one either
# (markdown-it's own check refuses only javascript:, vbscript:, file: and data:).
LINK_RE = re.compile(r"(?:https?|mailto):", re.IGNORECASE)
LINK_REL = "noopener noreferrer nofollow"


def _parser() -> MarkdownIt:
    md = MarkdownIt(
        "commonmark", {"html": False, "linkify": True, "breaks": True, "typographer": False}
    )
    md.block.ruler.enableOnly(BLOCK_RULES)
    md.inline.ruler.enableOnly(INLINE_RULES)
    md.inline.ruler2.enableOnly(INLINE2_RULES)
    md.core.ruler.enable(["linkify"])
    md.linkify.set({"fuzzy_email": True})
    md.validateLink = _link_allowed
    md.core.ruler.push("chat_mentions_emoji", _mentions_and_emoji)
    md.add_render_rule("chat_mention", _render_mention)
    return md


def _link_allowed(url: str) -> bool:
    """Whether markdown-it may make a link to `url` (normalised): else its text stays text.
    Ammonia is asked too: it drops an href it cannot parse (`http://` with no host, a bad
    port or IPv6 address, a space in the host), which would leave a link to nowhere."""
    return LINK_RE.match(url) is not None and ' href="' in _LINK_PROBE.clean(
        f'<a href="{escape(url)}"></a>'
    )


def _mentions_and_emoji(state: StateCore) -> None:
    """Turn `:shortcode:` into its emoji and split each @name out of the text into a
    `chat_mention` token (never inside a link's text), after the text runs were joined."""
    people: Collection[str] = state.env.get("people", ())
    for block in state.tokens:
        if block.type != "inline" or not block.children:
            continue
        children: list[Token] = []
        in_link = 0
        for token in block.children:
            if token.type == "link_open":
                in_link += 1
            elif token.type == "link_close":
                in_link -= 1
            if token.type != "text":
                children.append(token)
                continue
            token.content = emoji.emojize(token.content, language="alias")
            children.extend([token] if in_link else _split_mentions(token.content, people))
        block.children = children


def _split_mentions(text: str, people: Collection[str]) -> list[Token]:
    """Text tokens and mention tokens for `text`: a mention of someone in `people` (or of
    @room / @here) becomes a token of its own; any other @word stays text."""
    tokens: list[Token] = []
    at = 0
    for match in MENTION_RE.finditer(text):
        name = match.group(1).rstrip(".")
        if name not in people and name.lower() not in EVERYONE_WORDS:
            continue
        start = match.start()
        if start > at:
            tokens.append(Token("text", "", 0, content=text[at:start]))
        tokens.append(Token("chat_mention", "", 0, content=name))
        at = start + 1 + len(name)
    if at < len(text):
        tokens.append(Token("text", "", 0, content=text[at:]))
    return tokens


def _render_mention(
    self: object, tokens: Sequence[Token], idx: int, options: object, env: object
) -> str:
    """A mention of a person is a name button (the profile card opens from it, as from an
    author's name); @room and @here are marked only."""
    name = tokens[idx].content
    if name.lower() in EVERYONE_WORDS:
        return f'<span class="mention">@{escape(name)}</span>'
    return (
        f'<button type="button" class="mention person" data-username="{escape(name)}"'
        f' aria-haspopup="dialog" aria-expanded="false">@{escape(name)}</button>'
    )


_LINK_PROBE = nh3.Cleaner(tags={"a"}, attributes={"a": {"href"}}, url_schemes=URL_SCHEMES)
_MD = _parser()
_CLEANER = nh3.Cleaner(
    tags=ALLOWED_TAGS,
    attributes=ALLOWED_ATTRIBUTES,
    allowed_classes=ALLOWED_CLASSES,
    url_schemes=URL_SCHEMES,
    link_rel=LINK_REL,
    set_tag_attribute_values={"a": {"target": "_blank"}},
    strip_comments=True,
)


def mentioned_names(body: str) -> set[str]:
    """Every @word of a body (as services.mentioned_usernames): who to look up before
    rendering it."""
    return {name.rstrip(".") for name in MENTION_RE.findall(body)}


# A body that can only be one paragraph of its own text: it starts with a letter, or with
# digits that no "." or ")" follows (not a list), ends with no space, and holds only letters,
# digits, spaces (no tab or line break) and , ; ! ? ' and a "." that ends the body or comes
# before a space (no link, address or shortcode: linkify needs a "." inside a word, ":" or "@").
# Nothing in it is markup, nothing needs escaping, and markdown-it and Ammonia would give
# back "<p>body</p>": tests/unit/test_formatting.py checks that they do, for any such body.
# Most chat lines are such text, and the check costs a thirtieth of the parser (3 µs
# against 90 to 150 µs for a line of 50 characters).
PLAIN_RE = re.compile(r"(?![0-9]+[.)])[^\W_](?:[^\W_]|[ ,;!?']|\.(?= ))*(?<! )\.?")


def render(body: str, *, people: Collection[str] = ()) -> str:
    """The sanitised HTML of a message body; `people` are the usernames among its
    @mentions that belong to someone (the others stay plain text)."""
    if PLAIN_RE.fullmatch(body):
        return f"<p>{body}</p>"
    return render_markdown(body, people=people)


def render_markdown(body: str, *, people: Collection[str] = ()) -> str:
    """`render` without its shortcut for plain text: markdown-it, then Ammonia."""
    return _CLEANER.clean(_MD.render(body, {"people": people}).strip())
