"""`{% reaction_button %}`: one button of a message's reaction bar, as render.js draws it."""

from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()


def who_reacted(users: list[str], count: int) -> str:
    """ "alice", "alice and bob", "alice, bob and 3 others" (the summary names at most
    CHAT_REACTION_NAMES; `count` is everyone). render.js whoReacted says the same."""
    more = count - len(users)
    names = [*users, f"{more} other{'s' if more > 1 else ''}"] if more > 0 else list(users)
    if len(names) < 2:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"


@register.simple_tag
def reaction_button(reaction: dict[str, Any], me: str) -> SafeString:
    """A button that toggles the viewer's `reaction` (an entry of a MSG's `reactions`):
    pressed if theirs, its title who reacted (every text escaped)."""
    emoji, count = reaction["emoji"], reaction["count"]
    who = who_reacted(reaction["users"], count)
    return format_html(
        '<button type="button" class="reaction" data-emoji="{}" aria-pressed="{}" title="{}"'
        ' aria-label="{}">{} <span class="count">{}</span></button>',
        emoji,
        "true" if me and me in reaction["users"] else "false",
        f"{who} reacted with {emoji}",
        f"{emoji} {count}: {who}",
        emoji,
        count,
    )
