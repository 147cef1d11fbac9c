"""decode_image: what is accepted, what is refused with which code, and how every mode becomes 8-bit RGB."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from shared.errors import ImageError, TooLarge
from shared.images import ALLOWED_FORMATS, decode_image, encode_png, load_rgb


def _encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ALLOWED_FORMATS)
def test_allowed_formats_decode_to_rgb(fmt):
    data = _encode(Image.new("RGB", (40, 30), (200, 100, 50)), fmt)
    decoded = decode_image(data, max_pixels=10_000, field="content")
    assert decoded.format == fmt and (decoded.width, decoded.height) == (40, 30)
    assert decoded.rgb.shape == (30, 40, 3) and decoded.rgb.dtype == np.uint8
    assert np.abs(decoded.rgb.astype(int) - [200, 100, 50]).max() <= 12  # lossy formats drift a little
    assert len(decoded.sha256) == 64


@pytest.mark.parametrize(("mode", "color", "expected"), [
    ("L", 128, (128, 128, 128)),
    ("CMYK", (0, 255, 255, 0), (255, 0, 0)),
    ("P", None, None),
    ("RGBA", (0, 0, 0, 0), (255, 255, 255)),  # fully transparent: the white background shows
    ("LA", (0, 255), (0, 0, 0)),  # opaque black stays black
    ("I;16", 65535, (255, 255, 255)),  # 16-bit scaled, not clipped
])
def test_modes_become_rgb(mode, color, expected):
    image = Image.new(mode, (8, 8), color)
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    rgb = decode_image(_encode(image, fmt), max_pixels=100).rgb
    assert rgb.shape == (8, 8, 3) and rgb.dtype == np.uint8
    if expected is not None:
        assert np.abs(rgb[0, 0].astype(int) - expected).max() <= 3


def test_sixteen_bit_mid_grey_is_scaled():
    image = Image.new("I;16", (4, 4), 32768)
    assert abs(int(decode_image(_encode(image, "PNG"), max_pixels=100).rgb[0, 0, 0]) - 128) <= 1


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (10, 10), color) for color in ((255, 0, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    rgb = decode_image(buffer.getvalue(), max_pixels=1000).rgb
    assert rgb[0, 0, 0] > 200 and rgb[0, 0, 2] < 50


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (40, 20), (0, 128, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    decoded = decode_image(_encode(image, "JPEG", exif=exif), max_pixels=10_000)
    assert (decoded.width, decoded.height) == (20, 40)


def _bomb(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(
        b"IEND", b"")


def _truncated() -> bytes:
    data = _encode(Image.effect_noise((64, 64), 40).convert("RGB"), "JPEG")
    return data[: len(data) - 200]


REFUSED = [
    ("empty", b"", ImageError, "unsupported_media_type"),
    ("text", b"just some text", ImageError, "unsupported_media_type"),
    ("svg", b'<svg xmlns="http://www.w3.org/2000/svg"/>', ImageError, "unsupported_media_type"),
    ("tiff", _encode(Image.new("RGB", (4, 4)), "TIFF"), ImageError, "unsupported_media_type"),
    ("truncated jpeg", _truncated(), ImageError, "corrupt_image"),
    ("polyglot", b"GIF89a" + b"<script>alert(1)</script>" * 10, ImageError, "corrupt_image"),
    ("huge header", _bomb(60000, 60000), TooLarge, "image_too_large"),
    ("over our limit", _bomb(200, 200), TooLarge, "image_too_large"),
]


@pytest.mark.parametrize(("label", "data", "error", "code"), REFUSED, ids=[row[0] for row in REFUSED])
def test_refused_inputs(label, data, error, code):
    with pytest.raises(error) as info:
        decode_image(data, max_pixels=10_000, field="style[0]")
    assert info.value.code == code and info.value.field == "style[0]" and "style[0]" in info.value.message


def test_pixel_limit_is_checked_before_decoding():
    # 200 x 200 claims 40000 pixels but holds almost no data: refused from the header, not a decode error.
    with pytest.raises(TooLarge) as info:
        decode_image(_bomb(200, 200), max_pixels=39_999)
    assert "40000" in info.value.message and "39999" in info.value.message


def test_encode_png_roundtrip():
    array = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    assert np.array_equal(load_rgb(encode_png(array)), array)
    with pytest.raises(ValueError):
        encode_png(array.astype(np.float32))
