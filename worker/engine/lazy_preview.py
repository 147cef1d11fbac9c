"""The preview that the engines' progress records carry: computed only when the caller asks for it.

Rendering the current image (deprocessing, colour recombination, cropping the padding) costs a device-to-host copy;
most reports are only logged, so ``Progress`` (``engine.py``) and ``VideoProgress`` (``video_types.py``) hold a
callable and run it in ``preview()``. Kept apart from both so the video types need not import the engine (Keras).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import field
from typing import Any

import numpy as np


def blank_preview() -> np.ndarray:
    """What a record made without a preview callable shows: one black pixel, uint8 (1, 1, 3)."""
    return np.zeros((1, 1, 3), np.uint8)


def preview_field() -> Any:
    """The dataclass field holding the callable (last, optional, left out of repr)."""
    return field(repr=False, default=blank_preview)


class LazyPreview:
    """Mixin for a dataclass with a ``_preview: Callable[[], np.ndarray] = preview_field()`` field."""

    _preview: Callable[[], np.ndarray]

    def preview(self) -> np.ndarray:
        """The current image (or frame) as uint8 (H, W, 3); computed only when asked for."""
        return self._preview()
