"""Coarse-to-fine stylization (issue 13, item 1): optimise a small picture first, then carry it up in x sqrt(2) steps.

After crowsonkb/style-transfer-pytorch (``StyleTransfer.stylize``: scales from ``min_scale`` to ``end_scale``, each
``sqrt(2)`` larger than the one before, every scale initialised from the previous scale's result resized up). At a
small size the optimiser settles the large structures of the style in few cheap iterations (an iteration at
``s / 2`` costs about a quarter of one at ``s``), so the full-size iterations only refine; Gatys et al. 2017
("Controlling perceptual factors in neural style transfer") make the same coarse-to-fine argument for large outputs.

Choices (where the issue is silent):
- the ladder is ``shared.geometry.job_scale_sizes``: ``min_size`` x ``sqrt(2)^k`` up to ``size`` (a rung within 10%
  of ``size`` dropped, rungs the layers cannot run at skipped), so the door and the engine agree on it;
- every scale runs ``iterations`` (crowsonkb's one count per scale) unless ``scale_iterations`` gives the smaller
  scales their own count (``shared.geometry.job_scale_iterations``), each with the job's ``early_stop_*``. This is
  the default (``min_size`` 128, 100 iterations per scale): a 512 px job passes the old single-scale 300-iteration
  score in about a third of that run's time (``bench/quality_time.py``, docs/engine.md "Coarse to fine");
- the style targets are computed per scale (the style image is scaled with the output, ``style_scale``), and the
  next scale starts from the previous output (uint8, resized by the single-size engine's ``init_image`` path).

This module only composes the single-size ``stylize_at_size`` it is given; it adds no loss, backend or file handling.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from shared.geometry import job_scale_iterations, rung_pixel_shares
from shared.params import StyleParams
from worker.engine.results import Progress, StyleResult

StylizeAtSize = Callable[..., StyleResult]


def stylize_coarse_to_fine(
    stylize_at_size: StylizeAtSize,
    content: np.ndarray,
    styles: list[np.ndarray],
    params: StyleParams,
    sizes: list[int],
    on_progress: Callable[[Progress], bool | None] | None = None,
    **engine_kwargs: Any,
) -> StyleResult:
    """``stylize_at_size`` at each long side in ``sizes``, each scale started from the previous output. Progress
    counts iterations over all scales; a callback returning True (cancel) stops at once and the result is that
    scale's best image (at that scale's size), marked cancelled. ``metrics["scales"]`` has each scale's size,
    iterations run and seconds; the other metrics are the last scale's, with ``seconds`` and ``iterations_run`` for
    all scales."""
    started = time.perf_counter()
    budgets = job_scale_iterations(params, len(sizes))
    total = sum(budgets)
    # An iteration's work grows with the pixels: progress's work_done weighs each scale's iterations by its share.
    cost_per_iteration = rung_pixel_shares(sizes)
    total_cost = sum(c * n for c, n in zip(cost_per_iteration, budgets, strict=True))
    done = 0
    done_cost = 0.0
    image: np.ndarray | None = None
    per_scale = []
    result: StyleResult | None = None
    for size_px, iterations, cost in zip(sizes, budgets, cost_per_iteration, strict=True):
        scale_params = params.replace(size=size_px, iterations=iterations)

        def report(progress: Progress, offset: int = done, offset_cost: float = done_cost,
                   cost: float = cost) -> bool | None:
            if on_progress is None:
                return None
            work_done = (offset_cost + progress.iteration * cost) / total_cost
            return on_progress(Progress(offset + progress.iteration, total, progress.losses,
                                        time.perf_counter() - started, progress.preview, work_done))

        result = stylize_at_size(content, styles, scale_params, report, init_image=image, **engine_kwargs)
        done += result.metrics["iterations_run"]
        done_cost += iterations * cost  # a scale stopped early leaves its remaining work undone, not pending
        per_scale.append({"size_px": size_px, "iterations": iterations,
                          "iterations_run": result.metrics["iterations_run"],
                          "stopped_early_at": result.metrics.get("stopped_early_at"),
                          "seconds": result.metrics["seconds"]})
        image = result.image
        if result.cancelled:
            break
    assert result is not None  # a ladder has at least one size
    metrics = {**result.metrics, "scales": per_scale, "iterations": total, "iterations_run": done,
               "seconds": time.perf_counter() - started, "min_size_px": sizes[0]}
    return StyleResult(result.image, metrics, result.cancelled)
