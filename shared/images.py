"""Decoding and validation of uploaded images (Pillow), shared by the API, the worker and the CLI.

Everything that reaches the engine goes through ``decode_image``: it refuses what is not a raster image we accept,
checks the pixel count from the header *before* decoding (so a 60000 x 60000 PNG of a few bytes cannot exhaust
memory), decodes fully (so truncated files are caught here, not in the worker) and normalises every mode to
8-bit RGB. No TensorFlow here: the API imports this module.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from shared.errors import ImageError, TooLarge

# Raster formats we accept. TIFF is refused on purpose: its many codecs and multi-page layouts add attack surface
# for no benefit to style transfer. SVG and other vector formats are not images Pillow can read at all.
ALLOWED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "GIF", "BMP")
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif",
                 "BMP": "image/bmp"}

# Background for transparent pixels: their RGB values are often garbage, so composite over white.
_BACKGROUND_RGB = (255, 255, 255)


@dataclass(frozen=True)
class DecodedImage:
    """An accepted upload: RGB pixels plus what we need to store it content-addressed."""

    rgb: np.ndarray  # uint8, (height, width, 3)
    format: str  # Pillow format name: "JPEG", "PNG", ...
    sha256: str  # of the uploaded bytes (not of the pixels): same upload, same key
    width: int
    height: int

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) in pixels, the order the engine and ``shared.geometry`` use."""
        return self.height, self.width

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES.get(self.format, "application/octet-stream")


def decode_image(data: bytes, *, max_pixels: int, field: str = "image") -> DecodedImage:
    """Decode ``data`` into RGB or raise.

    Raises ``ImageError`` (415) with code ``unsupported_media_type`` for empty input, text, SVG, and formats outside
    ``ALLOWED_FORMATS``; code ``corrupt_image`` for a recognised but broken file (truncated JPEG, polyglot);
    ``TooLarge`` (413) with code ``image_too_large`` when width x height exceeds ``max_pixels``. Multi-frame images
    (animated GIF/WebP) contribute their first frame only. The EXIF orientation is applied, so a portrait photo
    stays upright. ``field`` names the upload in error messages.
    """
    if not data:
        raise ImageError("unsupported_media_type", f"{field} is empty (0 bytes); expected a {_allowed()} image",
                         field=field)
    image = _open(data, max_pixels=max_pixels, field=field)
    try:
        rgb = _to_rgb(image, field=field)
    finally:
        image.close()
    return DecodedImage(rgb=rgb, format=image.format or "", sha256=hashlib.sha256(data).hexdigest(),
                        width=rgb.shape[1], height=rgb.shape[0])


def load_rgb(data: bytes, *, max_pixels: int = 400_000_000, field: str = "image") -> np.ndarray:
    """Convenience for the worker and the CLI: the RGB array of ``data`` with the same checks as uploads."""
    return decode_image(data, max_pixels=max_pixels, field=field).rgb


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of a uint8 (H, W, 3) array (or (H, W) greyscale)."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"encode_png needs uint8 pixels, got {array.dtype}")
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _allowed() -> str:
    return "/".join(ALLOWED_FORMATS)


def _open(data: bytes, *, max_pixels: int, field: str) -> Image.Image:
    """Open lazily (header only) and check format and pixel count before any pixel is decoded."""
    try:
        with warnings.catch_warnings():
            # Pillow warns above its own limit and raises above twice it; we apply our own, lower limit below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise TooLarge("image_too_large", f"{field} declares more pixels than Pillow's safety limit; "
                       f"allowed: at most {max_pixels} pixels", field=field) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        if _looks_like_allowed_format(data):
            raise ImageError("corrupt_image", f"{field} starts like an image but its header is broken or truncated "
                             f"({type(exc).__name__})", field=field) from None
        raise ImageError("unsupported_media_type",
                         f"{field} is not a recognised image ({type(exc).__name__}); expected a {_allowed()} image",
                         field=field) from None
    if image.format not in ALLOWED_FORMATS:
        image.close()
        raise ImageError("unsupported_media_type",
                         f"{field} is a {image.format} image; allowed formats: {', '.join(ALLOWED_FORMATS)}",
                         field=field)
    width, height = image.size
    if width <= 0 or height <= 0:
        image.close()
        raise ImageError("corrupt_image", f"{field} declares a size of {width}x{height}", field=field)
    if width * height > max_pixels:
        image.close()
        raise TooLarge("image_too_large",
                       f"{field} is {width}x{height} = {width * height} pixels; allowed: at most {max_pixels} pixels",
                       field=field)
    return image


_MAGIC_PREFIXES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")


def _looks_like_allowed_format(data: bytes) -> bool:
    """True when the signature is one of ours, so a failure to open means a broken file, not a foreign one."""
    is_webp = data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    return is_webp or data.startswith(_MAGIC_PREFIXES)


def _to_rgb(image: Image.Image, *, field: str) -> np.ndarray:
    try:
        image.seek(0)  # multi-frame: first frame only
        image.load()  # full decode: a truncated file fails here, not later in the worker
        image = ImageOps.exif_transpose(image)
        return _normalise(image)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        raise ImageError("corrupt_image", f"{field} could not be decoded as {image.format} ({exc})",
                         field=field) from None


def _normalise(image: Image.Image) -> np.ndarray:
    """Any Pillow mode -> uint8 RGB: greyscale, palette, CMYK, 16-bit and alpha included."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit and 32-bit greyscale: scale to 8 bits ourselves; Pillow's convert("L") clips instead of scaling.
        wide = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or wide.max(initial=0) > 255 else 255.0
        grey = np.clip(np.rint(wide * (255.0 / peak)), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _BACKGROUND_RGB + (255,))
        image = Image.alpha_composite(background, rgba)
    rgb = image.convert("RGB")
    return np.array(rgb, dtype=np.uint8)
