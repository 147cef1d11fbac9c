"""Array plumbing: input checks, resizing by the long side, conversion back to uint8, total variation."""

from __future__ import annotations

import numpy as np
from keras import ops

from shared.errors import ImageError


def check_image(image: np.ndarray, what: str) -> np.ndarray:
    """An RGB uint8 ``(H, W, 3)`` array, or ``ImageError`` naming what is wrong."""
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[-1] != 3 or min(array.shape[:2]) < 1:
        raise ImageError(
            "bad_image",
            f"{what} must be an RGB uint8 array of shape (H, W, 3); got {array.dtype} {array.shape}",
            field=what,
        )
    return array


def scaled_shape(shape: tuple[int, ...], long_side_px: int) -> tuple[int, int]:
    """(height, width) with the long side equal to ``long_side_px`` and the aspect ratio kept (short side >= 1)."""
    height, width = shape[:2]
    scale = long_side_px / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """float32 0-255 image resized to ``shape``; antialiased when shrinking so no aliasing leaks into the Grams."""
    if tuple(image.shape[:2]) == tuple(shape):
        return image.astype(np.float32)
    out = ops.image.resize(image.astype(np.float32)[None], shape, interpolation="bilinear", antialias=True)
    return np.clip(ops.convert_to_numpy(out)[0], 0, 255).astype(np.float32)


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def total_variation(image: np.ndarray) -> float:
    """Sum of absolute neighbour differences over both axes and all channels of a 0-255 image: exactly
    ``tf.image.total_variation`` (the 2024 paper's T_VAR_LOSS column), in numpy so no backend is needed."""
    pixels = image.astype(np.float64)
    return float(np.abs(np.diff(pixels, axis=0)).sum() + np.abs(np.diff(pixels, axis=1)).sum())
