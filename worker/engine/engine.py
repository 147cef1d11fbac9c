"""``stylize``: Gatys et al. optimisation of the output pixels against content, style and total-variation losses.

The flow of one call: check inputs -> pick precision -> get the (cached) backbone and its truncated feature
extractor -> prepare the images (size, colour mode) -> content features and style Grams (or reuse given style
targets) -> initial image -> optimise with progress and cancel -> back to uint8 -> metrics.
"""

from __future__ import annotations

import dataclasses
import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import keras
import numpy as np

from shared.errors import EngineError, ParamError
from shared.geometry import JobGeometry, check_job, job_scale_sizes
from shared.params import StyleParams
from shared.weights import WeightSource
from worker.engine import backbones, color, images, losses, optimizers, scales, tiling, wasserstein
from worker.engine.objective import ObjectiveSpec
from worker.engine.results import Progress, StyleResult
from worker.engine.targets import StyleTargets, targets_key

# Keras backend -> the module holding everything backend-specific (traced loss and gradient, forward features,
# the floor pass). Both offer the same functions; TensorFlow is the default and what CI runs.
BACKEND_MODULES = {"tensorflow": "worker.engine.backend_tf", "jax": "worker.engine.backend_jax"}


def _backend_module() -> ModuleType:
    """The backend module for the Keras backend this process runs (fixed by KERAS_BACKEND when Keras is first
    imported). Only that module is imported, so a JAX process never loads TensorFlow."""
    name = keras.backend.backend()
    if name not in BACKEND_MODULES:
        raise EngineError(
            "engine_error",
            f"the engine does not run on Keras backend {name!r}; set KERAS_BACKEND to one of: "
            + ", ".join(BACKEND_MODULES),
        )
    return importlib.import_module(BACKEND_MODULES[name])


backend = _backend_module()

LOSS_NAMES = ("content", "style", "tv", "total")
# Standard deviation of the "noise" init in 0-255 pixel units, around mid-grey: enough variety for the style to
# grow from, small enough that no pixel starts far outside the valid range.
NOISE_INIT_STD = 48.0
# Seed of the noise image whose features set the floor of the relative losses' normalisers (losses.py).
REFERENCE_NOISE_SEED = 0


def resolve_precision(requested: str) -> str:
    """'auto' is bfloat16 where the hardware runs it fast, float32 elsewhere."""
    if requested == "auto":
        return "bfloat16" if backend.bfloat16_is_fast() else "float32"
    return requested


@dataclass
class _Job:
    """Everything derived from the inputs and params before optimisation starts."""

    params: StyleParams
    precision: str
    backbone: backbones.Backbone
    backbone_cached: bool
    content_layers: tuple[tuple[str, float], ...]
    style_layers: tuple[tuple[str, float], ...]
    extractor: Any
    layer_order: tuple[str, ...]
    geometry: JobGeometry  # scaled and padded sizes (shared/geometry.py)
    content_rgb: np.ndarray  # float32 0-255 at output size (original colours, used to recombine luminance)
    content_input: np.ndarray  # what the network sees as content (grey for luminance), padded if thin
    styles_input: list[np.ndarray]  # padded if thin
    # Tiles the passes when the untiled one would not fit the caller's memory budget (tiling.py); None: never.
    tiler: tiling.Tiler | None = None

    def tile_plan(self, image_hw: tuple[int, int]) -> tiling.TilePlan | None:
        return self.tiler.plan((int(image_hw[0]), int(image_hw[1]))) if self.tiler is not None else None


def _network(params: StyleParams, precision: str, weights: WeightSource | None = None) -> tuple[Any, ...]:
    """The (cached) backbone, the content and style layers ``params`` ask for, and a feature extractor truncated at
    the deepest of them: ``(backbone, cached, content_layers, style_layers, layer_order, extractor)``."""
    backbone, cached = backbones.get_backbone(params.backbone, params.pooling, precision, weights)
    content_layers = backbones.resolve_layers(backbone, params.content_layers, "content")
    style_layers = backbones.resolve_layers(backbone, params.style_layers, "style")
    # Extractor outputs in network order, each layer once (a layer may serve both losses).
    used = {name for name, _w in content_layers + style_layers}
    layer_order = tuple(name for name in backbone.layer_names if name in used)
    extractor = backbones.feature_extractor(backbone, layer_order)
    return backbone, cached, content_layers, style_layers, layer_order, extractor


def _prepare(
    content: np.ndarray,
    styles: list[np.ndarray],
    params: StyleParams,
    weights: WeightSource | None = None,
    memory_budget_bytes: int | None = None,
) -> _Job:
    content = images.check_image(content, "content")
    if not isinstance(styles, (list, tuple)):
        raise ParamError("bad_style_count", "styles must be a list of images", field="style")
    params.with_styles(len(styles))
    styles = [images.check_image(style, "style") for style in styles]
    # The API checks the same geometry at submission (shared/geometry.py): what it accepts runs here, and what
    # cannot run (a long side below the layers' minimum) fails here with the same 422 error before any work.
    geometry = check_job(params, content.shape[:2], [s.shape[:2] for s in styles])
    precision = resolve_precision(params.precision)
    backbone, cached, content_layers, style_layers, layer_order, extractor = _network(params, precision, weights)

    content_rgb, content_input = _content_views(content, params, geometry)
    # style_scale: the style image's long side relative to the output's (neural-style's -style_scale).
    styles_rgb = [images.resize(s, g.scaled_hw) for s, g in zip(styles, geometry.styles, strict=True)]

    if params.preserve_color == "luminance":
        styles_input = [color.match_luminance(color.luminance_as_rgb(s), content_input) for s in styles_rgb]
    elif params.preserve_color == "histogram":
        styles_input = [color.match_color_histogram(s, content_rgb) for s in styles_rgb]
    else:
        styles_input = styles_rgb
    # Colours are matched on the real pixels above; thin images are padded only now, for the network.
    content_input = images.pad(content_input, geometry.content)
    styles_input = [images.pad(s, g) for s, g in zip(styles_input, geometry.styles, strict=True)]
    return _Job(
        params,
        precision,
        backbone,
        cached,
        content_layers,
        style_layers,
        extractor,
        layer_order,
        geometry,
        content_rgb,
        content_input,
        styles_input,
        _tiler(backbone, layer_order, memory_budget_bytes),
    )


def _tiler(backbone: backbones.Backbone, layer_order: tuple[str, ...], budget_bytes: int | None) -> tiling.Tiler | None:
    """Tiling for a memory budget; None without a budget, or for a network that cannot be tiled exactly (a layer
    that mixes all positions, EfficientNetB7's squeeze-excitation): that one runs untiled."""
    if budget_bytes is None:
        return None
    try:
        return tiling.Tiler.for_network(backbone.model, layer_order, budget_bytes)
    except tiling.TilingUnsupported:
        return None


def _content_views(content: np.ndarray, params: StyleParams, geometry: JobGeometry) -> tuple[np.ndarray, np.ndarray]:
    """The content at output size in its original colours, and what the network sees of it (its luminance as grey
    RGB with ``preserve_color="luminance"``), not padded yet."""
    content_rgb = images.resize(content, geometry.content.scaled_hw)
    if params.preserve_color == "luminance":
        return content_rgb, color.luminance_as_rgb(content_rgb)
    return content_rgb, content_rgb


def with_content(job: _Job, content: np.ndarray) -> _Job:
    """``job`` with another content of the same size (a video's next frame): the same network, geometry and style
    inputs (with ``preserve_color`` the styles stay adapted to the first content), this content's own pixels."""
    content = images.check_image(content, "content")
    scaled_hw = images.scaled_shape(content.shape[:2], job.params.size)
    if scaled_hw != job.geometry.content.scaled_hw:
        raise ParamError("bad_image", f"content scales to {scaled_hw}; every frame must scale to the first's "
                         f"{job.geometry.content.scaled_hw}", field="content")
    content_rgb, content_input = _content_views(content, job.params, job.geometry)
    padded = images.pad(content_input, job.geometry.content)
    return dataclasses.replace(job, content_rgb=content_rgb, content_input=padded)


def _style_grams(job: _Job) -> tuple[np.ndarray, ...]:
    """Blend the styles' Gram matrices with the blend weights (neural-style's multi-style blending), or with
    ``style_mix=wasserstein`` take the Grams of the styles' W2 barycenters (wasserstein.py)."""
    index = {name: i for i, name in enumerate(job.layer_order)}
    blend = job.params.blend_weights(len(job.styles_input))
    if job.params.style_mix == "wasserstein" and wasserstein.mixes(blend):
        return _barycenter_grams(job, blend)
    grams = [np.zeros(0, np.float32)] * len(job.style_layers)
    wanted = tuple(index[name] for name, _w in job.style_layers)
    for weight, style in zip(blend, job.styles_input, strict=True):
        _maps, style_grams = _layer_stats(job, style, (), wanted)
        for i, (name, _w) in enumerate(job.style_layers):
            gram = style_grams[index[name]] * np.float32(weight)
            grams[i] = gram if grams[i].size == 0 else grams[i] + gram
    return tuple(grams)


def _barycenter_grams(job: _Job, blend: tuple[float, ...]) -> tuple[np.ndarray, ...]:
    """Each style's mean and covariance per style layer, from the Gram of its features with a ones channel (exact
    in tiles too), then the barycenter's Gram per layer: once per job, in float64 (wasserstein.py)."""
    forward = backend.features_fn(job.extractor, job.backbone.preprocess)
    wanted = tuple(job.layer_order.index(name) for name, _w in job.style_layers)

    def forward_with_ones(image: np.ndarray) -> list[np.ndarray]:
        return [wasserstein.with_ones_channel(out) if i in wanted else out for i, out in enumerate(forward(image))]

    strides = job.tiler.strides if job.tiler is not None else ()
    kept = [(weight, style) for weight, style in zip(blend, job.styles_input, strict=True) if weight > 0]
    per_style = []
    for _weight, style in kept:
        _maps, grams = tiling.layer_stats(forward_with_ones, backend.gram_fn, style, job.tile_plan(style.shape[:2]),
                                          strides, (), wanted)
        per_style.append([wasserstein.gaussian_from_ones_gram(grams[i]) for i in wanted])
    return wasserstein.barycenter_grams(per_style, [weight for weight, _style in kept])


def compute_style_targets(
    styles: list[np.ndarray],
    params: StyleParams,
    content: np.ndarray | None = None,
    *,
    weights: WeightSource | None = None,
    memory_budget_bytes: int | None = None,
) -> StyleTargets:
    """The blended style Grams for these styles and params, to pass to ``stylize(..., style_targets=)``.

    With ``preserve_color`` luminance or histogram the style is adapted to the content first, so pass the content
    too (targets computed without it are not reused for such jobs)."""
    job = _prepare(content if content is not None else styles[0], styles, params, weights, memory_budget_bytes)
    return StyleTargets(_key(job, styles, content), _style_grams(job))


def _key(job: _Job, styles: list[np.ndarray], content: np.ndarray | None) -> str:
    return targets_key(job.params, job.precision, job.style_layers, list(styles), content)


def _initial_image(job: _Job) -> np.ndarray:
    init = job.params.init
    if init == "content":
        return job.content_input.copy()
    if init == "style":
        return images.resize(job.styles_input[0], job.content_input.shape[:2])
    rng = np.random.default_rng(job.params.seed)
    noise = rng.normal(127.5, NOISE_INIT_STD, size=job.content_input.shape)
    return np.clip(noise, 0, 255).astype(np.float32)


def _given_initial_image(job: _Job, image: np.ndarray) -> np.ndarray:
    image = images.resize(images.check_image(image, "init_image"), job.geometry.content.scaled_hw)
    if job.params.preserve_color == "luminance":
        image = color.luminance_as_rgb(image)  # the optimisation runs on luminance in this mode
    return images.pad(image, job.geometry.content).astype(np.float32)


def _to_output(job: _Job, image: np.ndarray) -> np.ndarray:
    image = images.crop(image, job.geometry.content)  # a thin content was padded for the network
    if job.params.preserve_color == "luminance":
        image = color.recombine_luminance(image, job.content_rgb)
    return images.to_uint8(image)


def _losses_dict(losses: np.ndarray) -> dict[str, float]:
    return {name: float(value) for name, value in zip(LOSS_NAMES, losses, strict=True)}


def _reference_noise(shape: tuple[int, ...]) -> np.ndarray:
    """The noise init's distribution with a fixed seed: a textured image every layer responds to."""
    noise = np.random.default_rng(REFERENCE_NOISE_SEED).normal(127.5, NOISE_INIT_STD, size=shape)
    return np.clip(noise, 0, 255).astype(np.float32)


def _objective(
    job: _Job, grams: tuple[np.ndarray, ...], temporal: tuple[float, np.ndarray, np.ndarray] | None = None
) -> backend.Objective:
    """The traced loss and gradient for ``job``; ``temporal`` (weight, warped previous frame, mask, at the network's
    padded size) adds Ruder's temporal term (``ObjectiveSpec``), and the objective then returns five terms."""
    content_index = tuple(job.layer_order.index(name) for name, _w in job.content_layers)
    style_index = tuple(job.layer_order.index(name) for name, _w in job.style_layers)
    content_maps, _grams = _layer_stats(job, job.content_input, content_index, ())
    content_targets = [content_maps[i] for i in content_index]
    # The relative losses' normalisers, floored by what each layer gives for noise of the same size (losses.py
    # explains why): one forward pass per job, against hundreds of forward+backward passes of optimisation.
    reference_maps, reference_grams = _layer_stats(job, _reference_noise(job.content_input.shape), content_index,
                                                   style_index)
    content_scales = [
        losses.relative_scale(_mean_square(target), _mean_square(reference_maps[i]))
        for i, target in zip(content_index, content_targets, strict=True)
    ]
    style_scales = [
        losses.relative_scale(_mean_square(gram), _mean_square(reference_grams[i]))
        for i, gram in zip(style_index, grams, strict=True)
    ]
    del reference_maps, content_maps  # whole-image feature maps: freed before the optimisation starts
    params = job.params
    spec = ObjectiveSpec(
        content_index,
        style_index,
        content_targets,
        grams,
        [w for _n, w in job.content_layers],
        [w for _n, w in job.style_layers],
        [params.content_weight, params.style_weight, params.tv_weight],
        content_scales,
        style_scales,
        *(temporal if temporal is not None else ()),
    )
    plan = job.tile_plan(job.content_input.shape[:2]) if temporal is None else None  # video frames stay untiled
    if plan is not None:
        return tiling.TiledObjective(backend, job.extractor, job.backbone.preprocess, spec, plan, job.tiler.strides)
    return backend.Objective(job.extractor, job.backbone.preprocess, spec)


def _layer_stats(job: _Job, image: np.ndarray, map_indices: tuple[int, ...], gram_indices: tuple[int, ...]
                 ) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Feature maps and Gram matrices of some extractor outputs for ``image``, in tiles when the job's memory
    budget asks for them (the same numbers up to float rounding; tiling.py)."""
    forward = backend.features_fn(job.extractor, job.backbone.preprocess)
    strides = job.tiler.strides if job.tiler is not None else ()
    plan = job.tile_plan(image.shape[:2])
    return tiling.layer_stats(forward, backend.gram_fn, image, plan, strides, map_indices, gram_indices)


def _mean_square(array: np.ndarray) -> float:
    return float(np.mean(np.square(np.asarray(array, dtype=np.float64))))


def evaluate_losses(
    image: np.ndarray,
    content: np.ndarray,
    styles: list[np.ndarray],
    params: StyleParams,
    *,
    weights: WeightSource | None = None,
) -> dict[str, float]:
    """The losses (content, style, tv, total) of an output ``image`` (uint8, the output size of ``params``) for
    this content, styles and params, e.g. to score a bfloat16 run's output with ``precision="float32"``.

    A thin output is reflect-padded like the content was, so its losses are close to, not exactly, the run's
    (the run optimised the padding too)."""
    job = _prepare(content, styles, params, weights)
    image = images.check_image(image, "image").astype(np.float32)
    if image.shape[:2] != job.geometry.content.scaled_hw:
        raise ParamError(
            "bad_image",
            f"image is {image.shape[:2]}, the output size for these params is {job.geometry.content.scaled_hw}",
            field="image",
        )
    if params.preserve_color == "luminance":  # the optimiser saw luminance only; score what it optimised
        image = color.luminance_as_rgb(image)
    terms, _gradient = _objective(job, _style_grams(job))(images.pad(image, job.geometry.content))
    return _losses_dict(terms)


class _FirstCallTimer:
    """Passes evaluations through and remembers how long the first one took."""

    def __init__(self, objective: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]) -> None:
        self.objective = objective
        self.first_call_s: float | None = None

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.first_call_s is not None:
            return self.objective(image)
        started = time.perf_counter()
        out = self.objective(image)
        self.first_call_s = time.perf_counter() - started
        return out


@dataclass
class _Run:
    tracker: optimizers.Tracker  # best_image / best_losses: the result
    optimize_s: float
    trace_s: float  # the first evaluation's time when it traced the step (else 0)


def _optimize(
    job: _Job,
    objective: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    image0: np.ndarray,
    iterations: int,
    report: Callable[[int, np.ndarray, np.ndarray], bool],
) -> _Run:
    """Run ``job.params``' optimizer from ``image0`` for at most ``iterations`` evaluations (early stop, cancel by
    ``report`` returning True), then the tracker's final report; raises ``non_finite_loss`` if no evaluation was
    finite. ``stylize`` and each frame of ``video.stylize_frames`` share it."""
    params = job.params
    optimize_started = time.perf_counter()
    tracker = optimizers.Tracker(iterations, params.progress_every, report, params.early_stop_tol,
                                 params.early_stop_window)
    evaluate = _FirstCallTimer(objective)
    if params.optimizer == "lbfgs":
        optimizers.run_lbfgs(evaluate, image0, tracker)
    else:
        optimizers.run_adam(evaluate, image0, tracker, params.learning_rate)
    optimize_s = time.perf_counter() - optimize_started
    # The first job of a new size traces the graph inside its first evaluation (seconds, once per process and
    # size). It is reported apart so seconds_per_iteration is the steady per-iteration cost.
    trace_s = evaluate.first_call_s if objective.traced_on_first_call else 0.0
    if tracker.best_image is None:
        # Never expected (losses.py floors the normalisers, shared/geometry.py pads thin images), but a NaN image
        # must never become a result: fail with a code clients can tell apart from a crash.
        initial = _losses_dict(tracker.initial_losses[:4]) if tracker.initial_losses is not None else {}
        bad = [name for name, value in initial.items() if not np.isfinite(value)]
        raise EngineError(
            "non_finite_loss",
            "the loss was not finite at any iteration"
            + (f" (not finite at the start: {', '.join(bad)})" if bad else "")
            + "; lower the weights or the learning_rate, or try other images",
        )
    tracker.finish(tracker.best_image, tracker.best_losses)
    return _Run(tracker, optimize_s, trace_s)


def stylize(
    content: np.ndarray,
    styles: list[np.ndarray],
    params: StyleParams,
    on_progress: Callable[[Progress], bool | None] | None = None,
    *,
    style_targets: StyleTargets | None = None,
    weights: WeightSource | None = None,
    init_image: np.ndarray | None = None,
    memory_budget_bytes: int | None = None,
) -> StyleResult:
    """Stylize ``content`` (uint8 RGB, any aspect ratio) with ``styles``; see the package docstring.
    ``init_image`` (uint8 RGB) starts the optimisation from that picture instead of ``params.init``: a fast-style
    network's output refined by a few Gatys iterations (resized to the output size, padded like the content).
    ``memory_budget_bytes``: the most one loss-and-gradient pass may hold; a larger image runs in exact tiles
    (tiling.py; None: never tiled).

    With ``params.min_size`` below ``params.size`` the job runs coarse to fine (scales.py) over
    ``job_scale_sizes(params)``; an ``init_image`` always runs at the output size only, since the picture it
    gives is meant to be refined, not repainted from a thumbnail of it."""
    kwargs = {"style_targets": style_targets, "weights": weights, "memory_budget_bytes": memory_budget_bytes}
    sizes = job_scale_sizes(params) if init_image is None else [params.size]
    if len(sizes) == 1:
        return stylize_at_size(content, styles, params, on_progress, init_image=init_image, **kwargs)
    return scales.stylize_coarse_to_fine(stylize_at_size, content, styles, params, sizes, on_progress, **kwargs)


def stylize_at_size(
    content: np.ndarray,
    styles: list[np.ndarray],
    params: StyleParams,
    on_progress: Callable[[Progress], bool | None] | None = None,
    *,
    style_targets: StyleTargets | None = None,
    weights: WeightSource | None = None,
    init_image: np.ndarray | None = None,
    memory_budget_bytes: int | None = None,
) -> StyleResult:
    """One scale of ``stylize``: ``params.iterations`` at long side ``params.size`` (``params.min_size`` is not
    read)."""
    started = time.perf_counter()
    job = _prepare(content, styles, params, weights, memory_budget_bytes)
    targets_state = "computed"
    if style_targets is not None and style_targets.key == _key(job, styles, content):
        grams, targets_state = style_targets.grams, "reused"
    else:
        # Targets for other styles, size or layers would silently give the wrong style; recompute instead.
        grams = _style_grams(job)

    objective = _objective(job, grams)

    def report(iteration: int, image: np.ndarray, losses: np.ndarray) -> bool:
        if on_progress is None:
            return False
        progress = Progress(
            iteration,
            params.iterations,
            _losses_dict(losses),
            time.perf_counter() - started,
            lambda: _to_output(job, image),
        )
        return bool(on_progress(progress))

    image0 = _initial_image(job) if init_image is None else _given_initial_image(job, init_image)
    run = _optimize(job, objective, image0, params.iterations, report)
    tracker, optimize_s, trace_s = run.tracker, run.optimize_s, run.trace_s
    steady_iterations = tracker.iteration - (1 if trace_s else 0)
    output = _to_output(job, tracker.best_image)
    seconds = time.perf_counter() - started
    metrics = {
        "backbone": params.backbone,
        "weights": job.backbone.weights_label,
        "precision": job.precision,
        "size_px": [int(output.shape[0]), int(output.shape[1])],
        # The size the network ran at when the content was too thin for the layers (shared/geometry.py).
        "padded_to_px": list(job.geometry.content.padded_hw) if job.geometry.content.padded else None,
        "iterations": params.iterations,
        "iterations_run": tracker.iteration,
        "optimizer": params.optimizer,
        "seconds": seconds,
        "optimize_seconds": optimize_s,
        "trace_seconds": trace_s,
        "seconds_per_iteration": (optimize_s - trace_s) / steady_iterations
        if steady_iterations > 0
        else optimize_s / max(1, tracker.iteration),
        "losses": {"initial": _losses_dict(tracker.initial_losses), "final": _losses_dict(tracker.best_losses)},
        "total_variation": images.total_variation(output),
        "stopped_early_at": tracker.stopped_early_at,
        "cancelled": tracker.cancelled,
        "backbone_build_s": job.backbone.build_s,
        "backbone_cached": job.backbone_cached,
        "style_targets": targets_state,
        "style_mix": params.style_mix,
        "content_layers": dict(job.content_layers),
        "style_layers": dict(job.style_layers),
        "memory_budget_bytes": memory_budget_bytes,
        "estimated_pass_bytes": tiling.pass_bytes(job.content_input.shape[:2]),
        # None: one untiled pass; else the tile count, core size, halo and stride (tiling.py).
        "tiling": plan.metrics() if (plan := job.tile_plan(job.content_input.shape[:2])) is not None else None,
    }
    return StyleResult(output, metrics, tracker.cancelled)


def floor_step_fn(
    params: StyleParams,
    shape: tuple[int, int],
    content: np.ndarray | None = None,
    *,
    weights: WeightSource | None = None,
) -> Callable[[], np.ndarray]:
    """A callable doing one forward and backward pass of the backbone, truncated at the deepest layer ``params``
    use, on an image of ``shape`` (height, width), at the precision ``params`` resolve to. The bench times it as
    the floor an engine iteration is compared with. The first call traces; time the later ones.

    The pass runs on ``content`` resized to ``shape`` (the engine's first iterate with ``init=content``: the same
    input), or on uniform noise when no content is given."""
    backbone, _cached, _content, _style, _order, extractor = _network(
        params, resolve_precision(params.precision), weights
    )
    step = backend.floor_fn(extractor, backbone.preprocess)
    if content is not None:
        image = images.resize(images.check_image(content, "content"), shape)
    else:
        image = np.random.default_rng(0).uniform(0, 255, size=(*shape, 3)).astype(np.float32)
    return lambda: step(image)
