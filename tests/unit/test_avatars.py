"""Avatars: an upload re-encoded as a clean 128 px PNG, or refused with a reason."""

import io

import pytest
from django.core.exceptions import ValidationError
from PIL import Image

from chat import avatars


def image_bytes(fmt: str, size: tuple[int, int] = (300, 200), **save: object) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, format=fmt, **save)
    return out.getvalue()


def jpeg_with_gps() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"  # Make
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0), 3: "W", 4: (0.0, 7.0, 0.0)}  # GPSInfo
    return image_bytes("JPEG", exif=exif.tobytes())


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP"])
def test_an_image_becomes_a_128_px_square_png_under_a_random_name(fmt):
    made = avatars.avatar_from_upload(image_bytes(fmt))
    again = avatars.avatar_from_upload(image_bytes(fmt))

    image = Image.open(io.BytesIO(made.read()))
    assert image.format == "PNG"
    assert image.size == (128, 128)
    assert made.name.endswith(".png")
    assert len(made.name) == 36
    assert made.name != again.name


def test_exif_and_gps_are_stripped():
    upload = jpeg_with_gps()
    assert Image.open(io.BytesIO(upload)).getexif().get(0x8825)  # the test image has GPS

    stored = Image.open(io.BytesIO(avatars.avatar_from_upload(upload).read()))

    assert not stored.getexif()
    assert not stored.info.get("exif")
    assert b"SpyCam" not in avatars.avatar_from_upload(upload).read()


@pytest.mark.parametrize(
    "data",
    [
        b"just some text, not an image",
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        b"%PDF-1.4\n",
        b"",
        image_bytes("PNG")[:60],  # a truncated PNG
        image_bytes("BMP"),  # an image, but not a format we take
    ],
    ids=["text", "svg", "pdf", "empty", "truncated", "bmp"],
)
def test_what_is_not_an_image_we_take_is_refused(data):
    with pytest.raises(ValidationError) as refused:
        avatars.avatar_from_upload(data)
    assert refused.value.code == "not_an_image"


def test_more_than_2_mib_is_refused_before_decoding():
    with pytest.raises(ValidationError) as refused:
        avatars.avatar_from_upload(b"\x89PNG" + b"\0" * avatars.AVATAR_MAX_BYTES)
    assert refused.value.code == "too_large"


def test_a_decompression_bomb_is_refused_before_decoding():
    # 10,000 x 10,000 of one colour compresses to a few hundred KiB and would decode to 300 MB.
    bomb = image_bytes("PNG", size=(10_000, 10_000), optimize=True)
    assert len(bomb) < avatars.AVATAR_MAX_BYTES

    with pytest.raises(ValidationError) as refused:
        avatars.avatar_from_upload(bomb)
    assert refused.value.code == "too_many_pixels"


# render.js (initialsHue) must give the same numbers: tests/js/render.test.js checks these.
HUES = {"alice": 0, "bob": 1, "émile": 2, "たなか": 0, "user1": 10, "😀x": 4}


def test_initials_and_their_colour():
    assert {name: avatars.initials_hue(name) for name in HUES} == HUES
    assert avatars.initials("alice") == "A"
    assert avatars.initials("  émile") == "É"
    assert avatars.initials("") == "?"
    assert avatars.initials_hue("alice") == avatars.initials_hue("alice")
    assert {avatars.initials_hue(f"user{i}") for i in range(200)} == set(
        range(avatars.INITIALS_HUES)
    )
