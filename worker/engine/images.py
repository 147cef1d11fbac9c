"""Array plumbing: input checks, resizing by the long side, reflect-padding thin images, conversion back to uint8,
total variation. The scaled-shape arithmetic is ``shared.geometry.scaled_shape``, the one the API checks with."""

from __future__ import annotations

import numpy as np
from keras import ops

from shared.errors import ImageError
from shared.geometry import ImageGeometry, scaled_shape

__all__ = ["check_image", "crop", "pad", "resize", "scaled_shape", "to_uint8", "total_variation"]


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


def resize(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """float32 0-255 image resized to ``shape``; antialiased when shrinking so no aliasing leaks into the Grams."""
    if tuple(image.shape[:2]) == tuple(shape):
        return image.astype(np.float32)
    out = ops.image.resize(image.astype(np.float32)[None], shape, interpolation="bilinear", antialias=True)
    return np.clip(ops.convert_to_numpy(out)[0], 0, 255).astype(np.float32)


def pad(image: np.ndarray, geometry: ImageGeometry) -> np.ndarray:
    """``image`` (at ``geometry.scaled_hw``) reflect-padded to ``geometry.padded_hw``, real pixels in the middle
    (``shared/geometry.py`` says why reflection). A no-op for images that need no padding."""
    if not geometry.padded:
        return image
    return np.pad(image, (*geometry.padding, (0, 0)), mode="reflect")


def crop(image: np.ndarray, geometry: ImageGeometry) -> np.ndarray:
    """The real pixels of a padded image back (the inverse of ``pad``)."""
    (top, _bottom), (left, _right) = geometry.padding
    height, width = geometry.scaled_hw
    return image[top : top + height, left : left + width]


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def total_variation(image: np.ndarray) -> float:
    """Sum of absolute neighbour differences over both axes and all channels of a 0-255 image: exactly
    ``tf.image.total_variation`` (the 2024 paper's T_VAR_LOSS column), in numpy so no backend is needed."""
    pixels = image.astype(np.float64)
    return float(np.abs(np.diff(pixels, axis=0)).sum() + np.abs(np.diff(pixels, axis=1)).sum())
