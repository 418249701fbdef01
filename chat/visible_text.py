"""What text shows on screen: blank text that is not empty, and usernames that look like
other usernames. Used where text becomes a message body or a name someone else reads."""

import unicodedata

# Characters Unicode calls letters or symbols that nonetheless draw nothing: the braille
# blank, the Hangul fillers, the Mongolian vowel separator, the Khmer inherent vowels.
BLANK_CHARACTERS = frozenset("\u2800\u3164\u115f\u1160\uffa0\u180e\u17b4\u17b5")
# Categories that draw nothing on their own: separators, controls, format characters (zero-
# width space, joiners, bidi marks, BOM) and combining marks with nothing to combine with.
INVISIBLE_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf", "Mn", "Me"})


def shows_nothing(text: str) -> bool:
    """Whether `text` would look empty: no character in it draws anything by itself."""
    return all(
        ch in BLANK_CHARACTERS or unicodedata.category(ch) in INVISIBLE_CATEGORIES for ch in text
    )


# Characters a name may not hold: controls, line breaks, and the bidi controls that would
# make a name read backwards or reorder the text after it.
NAME_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def display_name_problem(name: str) -> str | None:
    """Why `name` cannot be a display name (one line, drawn as written), or None."""
    if any(unicodedata.category(ch) in NAME_FORBIDDEN_CATEGORIES for ch in name):
        return "A display name cannot hold control characters or line breaks."
    if any(ch in BIDI_CONTROLS for ch in name):
        return "A display name cannot hold text-direction controls."
    if name and shows_nothing(name):
        return "A display name must show something."
    return None


# Letters of other scripts that look like Latin ones. Not the whole Unicode confusables
# table (UTS #39): the look-alikes that matter in a short name.
LATIN_LOOKALIKES = frozenset(
    "аеорсухіјѕԁһӏԛԝкмтвнАВЕКМНОРСТУХІЈЅ"  # Cyrillic
    "αβεικνορτυχΑΒΕΖΗΙΚΜΝΟΡΤΥΧ"  # Greek
)


# Written together in one name (Japanese mixes kana and kanji; Korean may add hanja).
EAST_ASIAN = frozenset({"CJK", "HIRAGANA", "KATAKANA", "KATAKANA-HIRAGANA", "HANGUL"})


def _script(ch: str) -> str | None:
    """The script of a letter, from its Unicode name ("CYRILLIC SMALL LETTER A"); None for
    anything that is not a letter (digits and punctuation go with every script)."""
    if not ch.isalpha():
        return None
    script = unicodedata.name(ch, "UNKNOWN").split(" ")[0]
    return "CJK" if script in EAST_ASIAN else script


def username_problem(username: str) -> str | None:
    """Why `username` could pass for another name, or None. Refused: a name that shows
    nothing, letters of two scripts in one name ("alice" with a Cyrillic "a"), and a name
    written only in look-alikes of Latin letters (Cyrillic "a", "er", "ie" read as "ape")."""
    if shows_nothing(username) or any(ch in BLANK_CHARACTERS for ch in username):
        return "A username needs letters or digits you can see."
    scripts = {s for s in map(_script, username) if s is not None}
    if len(scripts) > 1:
        return "A username cannot mix letters of different alphabets."
    if scripts and scripts != {"LATIN"}:
        letters = [ch for ch in username if ch.isalpha()]
        if all(ch in LATIN_LOOKALIKES for ch in letters):
            return "This username would look like one in Latin letters; choose another."
    return None
