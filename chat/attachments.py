"""Files attached to messages: what an upload is (decided from its bytes, never its name or
declared type), the name it is shown under, and an image's thumbnail.

Images are what Pillow opens as PNG, JPEG, GIF or WebP within ATTACHMENT_MAX_PIXELS (the
decompression-bomb guard of chat/avatars.py); each gets a thumbnail re-encoded from its
pixels only (no EXIF, GPS or other metadata). Anything else is matched against a short table
of magic numbers (PDF, ZIP, …) or is plain text if it decodes as UTF-8 without controls, and
otherwise application/octet-stream. SVG is never an image here (a browser would run its
scripts): it is text or bytes, and like every file that is not an image it is only ever
downloaded (`Content-Disposition: attachment`, `X-Content-Type-Options: nosniff`).
"""

import io
import secrets
import unicodedata
import warnings
from dataclasses import dataclass

from django.core.files.base import ContentFile
from PIL import Image, ImageOps

ATTACHMENT_MAX_PIXELS = 8192 * 8192
THUMBNAIL_SIZE = 360  # the longest side of a preview, in pixels
IMAGE_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}
NAME_MAX_LENGTH = 120

# Files that are not images, known by how they start; what is not here and not UTF-8 text
# is application/octet-stream. Nothing that a browser would render as a page is listed.
MAGIC_NUMBERS: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
    (b"\x1f\x8b", "application/gzip"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"OggS", "audio/ogg"),
    (b"ID3", "audio/mpeg"),
    (b"fLaC", "audio/flac"),
)
TEXT_SNIFF_BYTES = 64 * 1024


@dataclass(frozen=True)
class Sniffed:
    """What an upload is: its content type, and for an image its size and thumbnail."""

    content_type: str
    width: int | None = None
    height: int | None = None
    thumbnail: ContentFile | None = None


def sniff(data: bytes) -> Sniffed:
    """The type of `data` from its bytes, with a thumbnail if it is an image we preview."""
    image = _image(data)
    if image is not None:
        return image
    for magic, content_type in MAGIC_NUMBERS:
        if data.startswith(magic):
            return Sniffed(content_type)
    if _is_text(data[:TEXT_SNIFF_BYTES]):
        return Sniffed("text/plain; charset=utf-8")
    return Sniffed("application/octet-stream")


def _image(data: bytes) -> Sniffed | None:
    """The image `data` holds, within the pixel limit, with its thumbnail; else None."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=sorted(IMAGE_TYPES))
            width, height = image.size
            if width * height > ATTACHMENT_MAX_PIXELS:
                return None
            image.load()
            content_type = IMAGE_TYPES[image.format]
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return None
    except (OSError, SyntaxError, ValueError, EOFError, KeyError):  # what Pillow raises on junk
        return None
    image = ImageOps.exif_transpose(image)  # upright once its EXIF is gone
    width, height = image.size
    image = image.convert("RGBA")
    image.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE), Image.Resampling.LANCZOS)
    clean = Image.new("RGBA", image.size)  # the pixels only: no info or metadata comes along
    clean.paste(image)
    out = io.BytesIO()
    clean.save(out, format="PNG", optimize=True)
    thumbnail = ContentFile(out.getvalue(), name=f"{secrets.token_hex(16)}.png")
    return Sniffed(content_type, width=width, height=height, thumbnail=thumbnail)


def _is_text(head: bytes) -> bool:
    """UTF-8 (a character cut at the end of the sample is fine) with no control characters
    but tab, newline, carriage return and form feed."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(head) - 3:
            return False
        text = head[: error.start].decode("utf-8")
    return not any((ord(ch) < 32 and ch not in "\t\n\r\f") or ch == "\x7f" for ch in text)


def display_name(name: str) -> str:
    """An uploaded file's name as it is shown and offered for download: its last path part,
    without controls or bidi overrides, at most NAME_MAX_LENGTH characters (the extension
    kept), never empty. Only ever shown as text.

    Browsers send a form's file name with '"', LF and CR written %22, %0A and %0D (the HTML
    standard's multipart/form-data encoding); those three are read back, so a name shows as
    it was picked."""
    for written, meant in (("%22", '"'), ("%0A", "\n"), ("%0D", "\r")):
        name = name.replace(written, meant)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(
        " " if ch.isspace() else ch
        for ch in name
        if ch.isspace() or unicodedata.category(ch)[0] != "C"
    )
    name = " ".join(name.split()).strip(". ")
    if len(name) > NAME_MAX_LENGTH:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 10:
            name = stem[: NAME_MAX_LENGTH - len(ext) - 1] + "." + ext
        else:
            name = name[:NAME_MAX_LENGTH]
    return name or "file"


def stored_name(content_type: str) -> str:
    """A random storage name: nothing of the uploader's name reaches the storage."""
    ext = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp"}
    return f"{secrets.token_hex(16)}.{ext.get(content_type, 'bin')}"
