"""What ``stylize`` reports while it runs (``Progress``) and returns (``StyleResult``): their own module so that the
single-size engine (``engine.py``) and the coarse-to-fine driver (``scales.py``) share them without importing each
other."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from worker.engine.lazy_preview import LazyPreview, preview_field


@dataclass
class Progress(LazyPreview):
    """What the engine reports every ``progress_every`` iterations (and at the end)."""

    iteration: int
    iterations: int
    losses: dict[str, float]
    elapsed_s: float
    _preview: Callable[[], np.ndarray] = preview_field()  # the current image (lazy_preview.py)
    # Share of the job's work done, 0-1, where iterations differ in cost (coarse to fine: an iteration at the output
    # size costs as much as all the smaller scales' together); None: iteration / iterations says it.
    work_done: float | None = None


@dataclass
class StyleResult:
    image: np.ndarray  # uint8 (H, W, 3), long side == params.size
    metrics: dict[str, Any]
    cancelled: bool
