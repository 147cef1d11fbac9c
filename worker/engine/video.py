"""The ``optimize`` video mode: Ruder et al.'s temporally consistent style transfer on the Gatys engine.

Ruder, Dosovitskiy and Brox, "Artistic style transfer for videos", GCPR 2016 (arXiv 1604.08610; IJCV 2018,
arXiv 1708.04538), the short-term method:

- the first frame is the image engine's run (``params.iterations`` from ``params.init``);
- every later frame i starts from the previous *stylized* frame warped onto it by the backward flow,
  ``warp(x[i-1], flow(i -> i-1))`` (``worker.engine.flow``), and optimises content + style + tv **plus**
  ``temporal_weight * L_temporal(x, warped, c)`` (``worker.engine.temporal``), with ``c`` Ruder's consistency mask
  (disocclusions, motion boundaries, and our out-of-frame rule) of frame i against frame i-1;
- later frames run fewer iterations, since they start close to their result: Ruder's script uses 2000 for the first
  frame and 1000 after (``-num_iterations 2000,1000``), so the default is ``DEFAULT_LATER_ITERATIONS_FRACTION``
  (0.5) of ``params.iterations``, rounded up.

Where the paper leaves a choice:

- Pixels the mask rejects have no trustworthy previous value. In the *initialisation* they are filled from the
  frame's own ``params.init`` image (the content frame by default), as the first frame starts; the temporal loss
  ignores them (mask 0), so there the frame is free to take whatever content and style ask.
- Flows, masks and the warping error are computed on the *input* frames at the output size (DIS, medium preset),
  never on the stylized ones.
- With ``preserve_color`` the styles are adapted to the first frame once (the style targets are computed once per
  call, not per frame); luminance mode warps and ties the optimised luminance image.
- ``temporal_weight == 0`` is the baseline: every frame from ``params.init`` with ``params.iterations`` and no
  temporal term, as ``stylize`` would style it alone.

Tracing: the warped previous frame, its mask and the weight are *arguments* of the traced loss-and-gradient step
(``objective.ObjectiveSpec``), so every frame of a clip (the first one too, with an empty mask) runs the one traced
step; each frame's content targets are arguments already. Independent frames run it too, with weight 0 and an empty
mask (the term is then exactly 0), so both modes share the trace.

The temporal term is a mean squared difference in 0-255 pixel units (``temporal.py``), against relative content and
style losses near 1 (``losses.py``): Ruder's weight of 1e3 against content 5 and style 100 does not carry over, and
``shared.video_params.DEFAULT_TEMPORAL_WEIGHT`` was tuned on our losses with the warping error as the measure
(``bench/video.py tune``, docs/video.md).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from shared.errors import ParamError
from shared.params import StyleParams
from shared.video_params import DEFAULT_LATER_ITERATIONS_FRACTION
from shared.weights import WeightSource
from worker.engine import engine, flow, images
from worker.engine.targets import StyleTargets
from worker.engine.video_types import VideoProgress, VideoResult

# The terms a temporal objective returns, in order (objective.total_loss); the total includes the temporal term.
OBJECTIVE_TERMS = ("content", "style", "tv", "total", "temporal")
# What VideoProgress.losses and the per-frame metrics carry.
LOSS_NAMES = ("content", "style", "tv", "temporal", "total")


def later_iterations_for(iterations: int, later_iterations: int | None = None) -> int:
    """Iterations of every frame after the first with the temporal term: ``later_iterations`` when given, else
    ``DEFAULT_LATER_ITERATIONS_FRACTION`` of ``iterations`` rounded up (at least 1)."""
    if later_iterations is not None:
        return int(later_iterations)
    return max(1, math.ceil(iterations * DEFAULT_LATER_ITERATIONS_FRACTION))


def stylize_frames(
    frames: np.ndarray,
    styles: list[np.ndarray],
    params: StyleParams,
    *,
    temporal_weight: float,
    later_iterations: int | None = None,
    on_progress: Callable[[VideoProgress], bool | None] | None = None,
    style_targets: StyleTargets | None = None,
    weights: WeightSource | None = None,
) -> VideoResult:
    """Stylize ``frames`` (uint8 ``(N, H, W, 3)`` RGB) with ``styles`` and ``params`` (its ``size``, weights,
    layers, optimizer, ``iterations`` for the first frame...), Ruder's way when ``temporal_weight > 0``, each frame
    on its own when it is 0 (module docstring). ``later_iterations``: iterations of the frames after the first in
    temporal mode (None: ``later_iterations_for``'s default). ``on_progress`` receives a ``VideoProgress`` every
    ``params.progress_every`` iterations and after each frame; returning True cancels, and the result then holds
    the frames finished before. ``style_targets`` (``engine.compute_style_targets``) are reused when they match."""
    started = time.perf_counter()
    frames = _check_frames(frames)
    temporal_weight = _check_weight(temporal_weight)
    temporal = temporal_weight > 0
    later = later_iterations_for(params.iterations, later_iterations) if temporal else params.iterations
    count = len(frames)

    first = engine._prepare(frames[0], styles, params, weights)
    targets_state = "computed"
    if style_targets is not None and style_targets.key == engine._key(first, styles, frames[0]):
        grams, targets_state = style_targets.grams, "reused"
    else:
        grams = engine._style_grams(first)
    geometry = first.geometry.content

    flow_started = time.perf_counter()
    sized = np.stack([images.to_uint8(images.resize(frame, geometry.scaled_hw)) for frame in frames])
    if count > 1:
        forward, backward = flow.FlowEstimator().video(sized)
        to_next, to_previous = flow.video_masks(forward, backward)
    flow_s = time.perf_counter() - flow_started

    outputs: list[np.ndarray] = []
    per_frame: list[dict[str, Any]] = []
    previous: np.ndarray | None = None  # the last frame's optimised image, cropped, float 0-255
    cancelled = False
    for index in range(count):
        frame_started = time.perf_counter()
        job = first if index == 0 else engine.with_content(first, frames[index])
        iterations = params.iterations if index == 0 else later
        image0 = engine._initial_image(job)
        # The first frame and independent frames have nothing to keep: an empty mask and weight 0 make the term
        # exactly zero, and they still run the temporal step, so both modes share one trace.
        warped = np.zeros(geometry.scaled_hw + (3,), np.float32)
        mask = np.zeros(geometry.scaled_hw, np.float32)
        if temporal and previous is not None:
            warped = flow.warp(previous, backward[index - 1])
            mask = to_previous[index - 1]
            image0 = _warped_init(image0, warped, mask, geometry)
        weight = temporal_weight if temporal else 0.0
        objective = engine._objective(job, grams, (weight, images.pad(warped, geometry), _pad_mask(mask, geometry)))

        def report(iteration: int, image: np.ndarray, terms: np.ndarray, *, _job=job, _index=index,
                   _iterations=iterations) -> bool:
            progress = VideoProgress(_index, _index, count, iteration, _iterations, _losses(terms),
                                     time.perf_counter() - started, lambda: engine._to_output(_job, image))
            return bool(on_progress(progress)) if on_progress is not None else False

        run = engine._optimize(job, objective, image0, iterations, report)
        tracker = run.tracker
        if tracker.cancelled:  # the frame in progress is dropped: only finished frames are returned
            cancelled = True
            break
        best = tracker.best_image
        previous = np.clip(images.crop(best, geometry), 0, 255).astype(np.float32)
        output = engine._to_output(job, best)
        outputs.append(output)
        final = _losses(tracker.best_losses)
        per_frame.append({
            "iterations": iterations,
            "iterations_run": tracker.iteration,
            "stopped_early_at": tracker.stopped_early_at,
            "seconds": time.perf_counter() - frame_started,
            "trace_seconds": run.trace_s,
            "traced": run.trace_s > 0,
            "losses": final,
        })
        if on_progress is not None and on_progress(VideoProgress(
            index, index + 1, count, tracker.iteration, iterations, final, time.perf_counter() - started,
            lambda _output=output: _output,
        )):
            cancelled = index + 1 < count
            if cancelled:
                break

    stylized = np.stack(outputs) if outputs else np.zeros((0, *geometry.scaled_hw, 3), np.uint8)
    done = len(outputs)
    metrics: dict[str, Any] = {
        "mode": "optimize",
        "temporal_weight": temporal_weight,
        "frames": count,
        "frames_done": done,
        "size_px": list(geometry.scaled_hw),
        "iterations": params.iterations,
        "later_iterations": later,
        "optimizer": params.optimizer,
        "backbone": params.backbone,
        "weights": first.backbone.weights_label,
        "precision": first.precision,
        "style_targets": targets_state,
        "seconds": time.perf_counter() - started,
        "flow_seconds": flow_s,
        "seconds_per_frame": float(np.mean([f["seconds"] for f in per_frame])) if per_frame else 0.0,
        # Lai et al.'s flicker measure on the frames returned, flows and masks from the input frames.
        "warping_error": flow.warping_error(stylized, forward[: done - 1], to_next[: done - 1]) if done > 1 else 0.0,
        # The same measure on the input itself: the floor a perfectly consistent stylization approaches.
        "input_warping_error": flow.warping_error(sized[:done], forward[: done - 1], to_next[: done - 1])
        if done > 1 else 0.0,
        "per_frame": per_frame,
        "cancelled": cancelled,
    }
    return VideoResult(stylized, metrics, cancelled)


def _warped_init(init: np.ndarray, warped: np.ndarray, mask: np.ndarray, geometry) -> np.ndarray:
    """Ruder's initialisation: the warped previous stylized frame where the mask trusts it, the frame's own init
    image elsewhere (disoccluded, motion boundary, out of frame); padded for the network like the content."""
    real = images.crop(init, geometry)
    mixed = np.where(mask[..., None] > 0, warped, real).astype(np.float32)
    return images.pad(mixed, geometry)


def _pad_mask(mask: np.ndarray, geometry) -> np.ndarray:
    """The mask on the network's padded grid: the reflected padding is no real pixel, so it is not tied (0)."""
    if not geometry.padded:
        return mask.astype(np.float32)
    return np.pad(mask, geometry.padding, mode="constant").astype(np.float32)


def _losses(terms: np.ndarray) -> dict[str, float]:
    values = dict(zip(OBJECTIVE_TERMS, (float(t) for t in terms), strict=False))
    values.setdefault("temporal", 0.0)  # a four-term objective (engine.stylize's) has none
    return {name: values[name] for name in LOSS_NAMES}


def _check_frames(frames: np.ndarray) -> np.ndarray:
    array = np.asarray(frames)
    if array.dtype != np.uint8 or array.ndim != 4 or array.shape[-1] != 3 or array.shape[0] < 1:
        raise ParamError("bad_video", f"frames must be a uint8 array of shape (N, H, W, 3) with N >= 1; got "
                         f"{array.dtype} {array.shape}", field="video")
    return array


def _check_weight(temporal_weight: float) -> float:
    value = float(temporal_weight)
    if not math.isfinite(value) or value < 0:
        raise ParamError("param_out_of_range", f"temporal_weight={temporal_weight!r} is not allowed; expected a "
                         "finite number >= 0", field="temporal_weight")
    return value


__all__ = ["LOSS_NAMES", "VideoProgress", "VideoResult", "later_iterations_for", "stylize_frames"]
