"""The ``fast`` video mode (issue 12): a trained style model on every frame, the flow-warped previous output blended
in where the pixel is visible in both frames, and an optional fine-tuning of the model on the clip itself.

    result = stylize_frames_fast(model, frames, size=256)          # VideoResult: uint8 frames, metrics, cancelled
    tuned, metrics = finetune_on_clip(model, frames, [style], size=256)   # a new model; ``model`` is untouched

Pure computation (arrays in, arrays and numbers out), like the rest of ``worker/engine``.

**The blend rule.** With ``N(x_t)`` the model's output on input frame ``t`` (after its colour mode), ``W_t`` backward
warping onto frame t's grid by the DIS flow from input frame t to input frame t-1 (``flow.warp``), ``m_t`` Ruder's
consistency mask of frame t against frame t-1 (``flow.consistency_mask``: 0 where disoccluded, on a motion boundary
or mapping outside the previous frame, 1 elsewhere) and ``a`` the blend weight ``temporal_blend``:

    out_0 = N(x_0)
    out_t = m_t * a * W_t(out_{t-1}) + (1 - m_t * a) * N(x_t)

So a pixel visible in both frames keeps a share ``a`` of the previous *output* (already blended: the rule is
recursive), a pixel that is new (disoccluded, entering the frame) or on a motion boundary is the network's alone,
and ``a = 0`` is the model applied frame by frame. Along a trajectory that stays visible the output is an
exponential moving average of the network's outputs with weights ``(1 - a) a^k`` for the frame ``k`` steps back:
the memory is ``a / (1 - a)`` frames on average (1 at the default 0.5), a flicker that is independent from frame to
frame keeps ``(1 - a) / (1 + a)`` of its variance and the frame-to-frame difference ``(1 - a)^2 * 2 / (1 + a)`` of
its mean square (1/6 at 0.5; 0.38 at 0.3; 0.04 at 0.8). The costs of remembering: each older term has been
warped (bilinear) once per frame since, which blurs sub-pixel motion (a term ``k`` frames old is smoothed ``k``
times), and a flow error the mask does not catch drags old texture along (ghosting), both bounded by ``a^k``. The
recursion is kept in float32 and rounded only on output, so no quantisation error accumulates either. The
benchmark (``bench/video.py fast``) measures the flicker, the drift from the network's own output and the
sharpness for several ``a`` (docs/video.md). This is the post-hoc blend used with feed-forward stylisation in
practice (e.g. Ruder et al. 2018's fast variant initialises from the same warped, masked previous frame);
Huang et al. 2017 and Gupta et al. 2017 instead train the temporal term into the network, which
``finetune_on_clip`` does on the clip itself.

Segments: a segment starting at frame s has no previous output; a run that starts ``k`` frames earlier (overlap)
and drops them differs from the continuous run by at most ``a^k`` times the first frames' difference, so
``overlap_frames_for(a)`` frames make the seam invisible (5 % at the default: 5 frames).

**Fine-tuning** (Huang et al. 2017, "Real-time neural style transfer for videos", CVPR; Gupta et al. 2017,
"Characterizing and improving stability in neural style transfer", ICCV): two-frame training. Each step takes two
consecutive frames ``(x_t, x_t+1)`` of the clip as a batch of two, scores each output by the trainer's own
objective (``trainer.loss_setup``: content, style and TV against the style Grams, the relative losses' floors) and
adds ``temporal_weight * temporal_loss(N(x_t+1), W(N(x_t)), m)`` (``temporal.temporal_loss``, Ruder's masked mean
square, on outputs scaled to [0, 1] so the weight does not depend on the pixel range), with the flow and mask
from the input frames. The gradient flows through both outputs, as in Huang et al. The warp inside the loss is
bilinear sampling written with ``keras.ops`` (``_bilinear_taps`` / ``_warp_ops``: the same sampling as
``flow.warp``'s ``cv2.remap``, differentiable in the image). The step is the trainer's ``TrainStep`` for the Keras
backend in use, given each pair's flow taps and mask as per-step arguments.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from keras import ops

from shared import video_params
from shared.errors import ImageError, ParamError
from shared.train_params import TrainParams
from shared.weights import WeightSource
from worker.engine import color, feedforward, flow, images, temporal, trainer
from worker.engine.engine import Progress
from worker.engine.feedforward import FastStyleModel
from worker.engine.video_types import VideoProgress, VideoResult

# One default for the API, the CLI and the engine (shared/video_params.py); chosen with bench/video_fast.py.
DEFAULT_TEMPORAL_BLEND = video_params.DEFAULT_TEMPORAL_BLEND
# 1 is allowed (the API's bound): visible pixels are then only carried along by the flow and the network paints
# only what is new; the texture never refreshes, so blur and ghosts never fade (memory a / (1 - a) frames).
MAX_TEMPORAL_BLEND = 1.0
MAX_FLOW_WORKERS = 4  # DIS threads ahead of the frame loop (flows depend on the input frames only)
SEAM_TOLERANCE = 0.05  # overlap_frames_for: the share of the first frames' difference left at the seam

# Fine-tuning defaults, measured on the 256 px test clip with a trained Starry Night model (bench/video_fast.py,
# docs/video.md): 15 steps at training's learning rate 1e-3 cut the clip's temporal loss 8x and kept the style loss
# (3.5 -> 3.5); at 2e-4 the temporal loss fell as far but the style loss rose (3.7 -> 4.3) and the output blurred
# more. The temporal weight makes the term (in [0, 1] units, ~0.004 untuned) comparable to content + style (~5).
DEFAULT_FINETUNE_STEPS = 20
DEFAULT_FINETUNE_TEMPORAL_WEIGHT = 1000.0
DEFAULT_FINETUNE_LEARNING_RATE = 1e-3
FINETUNE_LOSS_NAMES = ("content", "style", "tv", "total", "temporal")


# --- helpers -----------------------------------------------------------------------------------------------------


def overlap_frames_for(temporal_blend: float, tolerance: float = SEAM_TOLERANCE) -> int | None:
    """Frames a segment should start early so that its first kept frame differs from the continuous run's by at
    most ``tolerance`` of the start-up difference (``a^k <= tolerance``); 0 without a blend, None at 1 (never)."""
    if temporal_blend <= 0:
        return 0
    if temporal_blend >= 1:
        return None
    return math.ceil(math.log(tolerance) / math.log(temporal_blend))


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """uint8 ``(N, H, W, 3)`` with long side ``size`` (``shared.geometry.scaled_shape``, as images), area filter
    when shrinking, bilinear when enlarging. Frames already at that size are returned as they are."""
    frames = _check_frames(frames)
    height, width = frames.shape[1:3]
    shape = images.scaled_shape(frames.shape[1:], int(size))
    if tuple(shape) == (height, width):
        return frames
    interpolation = cv2.INTER_AREA if shape[0] * shape[1] < height * width else cv2.INTER_LINEAR
    return np.stack([cv2.resize(frame, (shape[1], shape[0]), interpolation=interpolation) for frame in frames])


def blend(network_output: np.ndarray, warped_previous: np.ndarray, mask: np.ndarray, temporal_blend: float
          ) -> np.ndarray:
    """The blend rule (module docstring): ``m a W(out_{t-1}) + (1 - m a) N(x_t)``, float32 (H, W, 3)."""
    share = (np.asarray(mask, np.float32) * np.float32(temporal_blend))[..., None]
    return share * np.asarray(warped_previous, np.float32) + (1.0 - share) * np.asarray(network_output, np.float32)


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1 \
            or min(frames.shape[1:3]) < 1:
        raise ImageError("bad_image", f"frames must be uint8 (N, H, W, 3) with N >= 1; got {frames.dtype} "
                         f"{frames.shape}", field="video")
    return frames


def _check_blend(temporal_blend: float) -> float:
    if isinstance(temporal_blend, bool) or not isinstance(temporal_blend, (int, float)) \
            or not 0.0 <= temporal_blend <= MAX_TEMPORAL_BLEND:
        raise ParamError("param_out_of_range", f"temporal_blend={temporal_blend!r} is not allowed; expected 0 to "
                         f"{MAX_TEMPORAL_BLEND}", field="temporal_blend")
    return float(temporal_blend)


# --- applying ----------------------------------------------------------------------------------------------------


def stylize_frames_fast(
    model: FastStyleModel,
    frames: np.ndarray,
    *,
    size: int,
    preserve_color: str | None = None,
    temporal_blend: float = DEFAULT_TEMPORAL_BLEND,
    on_progress: Callable[[VideoProgress], bool | None] | None = None,
    batch_frames: int = 1,
    flow_preset: str = flow.DEFAULT_PRESET,
    flow_workers: int | None = None,
    measure: bool = True,
) -> VideoResult:
    """Style every frame of ``frames`` (uint8 ``(N, H, W, 3)``) at long side ``size`` with ``model``, blending in the
    flow-warped previous output by the rule in the module docstring.

    ``preserve_color`` as ``feedforward.stylize_fast`` (default: the model's own mode), applied to each network
    output before the blend. ``on_progress(VideoProgress)`` after every frame; returning True stops there
    (``cancelled``, the frames done so far returned). ``batch_frames`` frames go through the network per call (a GPU
    gains from a few; the blend itself is sequential). Flow: DIS (``flow_preset``) on the resized input frames. The
    flows and masks depend on the input frames only, so ``flow_workers`` threads (default: up to 4, one per core)
    compute them a few frames ahead while the network runs (OpenCV and numpy release the GIL); 1 computes each in
    turn on the calling thread.

    Metrics: ``warping_error`` (Lai et al. 2018 on the output, flow and mask from the input frames, as
    ``flow.warping_error``) and ``warping_error_network`` (the same for the network's own outputs, i.e. the model
    without temporal terms, from the same run), ``drift`` (mean absolute difference between output and network
    output, 0-1 units), seconds per frame for ``network``, ``flow`` (DIS both ways and the blend's mask: their
    compute time with one flow worker, the time the frame loop waited for them with more), ``blend`` (warp and mix)
    and ``metric`` (the warping errors), and ``frames_per_second`` (all frames over the wall time). With
    ``measure=False`` the warping errors are not computed (a throughput run: nothing but styling is timed).
    """
    started = time.perf_counter()
    temporal_blend = _check_blend(temporal_blend)
    for name, value in (("batch_frames", batch_frames), ("flow_workers", flow_workers)):
        if (value is not None or name == "batch_frames") and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ParamError("param_out_of_range", f"{name}={value!r}; expected an integer >= 1", field=name)
    mode = feedforward._apply_mode(model, preserve_color)
    frames = resize_frames(frames, size)
    count = len(frames)
    workers = flow_workers or min(MAX_FLOW_WORKERS, os.cpu_count() or 1)
    need_flow = bool(temporal_blend) or measure
    seconds = {"network": 0.0, "flow": 0.0, "blend": 0.0, "metric": 0.0}
    out = np.empty_like(frames)
    errors, errors_network, drifts, visible = [], [], [], []
    pending: list[np.ndarray] = []  # network outputs of the current batch, float32
    previous = previous_network = None
    cancelled = False
    done = 0
    with _PairFlows(frames, flow_preset, workers, masks_next=measure) as flows:
        for t in range(count):
            if not pending:
                tick = time.perf_counter()
                batch = frames[t : t + batch_frames].astype(np.float32)
                real = len(batch)
                if real < batch_frames:  # the last batch padded to the same shape: a compiled backend traces once
                    batch = np.concatenate([batch, np.repeat(batch[-1:], batch_frames - real, axis=0)])
                pending = list(feedforward.stylize_batch(model, batch, preserve_color=mode)[:real])
                seconds["network"] += time.perf_counter() - tick
            network_output = pending.pop(0)
            current = network_output
            if t > 0 and need_flow:
                tick = time.perf_counter()
                pair = flows.get(t)  # flows between frames t-1 and t, their masks
                seconds["flow"] += time.perf_counter() - tick if workers > 1 else pair.compute_s
                if temporal_blend:
                    tick = time.perf_counter()
                    current = blend(network_output, flow.warp(previous, pair.backward), pair.mask_previous,
                                    temporal_blend)
                    visible.append(float(pair.mask_previous.mean()))
                    seconds["blend"] += time.perf_counter() - tick
                if measure:
                    tick = time.perf_counter()
                    errors.append(flow.pair_warping_error(out[t - 1], images.to_uint8(current), pair.forward,
                                                          pair.mask_next))
                    errors_network.append(flow.pair_warping_error(
                        previous_network, images.to_uint8(network_output), pair.forward, pair.mask_next))
                    seconds["metric"] += time.perf_counter() - tick + pair.mask_next_s
            out[t] = images.to_uint8(current)
            drifts.append(float(np.mean(np.abs(current - network_output))) / 255.0)
            previous, previous_network = current, images.to_uint8(network_output)
            done = t + 1
            if on_progress is not None:
                report = VideoProgress(t, done, count, 1, 1, {}, time.perf_counter() - started,
                                       lambda frame=out[t]: frame.copy())
                if on_progress(report):
                    cancelled = True
                    break
    wall_s = time.perf_counter() - started
    metrics: dict[str, Any] = {
        "mode": "fast",
        "frames": done,
        "size_px": int(size),
        "height": int(frames.shape[1]),
        "width": int(frames.shape[2]),
        "temporal_blend": temporal_blend,
        "preserve_color": mode,
        "flow_preset": flow_preset,
        "flow_workers": workers,
        "batch_frames": batch_frames,
        "warping_error": _mean_or_none(errors, measure),
        "warping_error_network": _mean_or_none(errors_network, measure),
        "drift": float(np.mean(drifts)),
        "visible_fraction": float(np.mean(visible)) if visible else None,
        "seconds": wall_s,
        "seconds_per_frame": {name: value / done for name, value in seconds.items()},
        "frames_per_second": done / wall_s if wall_s > 0 else None,
        "overlap_frames": overlap_frames_for(temporal_blend),
        "cancelled": cancelled,
    }
    return VideoResult(out[:done], metrics, cancelled)


def _mean_or_none(values: list[float], measured: bool) -> float | None:
    """The mean of the pairs' errors; 0 for a one-frame clip (nothing flickers), None when not measured."""
    if not measured:
        return None
    return float(np.mean(values)) if values else 0.0


@dataclass
class _Pair:
    forward: np.ndarray  # flow t-1 -> t, on frame t-1's grid
    backward: np.ndarray  # flow t -> t-1, on frame t's grid (the blend warps with it)
    mask_previous: np.ndarray  # Ruder's mask of frame t against t-1 (the blend's m_t)
    mask_next: np.ndarray | None  # Lai's mask of frame t-1 against t (the warping error's)
    compute_s: float  # DIS both ways and mask_previous
    mask_next_s: float


class _PairFlows:
    """Flows and masks of consecutive input frames, computed up to ``2 * workers`` pairs ahead of the frame loop by
    a thread pool (one ``FlowEstimator`` per thread: OpenCV objects are not thread-safe), or on the caller's thread
    with one worker."""

    def __init__(self, frames: np.ndarray, preset: str, workers: int, *, masks_next: bool) -> None:
        self.frames, self.preset, self.workers, self.masks_next = frames, preset, workers, masks_next
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="flow") if workers > 1 else None
        self._futures: dict[int, Future] = {}
        self._next = 1

    def __enter__(self) -> _PairFlows:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def get(self, t: int) -> _Pair:
        if self._pool is None:
            return self._compute(t)
        while self._next < len(self.frames) and self._next <= t + 2 * self.workers:
            self._futures[self._next] = self._pool.submit(self._compute, self._next)
            self._next += 1
        return self._futures.pop(t).result()

    def _compute(self, t: int) -> _Pair:
        estimator = getattr(self._local, "estimator", None)
        if estimator is None:
            estimator = self._local.estimator = flow.FlowEstimator(self.preset)
        tick = time.perf_counter()
        forward, backward = estimator.pair(self.frames[t - 1], self.frames[t])
        mask_previous = flow.consistency_mask(backward, forward)
        compute_s = time.perf_counter() - tick
        tick = time.perf_counter()
        mask_next = flow.consistency_mask(forward, backward) if self.masks_next else None
        return _Pair(forward, backward, mask_previous, mask_next, compute_s, time.perf_counter() - tick)


# --- fine-tuning -------------------------------------------------------------------------------------------------


def _bilinear_taps(flow_field: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Backward warping by ``flow_field`` as a gather: for each pixel the flat indices of its four neighbours
    (int32 ``(H*W*4,)``) and their bilinear weights (float32 ``(H*W, 4)``), sample points clamped to the frame as
    ``cv2.remap``'s ``BORDER_REPLICATE`` does (``flow.warp``)."""
    height, width = flow_field.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    x = np.clip(xs + flow_field[..., 0], 0, width - 1).ravel()
    y = np.clip(ys + flow_field[..., 1], 0, height - 1).ravel()
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    x1, y1 = np.minimum(x0 + 1, width - 1), np.minimum(y0 + 1, height - 1)
    fx, fy = x - x0, y - y0
    indices = np.stack([y0 * width + x0, y0 * width + x1, y1 * width + x0, y1 * width + x1], axis=1)
    weights = np.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy], axis=1)
    return indices.reshape(-1).astype(np.int32), weights.astype(np.float32)


def _warp_ops(image, indices, weights):
    """``keras.ops`` twin of ``flow.warp`` for one ``(H, W, C)`` image given ``_bilinear_taps``: differentiable in
    the image (a gather and a weighted sum)."""
    height, width, channels = image.shape
    flat = ops.reshape(image, (height * width, channels))
    taps = ops.reshape(ops.take(flat, indices, axis=0), (height * width, 4, channels))
    return ops.reshape(ops.sum(taps * ops.expand_dims(weights, -1), axis=1), (height, width, channels))


def _pair_loss(base: Callable, temporal_weight: float) -> Callable:
    """``loss_fn`` for ``TrainStep`` on a batch ``[x_t, x_t+1]``: the trainer's objective averaged over both frames
    plus the weighted temporal term; the pair's taps and mask come as per-step arguments."""
    weight = float(temporal_weight)

    def loss_fn(features, content_features, output, *args):
        *loss_args, indices, tap_weights, mask = args
        content, style, tv, total = base(features, content_features, output, *loss_args)
        warped = _warp_ops(output[0] / 255.0, indices, tap_weights)
        term = weight * temporal.temporal_loss(output[1] / 255.0, warped, mask)
        return content, style, tv, total + term, term

    return loss_fn


def clip_temporal_loss(model: FastStyleModel, frames: np.ndarray, backward: np.ndarray, masks: np.ndarray) -> float:
    """Mean over the pairs of ``temporal_loss(N(x_t+1), W(N(x_t)), m)`` for the model on ``frames`` (already at
    size; outputs in [0, 1]); ``backward[k]`` and ``masks[k]`` are on frame k+1's grid (``flow.video_masks``'
    ``to_previous``). What fine-tuning lowers, unweighted."""
    outputs = feedforward.forward(model.net, _network_input(model, frames)) / 255.0
    losses = [temporal.temporal_loss_np(outputs[k + 1], flow.warp(outputs[k], backward[k]), masks[k])
              for k in range(len(frames) - 1)]
    return float(np.mean(losses)) if losses else 0.0


def _network_input(model: FastStyleModel, frames: np.ndarray) -> np.ndarray:
    """What the network is trained and applied on: RGB 0-255, or its luminance for a ``luminance`` model."""
    batch = np.asarray(frames, np.float32)
    return color.luminance_as_rgb(batch) if model.preserve_color == "luminance" else batch


def copy_model(model: FastStyleModel) -> FastStyleModel:
    """A new network with ``model``'s architecture and weights (the cached model stays untouched)."""
    copy = FastStyleModel.new(model.width, model.residual_blocks, preserve_color=model.preserve_color)
    feedforward.assign_weights(copy.net.weights, [(v.path, v.numpy()) for v in model.net.weights], "model")
    copy.meta = dict(model.meta)
    return copy


def finetune_params(model: FastStyleModel, size: int, **changes: Any) -> TrainParams:
    """The fine-tuning's ``TrainParams``: the model's own training weights (``meta["params"]``) where it has them,
    its architecture and colour mode, crops of ``size``, the fine-tuning's learning rate; ``changes`` override."""
    trained = model.meta.get("params") if isinstance(model.meta.get("params"), dict) else {}
    keep = ("content_weight", "style_weight", "tv_weight", "style_scale", "backbone", "pooling", "content_layers",
            "style_layers")
    values: dict[str, Any] = {k: trained[k] for k in keep if trained.get(k) is not None}
    for key in ("content_layers", "style_layers"):  # JSON gives lists; the params take pairs
        if key in values:
            values[key] = tuple(tuple(pair) for pair in values[key])
    values.update(size=int(size), width=model.width, residual_blocks=model.residual_blocks,
                  preserve_color=model.preserve_color, learning_rate=DEFAULT_FINETUNE_LEARNING_RATE,
                  batch_size=2, steps=DEFAULT_FINETUNE_STEPS)
    values.update(changes)
    return TrainParams(**values)


def finetune_on_clip(
    model: FastStyleModel,
    frames: np.ndarray,
    styles: Sequence[np.ndarray],
    params: TrainParams | None = None,
    *,
    size: int | None = None,
    temporal_weight: float = DEFAULT_FINETUNE_TEMPORAL_WEIGHT,
    steps: int = DEFAULT_FINETUNE_STEPS,
    on_progress: Callable[[Progress], bool | None] | None = None,
    weights: WeightSource | None = None,
    flow_preset: str = flow.DEFAULT_PRESET,
    seed: int = 0,
) -> tuple[FastStyleModel, dict[str, Any]]:
    """Fine-tune a copy of ``model`` on consecutive frame pairs of ``frames`` (uint8 ``(N, H, W, 3)``, N >= 2) for
    ``steps`` Adam steps with the temporal term (module docstring); ``styles`` are the style images the model was
    trained for (their Grams are the style targets). Returns ``(new_model, metrics)``.

    ``params``: the loss and optimiser settings (default ``finetune_params(model, size)``: the model's training
    weights, learning rate 1e-3); ``size``: the frames' long side (default ``params.size``, else the frames' own).
    Pairs are drawn uniformly from an RNG seeded by ``seed``. ``on_progress(Progress)`` (the engine's record:
    ``iteration`` is the step, ``losses`` the step's weighted terms incl. ``temporal``, ``preview()`` the middle
    frame through the current network) after every step; returning True stops (``metrics["cancelled"]``, the network
    as trained so far). Metrics: the clip's unweighted temporal loss before and after (``clip_temporal_loss``), the
    loss history, seconds per step."""
    started = time.perf_counter()
    frames = _check_frames(frames)
    if len(frames) < 2:
        raise ParamError("param_out_of_range", f"fine-tuning needs at least 2 frames, got {len(frames)}", field="video")
    if size is None:
        size = params.size if params is not None else max(frames.shape[1:3])
    if params is None:
        params = finetune_params(model, size)
    frames = resize_frames(frames, size)
    tuned = copy_model(model)
    pool = list(frames)
    style_images = trainer._styles_for_training(list(styles), pool, params)
    setup = trainer.loss_setup(style_images, params, weights)

    tick = time.perf_counter()
    forward_flows, backward_flows = flow.FlowEstimator(flow_preset).video(frames)
    _to_next, to_previous = flow.video_masks(forward_flows, backward_flows)
    taps = [_bilinear_taps(b) for b in backward_flows]
    flow_s = time.perf_counter() - tick
    inputs = _network_input(tuned, frames)
    before = clip_temporal_loss(tuned, frames, backward_flows, to_previous)

    optimizer = trainer._optimizer(params)
    optimizer.build(tuned.net.trainable_variables)
    step_fn = feedforward_train_step(tuned, setup, optimizer, temporal_weight)
    rng = np.random.default_rng(seed)
    middle = frames[len(frames) // 2]
    history: list[dict[str, float]] = []
    cancelled = False
    first_step_s = 0.0
    loop_started = time.perf_counter()
    for step in range(1, steps + 1):
        step_started = time.perf_counter()
        k = int(rng.integers(len(frames) - 1))
        indices, tap_weights = taps[k]
        terms = step_fn(inputs[k : k + 2], (indices, tap_weights, to_previous[k]))
        if step == 1:
            first_step_s = time.perf_counter() - step_started
        losses = {name: float(v) for name, v in zip(FINETUNE_LOSS_NAMES, terms, strict=True)}
        history.append({"step": step, "pair": k, **losses})
        if on_progress is not None:
            step_fn.sync()
            preview = lambda: feedforward.stylize_fast(tuned, middle)  # noqa: E731
            if on_progress(Progress(step, steps, losses, time.perf_counter() - started, preview)):
                cancelled = True
                break
    step_fn.sync()
    loop_s = time.perf_counter() - loop_started
    steps_run = len(history)
    after = clip_temporal_loss(tuned, frames, backward_flows, to_previous)
    tuned.meta = {**model.meta, "finetuned_on_clip": {
        "steps": steps_run, "temporal_weight": float(temporal_weight), "learning_rate": params.learning_rate,
        "frames": len(frames), "size_px": int(size)}}
    metrics = {
        "steps": steps,
        "steps_run": steps_run,
        "cancelled": cancelled,
        "temporal_weight": float(temporal_weight),
        "learning_rate": params.learning_rate,
        "frames": len(frames),
        "size_px": int(size),
        "temporal_loss_before": before,
        "temporal_loss_after": after,
        "seconds": time.perf_counter() - started,
        "flow_seconds": flow_s,
        "first_step_seconds": first_step_s,
        "seconds_per_step": (loop_s - first_step_s) / (steps_run - 1) if steps_run > 1 else loop_s,
        "history": history,
        "weights": setup.backbone.weights_label,
    }
    return tuned, metrics


def feedforward_train_step(model: FastStyleModel, setup: trainer.LossSetup, optimizer, temporal_weight: float):
    """The backend's ``TrainStep`` for two-frame batches with the temporal term (per-step args: taps and mask)."""
    engine_backend = trainer.engine.backend
    return engine_backend.TrainStep(model.net, setup.extractor, setup.backbone.preprocess, optimizer,
                                    _pair_loss(setup.batch_loss(), temporal_weight), setup.loss_args)


__all__ = [
    "DEFAULT_FINETUNE_STEPS",
    "DEFAULT_FINETUNE_TEMPORAL_WEIGHT",
    "DEFAULT_TEMPORAL_BLEND",
    "blend",
    "clip_temporal_loss",
    "copy_model",
    "finetune_on_clip",
    "finetune_params",
    "overlap_frames_for",
    "resize_frames",
    "stylize_frames_fast",
]
