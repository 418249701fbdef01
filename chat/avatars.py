"""Avatars: an uploaded image made safe to serve, and the initials shown when there is none.

An upload is opened by Pillow, which decides its type from its content (never its name or
declared type); only raster formats are taken (no SVG: a browser would run its scripts), and
only up to AVATAR_MAX_PIXELS, so a small file that decompresses to gigabytes is refused before
it is decoded. The result is re-encoded: a 128 px square PNG holding pixels only (no EXIF, GPS
or other metadata), stored under a random name.
"""

import io
import secrets
import warnings

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from PIL import Image, ImageOps

AVATAR_SIZE = 128
AVATAR_MAX_BYTES = 2 * 1024 * 1024
AVATAR_MAX_PIXELS = 4096 * 4096
AVATAR_FORMATS = frozenset({"JPEG", "PNG", "GIF", "WEBP"})
# The number of colours chat.css defines for initials (.avatar.hue-0 … hue-11).
INITIALS_HUES = 12


def avatar_from_upload(data: bytes) -> ContentFile:
    """A 128 px square PNG made from uploaded bytes, named at random; ValidationError with a
    message for the form when the bytes are too many, not an image we take, or too large."""
    if len(data) > AVATAR_MAX_BYTES:
        raise ValidationError(
            "The image is larger than %(limit)s MiB.",
            code="too_large",
            params={"limit": AVATAR_MAX_BYTES // (1024 * 1024)},
        )
    not_an_image = ValidationError(
        "That is not an image we can use: upload a PNG, JPEG, GIF or WebP.", code="not_an_image"
    )
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its limit and twice it; refuse those too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=sorted(AVATAR_FORMATS))
            width, height = image.size
            if width * height > AVATAR_MAX_PIXELS:
                raise ValidationError(
                    "The image is too large: at most %(side)s x %(side)s pixels.",
                    code="too_many_pixels",
                    params={"side": int(AVATAR_MAX_PIXELS**0.5)},
                )
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ValidationError(
            "The image is too large once decoded.", code="too_many_pixels"
        ) from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:  # what Pillow raises on junk
        raise not_an_image from error
    image = ImageOps.exif_transpose(image)  # keep the photo upright once its EXIF is gone
    image = image.convert("RGBA")
    square = ImageOps.fit(image, (AVATAR_SIZE, AVATAR_SIZE), method=Image.Resampling.LANCZOS)
    # A new image of the pixels only: nothing of the upload's info or metadata comes along.
    clean = Image.new("RGBA", square.size)
    clean.paste(square)
    out = io.BytesIO()
    clean.save(out, format="PNG", optimize=True)
    return ContentFile(out.getvalue(), name=f"{secrets.token_hex(16)}.png")


def initials(name: str) -> str:
    """The letter an avatar without an image shows: the name's first character, uppercased."""
    return name.strip()[:1].upper() or "?"


def initials_hue(username: str) -> int:
    """A stable colour for a user's initials, from their username (not their display name, so
    it does not change with it). chat/static/chat/render.js computes the same (initialsHue)."""
    h = 0
    for ch in username:
        h = (h * 31 + ord(ch)) % 2**32
    return h % INITIALS_HUES
