"""`{% avatar %}`: a user's picture, or their initials on a colour of their own."""

from typing import Any

from django import template

from .. import avatars

register = template.Library()


@register.inclusion_tag("chat/_avatar.html")
def avatar(username: str, display: str = "", url: str = "") -> dict[str, Any]:
    """An uploaded avatar's <img>, else an initials element (HTML, escaped: never an SVG with
    user text inside)."""
    return {
        "url": url,
        "initials": avatars.initials(display or username),
        "hue": avatars.initials_hue(username),
    }
