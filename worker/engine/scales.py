"""Coarse-to-fine stylization (issue 13, item 1): optimise a small picture first, then carry it up in x sqrt(2) steps.

After crowsonkb/style-transfer-pytorch (``StyleTransfer.stylize``: scales from ``min_scale`` to ``end_scale``, each
``sqrt(2)`` larger than the one before, every scale initialised from the previous scale's result resized up). At a
small size the optimiser settles the large structures of the style in few cheap iterations (an iteration at
``s / 2`` costs about a quarter of one at ``s``), so the full-size iterations only refine; Gatys et al. 2017
("Controlling perceptual factors in neural style transfer") make the same coarse-to-fine argument for large outputs.

Choices (where the issue is silent):
- the sizes are ``min_size`` x ``sqrt(2)^k`` rounded, up to but below ``size``, then ``size`` itself
  (``scale_sizes``); a ``min_size`` at or above ``size`` is one scale, today's single-scale run;
- every scale runs ``params.iterations`` with ``params.early_stop_*`` (crowsonkb runs the same iteration count at
  every scale); the split that gives the best picture per second is for ``bench/`` to find, and ``iterations_per_scale``
  is the one place to change it;
- the style targets are computed per scale (the style image is scaled with the output, ``style_scale``), and the
  next scale starts from the previous output (uint8, resized by ``stylize``'s ``init_image`` path).

This module only composes ``engine.stylize``; it adds no loss, backend or file handling.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from shared.params import StyleParams
from shared.weights import WeightSource
from worker.engine.engine import Progress, StyleResult, stylize

SCALE_RATIO = math.sqrt(2.0)  # crowsonkb/style-transfer-pytorch's step between scales


def scale_sizes(size_px: int, min_size_px: int, ratio: float = SCALE_RATIO) -> list[int]:
    """Long sides from ``min_size_px`` up by ``ratio`` each, ending exactly at ``size_px``. A step that would land
    within 10% of ``size_px`` is dropped (a scale so close to the last costs nearly as much and adds nothing)."""
    if min_size_px >= size_px:
        return [size_px]
    sizes = []
    current = float(min_size_px)
    while current * 1.1 < size_px:
        sizes.append(round(current))
        current *= ratio
    return [*sizes, size_px]


def iterations_per_scale(iterations: int, scale_count: int) -> list[int]:
    """Iterations at each scale, coarsest first: ``iterations`` at every scale (module docstring)."""
    return [iterations] * scale_count


def stylize_coarse_to_fine(
    content: np.ndarray,
    styles: list[np.ndarray],
    params: StyleParams,
    min_size_px: int,
    on_progress: Callable[[Progress], bool | None] | None = None,
    *,
    weights: WeightSource | None = None,
    memory_budget_bytes: int | None = None,
) -> StyleResult:
    """``stylize`` at each of ``scale_sizes(params.size, min_size_px)``, each scale started from the previous
    output. Progress counts iterations over all scales; a callback returning True (cancel) stops at once and the
    result is that scale's best image (at that scale's size), marked cancelled. ``metrics["scales"]`` has each
    scale's size, iterations run and seconds; the other metrics are the last scale's, with ``seconds`` and
    ``iterations_run`` for all."""
    started = time.perf_counter()
    sizes = scale_sizes(params.size, min_size_px)
    budgets = iterations_per_scale(params.iterations, len(sizes))
    total = sum(budgets)
    done = 0
    image: np.ndarray | None = None
    per_scale = []
    result: StyleResult | None = None
    for size_px, iterations in zip(sizes, budgets, strict=True):
        scale_params = params.replace(size=size_px, iterations=iterations)

        def report(progress: Progress, offset: int = done) -> bool | None:
            if on_progress is None:
                return None
            return on_progress(Progress(offset + progress.iteration, total, progress.losses,
                                        time.perf_counter() - started, progress.preview))

        result = stylize(content, styles, scale_params, report, weights=weights, init_image=image,
                         memory_budget_bytes=memory_budget_bytes)
        done += result.metrics["iterations_run"]
        per_scale.append({"size_px": size_px, "iterations": iterations,
                          "iterations_run": result.metrics["iterations_run"],
                          "stopped_early_at": result.metrics.get("stopped_early_at"),
                          "seconds": result.metrics["seconds"]})
        image = result.image
        if result.cancelled:
            break
    assert result is not None  # scale_sizes returns at least one size
    metrics = {**result.metrics, "scales": per_scale, "iterations_run": done,
               "seconds": time.perf_counter() - started, "min_size_px": min_size_px}
    return StyleResult(result.image, metrics, result.cancelled)
