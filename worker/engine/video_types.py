"""What the video modes report and return: one progress record per frame, one result per clip.

Shared by both modes of issue 12 (``optimize``: Ruder's method on the Gatys engine, ``fast``: a trained style model,
``worker/engine/video_fast.py``) so the worker's progress plumbing and the service treat them alike. The shape
follows the engine's own ``Progress`` (``worker/engine/engine.py``): the preview is computed only when asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from worker.engine.lazy_preview import LazyPreview, preview_field


@dataclass
class VideoProgress(LazyPreview):
    """Reported after each frame (``optimize`` may also report inside a frame's iterations).

    ``frame_index`` is the frame being (or just) styled, 0-based within the clip given; ``frames_done`` how many are
    finished; ``iteration`` / ``iterations`` the position inside that frame (1 / 1 for ``fast``); ``losses`` the
    latest weighted loss terms (empty for ``fast`` without fine-tuning); ``elapsed_s`` since the call began."""

    frame_index: int
    frames_done: int
    frames: int
    iteration: int
    iterations: int
    losses: dict[str, float]
    elapsed_s: float
    _preview: Callable[[], np.ndarray] = preview_field()  # the current frame (lazy_preview.py)


@dataclass
class VideoResult:
    frames: np.ndarray  # uint8 (N, H, W, 3); fewer than given when cancelled
    metrics: dict[str, Any]
    cancelled: bool


__all__ = ["VideoProgress", "VideoResult"]
