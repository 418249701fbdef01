"""The emoji a message may be reacted with: a fixed palette, so nothing arbitrary (no
invisible characters, no look-alikes, no long ZWJ sequences) is ever stored or shown as a
reaction. The request parser, the service, the model and the page all take it from here."""

# Each emoji, as stored and sent, and what it is called (the palette's labels, for screen
# readers too).
PALETTE: dict[str, str] = {
    "👍": "thumbs up",
    "👎": "thumbs down",
    "❤️": "heart",
    "😂": "laughing",
    "🎉": "party",
    "😮": "surprised",
    "😢": "sad",
    "👀": "looking",
    "✅": "done",
    "🙏": "thanks",
}

# Other spellings of a palette emoji: a heart typed without its emoji-style variation
# selector (U+FE0F) is the same heart.
ALTERNATES: dict[str, str] = {"❤": "❤️"}


def canonical(text: str) -> str | None:
    """The palette's spelling of `text`, or None if it is not one of the reactions."""
    if text in PALETTE:
        return text
    return ALTERNATES.get(text)
