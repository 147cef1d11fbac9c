"""A corpus of hostile and awkward image files, built in memory, each with the answer the API must give.

``HOSTILE``: name -> (bytes, HTTP status, error code). ``VALID_MODES``: name -> bytes of images in unusual but valid
modes (CMYK, 16-bit, greyscale, palette, alpha) that must be accepted and stylized.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_claiming(width: int, height: int) -> bytes:
    """A PNG signature and IHDR claiming width x height, a few bytes of data: a decompression bomb's header."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + \
        _chunk(b"IEND", b"")


def real_png_bomb(side_px: int = 12_000) -> bytes:
    """A genuinely decodable PNG of side_px^2 black pixels that compresses to a few hundred KB (zlib ~1000:1)."""
    row = b"\x00" + b"\x00" * side_px  # filter byte + one grey byte per pixel
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(side_px)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side_px, side_px, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def gif_claiming(width: int, height: int) -> bytes:
    """A 30-byte GIF whose logical screen and single frame claim width x height."""
    screen = b"GIF89a" + struct.pack("<HH", width, height) + b"\x80\x00\x00" + b"\x00\x00\x00\xff\xff\xff"
    frame = b"\x2c" + struct.pack("<HHHH", 0, 0, width, height) + b"\x00" + b"\x02\x02\x44\x01\x00" + b"\x3b"
    return screen + frame


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _rgb(size: tuple[int, int] = (48, 40)) -> Image.Image:
    rng = np.random.default_rng(7)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


def _corrupt_jpeg() -> bytes:
    data = bytearray(encoded(_rgb(), "JPEG"))
    start = data.index(b"\xff\xc0")  # SOF0: make the frame header nonsense (0 components)
    data[start + 9] = 0
    return bytes(data)


def _corrupt_png() -> bytes:
    data = bytearray(encoded(_rgb(), "PNG"))
    idat = data.index(b"IDAT")
    for i in range(idat + 4, idat + 40):  # scramble the compressed stream
        data[i] ^= 0x5A
    return bytes(data)


def _multi_frame(fmt: str) -> bytes:
    frames = [Image.new("RGB", (32, 32), color) for color in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    return encoded(frames[0], fmt, save_all=True, append_images=frames[1:])


JPEG = encoded(_rgb(), "JPEG")
PNG = encoded(_rgb(), "PNG")

# name -> (bytes, expected HTTP status, expected error code); None code: accepted (202).
HOSTILE: dict[str, tuple[bytes, int, str | None]] = {
    "bomb_header_60000x60000.png": (png_claiming(60_000, 60_000), 413, "image_too_large"),
    "bomb_real_12000x12000.png": (real_png_bomb(), 413, "image_too_large"),
    "huge_dimensions_65535x65535.gif": (gif_claiming(65_535, 65_535), 413, "image_too_large"),
    "truncated.jpg": (JPEG[: len(JPEG) // 2], 415, "corrupt_image"),
    "truncated.png": (PNG[: len(PNG) // 2], 415, "corrupt_image"),
    "corrupt_header.jpg": (_corrupt_jpeg(), 415, "corrupt_image"),
    "corrupt_data.png": (_corrupt_png(), 415, "corrupt_image"),
    "polyglot_gif_script.gif": (b"GIF89a" + b"<script>alert(1)</script>" * 10, 415, "corrupt_image"),
    "polyglot_jpeg_zip.jpg": (JPEG + encoded(_rgb((8, 8)), "PNG") + b"PK\x05\x06" + b"\x00" * 18, 202, None),
    "zero_bytes.png": (b"", 415, "unsupported_media_type"),
    "text.jpg": (b"hello, this is not an image\n" * 4, 415, "unsupported_media_type"),
    "vector.svg": (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/>'
                   b"</svg>", 415, "unsupported_media_type"),
    "multi_frame.gif": (_multi_frame("GIF"), 202, None),  # accepted: the first frame is used
    "multi_frame.tiff": (_multi_frame("TIFF"), 415, "unsupported_media_type"),  # TIFF is not an allowed format
    "pdf_document.pdf": (b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", 415, "unsupported_media_type"),
}


def _sixteen_bit() -> Image.Image:
    ramp = (np.arange(48 * 40, dtype=np.uint32).reshape(40, 48) * 30).astype(np.uint16)
    return Image.fromarray(ramp)  # mode I;16


def _alpha() -> Image.Image:
    image = _rgb().convert("RGBA")
    image.putalpha(Image.linear_gradient("L").resize(image.size))
    return image


VALID_MODES: dict[str, bytes] = {
    "cmyk.jpg": encoded(_rgb().convert("CMYK"), "JPEG"),
    "sixteen_bit.png": encoded(_sixteen_bit(), "PNG"),
    "greyscale.png": encoded(_rgb().convert("L"), "PNG"),
    "palette.gif": encoded(_rgb().convert("P", palette=Image.Palette.ADAPTIVE), "GIF"),
    "alpha.png": encoded(_alpha(), "PNG"),
}
