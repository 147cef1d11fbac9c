"""Training a fast-style network (Johnson et al. 2016) as pure computation: arrays in, a model and metrics out.

    from worker.engine.trainer import TrainParams, train
    result = train(styles, contents, TrainParams(size=256, steps=2000), on_progress=None,
                   on_checkpoint=None, resume=None, probe=None)
    result.model          # feedforward.FastStyleModel; feedforward.model_to_bytes(result.model, key=...) stores it
    result.state          # TrainState of the last step (``to_bytes`` / ``TrainState.from_bytes``)

- ``styles``: uint8 RGB arrays (blended by ``style_blend`` as in Gatys jobs); ``contents``: the training images,
  uint8 RGB of any sizes; ``probe``: the image previews show (default: the first content).
- ``on_progress(Progress) -> bool | None``: the engine's own ``Progress`` (``iteration`` is the step, ``iterations``
  the total, ``losses`` the mean of each weighted term over the steps since the last report, ``elapsed_s``
  training time including earlier runs of a resumed training, ``preview()`` the probe through the current network,
  computed only when asked and valid during the call). Called every ``progress_every`` steps and after the last;
  returning True stops at once (``result.cancelled``), exactly as ``stylize`` does, so ``worker.progress``'s
  ``ProgressReporter`` works unchanged.
- ``on_checkpoint(TrainState)``: every ``checkpoint_every`` steps (not after the last step: that is
  ``result.state``). The state holds the network's and Adam's variables, the step, the augmentation RNG's state,
  the loss history and elapsed time, plus a fingerprint of the params and inputs; ``train(..., resume=state)``
  continues at ``state.step + 1`` and produces, on the same machine, the same weights as an uninterrupted run
  (tested bit for bit on TensorFlow's CPU kernels).

The objective is the Gatys engine's own: the loss network is the cached backbone from ``backbones``, truncated at
the deepest layer used, and each image of a batch is scored by ``objective.total_loss`` (``losses.content_loss``,
``style_loss``, ``total_variation_loss``) against its own content features and the style Grams, computed once by
``engine.compute_style_targets``, with the relative losses' normalisers floored against the engine's reference
noise as ``engine._objective`` does; the batch loss is the mean over images. Only the gradient step is backend
specific (``backend_tf.TrainStep`` / ``backend_jax.TrainStep``).

Data: Johnson trained on 80k COCO images resized to 256x256 for two epochs. We train on what the caller has, so
augmentation matters more: every sample is a random square crop at a random scale (the image's short side scaled
to between 1 and ``max_scale`` times ``size``, then a ``size`` x ``size`` crop), flipped left-right with
probability 1/2, all drawn from one ``numpy`` PCG64 generator seeded by ``seed`` whose state is checkpointed.

Colour: ``preserve_color="luminance"`` trains on luminance only (content and style become grey, the style's
luminance matched to the training set's; Gatys et al. 2017, "Controlling perceptual factors", section 5) and the
model keeps the content's chroma when applied; ``"histogram"`` matches the style's colour mean and covariance to
the training set's before its Grams are taken, and the model matches each output to its content when applied.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from keras import ops
from PIL import Image

from shared.errors import EngineError, ParamError
from shared.train_params import RESUMABLE_CHANGES, TrainParams
from shared.weights import WeightSource
from worker.engine import color, engine, feedforward, images, losses, objective
from worker.engine.engine import Progress
from worker.engine.feedforward import FastStyleModel

LOSS_NAMES = engine.LOSS_NAMES
STATE_FORMAT = "train_state"
# The parameters are shared with the API (bounds and defaults declared once, shared/train_params.py).
_RESUMABLE_CHANGES = RESUMABLE_CHANGES


@dataclass
class TrainState:
    """Everything needed to continue a training: serialise with ``to_bytes``, restore with ``from_bytes``."""

    step: int
    weights: list[tuple[str, np.ndarray]]
    optimizer: list[tuple[str, np.ndarray]]
    rng: dict[str, Any]  # numpy PCG64 bit_generator.state
    elapsed_s: float
    history: list[dict[str, float]]
    fingerprint: dict[str, Any]  # params (less what may change on resume) and digests of the inputs

    def to_bytes(self, *, key: bytes | None = None) -> bytes:
        arrays = [(f"net/{n}", a) for n, a in self.weights] + [(f"opt/{n}", a) for n, a in self.optimizer]
        params = self.fingerprint["params"]
        meta = {"step": self.step, "rng": self.rng, "elapsed_s": self.elapsed_s, "history": self.history,
                "fingerprint": self.fingerprint}
        return feedforward.pack(
            STATE_FORMAT, arrays,
            architecture={"width": params["width"], "residual_blocks": params["residual_blocks"],
                          "output": feedforward.OUTPUT_ACTIVATION},
            apply={"preserve_color": params["preserve_color"]}, meta=meta, key=key,
        )

    @classmethod
    def from_bytes(cls, data: bytes, *, key: bytes | None = None) -> TrainState:
        """The same refusals as ``feedforward.model_from_bytes`` (and ``model_corrupt`` for a bad meta block)."""
        header, arrays = feedforward.unpack(data, STATE_FORMAT, key=key)
        meta = header["meta"]
        try:
            step, rng, elapsed, history, fingerprint = (
                meta["step"], meta["rng"], meta["elapsed_s"], meta["history"], meta["fingerprint"])
            ok = (isinstance(step, int) and step >= 0 and isinstance(rng, dict) and isinstance(elapsed, (int, float))
                  and isinstance(history, list) and isinstance(fingerprint, dict)
                  and isinstance(fingerprint.get("params"), dict))
        except (KeyError, TypeError):
            ok = False
        if not ok:
            raise EngineError("model_corrupt", "training state lacks step, rng, elapsed_s, history or fingerprint")
        weights = [(n[4:], a) for n, a in arrays if n.startswith("net/")]
        optimizer = [(n[4:], a) for n, a in arrays if n.startswith("opt/")]
        if len(weights) + len(optimizer) != len(arrays):
            raise EngineError("model_corrupt", "training state holds tensors that are neither network nor optimizer")
        return cls(step, weights, optimizer, rng, float(elapsed), history, fingerprint)


@dataclass
class TrainResult:
    model: FastStyleModel
    metrics: dict[str, Any]
    cancelled: bool
    state: TrainState


# --- data --------------------------------------------------------------------------------------------------------


def _digest(arrays: Sequence[np.ndarray]) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        array = np.asarray(array)
        digest.update(str(array.shape).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _prepare_contents(contents: Sequence[np.ndarray], params: TrainParams) -> list[np.ndarray]:
    """Each training image once, resized so its short side is ``size * max_scale`` (uint8: a 64-image set at
    256 px stays near 40 MB), in luminance for ``preserve_color="luminance"``."""
    if not isinstance(contents, (list, tuple)) or not contents:
        raise ParamError("bad_image", "give at least one training image", field="train")
    short_px = max(params.size, round(params.size * params.max_scale))
    out = []
    for i, content in enumerate(contents):
        content = images.check_image(content, f"train[{i}]")
        height, width = content.shape[:2]
        scale = short_px / min(height, width)
        shape = (max(short_px, round(height * scale)), max(short_px, round(width * scale)))
        resized = _resize_uint8(content, shape)
        if params.preserve_color == "luminance":
            resized = images.to_uint8(color.luminance_as_rgb(resized.astype(np.float32)))
        out.append(resized)
    return out


def _resize_uint8(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Pillow's bilinear resize (antialiased when shrinking, like ``images.resize``). Not ``images.resize``: on
    Keras' JAX backend every new crop shape would compile a resize program, and random crops have many shapes."""
    if tuple(image.shape[:2]) == tuple(shape):
        return np.ascontiguousarray(image)
    resized = Image.fromarray(np.ascontiguousarray(image)).resize((shape[1], shape[0]), Image.Resampling.BILINEAR)
    return np.asarray(resized)


def _sample_batch(rng: np.random.Generator, pool: list[np.ndarray], params: TrainParams) -> np.ndarray:
    """``batch_size`` augmented ``size`` x ``size`` crops, float32 0-255; draws only from ``rng``."""
    batch = np.empty((params.batch_size, params.size, params.size, 3), np.float32)
    for b in range(params.batch_size):
        image = pool[int(rng.integers(len(pool)))]
        height, width = image.shape[:2]
        # Scale s in [1, max_scale]: the crop covers size*max_scale/s pre-resized pixels, resized to size.
        scale = float(rng.uniform(1.0, params.max_scale))
        side = min(height, width, max(params.size, round(min(height, width) / scale)))
        top = int(rng.integers(height - side + 1))
        left = int(rng.integers(width - side + 1))
        crop = _resize_uint8(image[top : top + side, left : left + side], (params.size, params.size))
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        batch[b] = crop
    return batch


def _styles_for_training(styles: Sequence[np.ndarray], pool: list[np.ndarray], params: TrainParams) -> list:
    """The style images the Grams are taken from, adapted to the training set's colours for preserve_color."""
    if not isinstance(styles, (list, tuple)):
        raise ParamError("bad_style_count", "styles must be a list of images", field="style")
    styles = [images.check_image(s, "style") for s in styles]
    if params.preserve_color == "none":
        return styles
    # The colour statistics of the whole training set (a subsample of pixels keeps this cheap for big sets).
    pixels = np.concatenate([p.reshape(-1, 3)[:: max(1, p.size // 3 // 20000)] for p in pool]).astype(np.float32)
    if params.preserve_color == "luminance":
        return [images.to_uint8(color.match_luminance(color.luminance_as_rgb(s.astype(np.float32)), pixels))
                for s in styles]
    return [images.to_uint8(color.match_color_histogram(s.astype(np.float32), pixels)) for s in styles]


def _fingerprint(params: TrainParams, styles: Sequence[np.ndarray], contents: Sequence[np.ndarray]) -> dict:
    fixed = {k: v for k, v in params.to_dict().items() if k not in _RESUMABLE_CHANGES}
    return {"params": fixed, "styles": _digest(styles), "contents": _digest(contents),
            "keras_backend": keras.backend.backend()}


# --- the loss ------------------------------------------------------------------------------------------------------


def _batch_loss(content_index: tuple[int, ...], style_index: tuple[int, ...]) -> Callable:
    """``loss_fn`` for ``TrainStep``: every image of the batch scored by the Gatys objective, terms averaged."""

    def loss_fn(features, content_features, output, style_grams, content_lw, style_lw, loss_w, content_floors,
                style_scales):
        per_image = []
        for b in range(output.shape[0]):  # the batch size is static in a traced step
            outputs_b = [f[b : b + 1] for f in features]
            targets_b = [content_features[i][b : b + 1] for i in content_index]
            # losses.relative_scale in the graph: each crop's own mean square, floored as the Gatys engine floors it
            # (a crop of flat sky would otherwise make its content loss explode).
            content_scales = [ops.maximum(ops.mean(ops.square(t)), content_floors[k]) for k, t in enumerate(targets_b)]
            terms = objective.total_loss(outputs_b, output[b : b + 1], content_index, style_index, targets_b,
                                         style_grams, content_lw, style_lw, loss_w,
                                         content_scales, [style_scales[k] for k in range(len(style_index))])
            per_image.append(ops.stack(terms))
        mean = ops.mean(ops.stack(per_image), axis=0)
        return mean[0], mean[1], mean[2], mean[3]

    return loss_fn


@dataclass
class LossSetup:
    """The frozen half of a training step: the loss network and the arguments of ``_batch_loss``. Built once per
    training by ``loss_setup``; the video fine-tuning (``worker/engine/video_fast.py``) adds its temporal term to
    the same objective through it."""

    backbone: Any
    extractor: Any
    content_layers: tuple[tuple[str, float], ...]
    style_layers: tuple[tuple[str, float], ...]
    content_index: tuple[int, ...]
    style_index: tuple[int, ...]
    loss_args: tuple[Any, ...]  # grams, content / style layer weights, term weights, content floors, style scales

    def batch_loss(self) -> Callable:
        """``loss_fn`` for ``TrainStep``: every image of the batch scored by the Gatys objective, terms averaged."""
        return _batch_loss(self.content_index, self.style_index)


def loss_setup(style_images: Sequence[np.ndarray], params: TrainParams,
               weights: WeightSource | None = None) -> LossSetup:
    """The loss network (the cached backbone, truncated), the style Grams of ``style_images`` (already adapted by
    ``_styles_for_training``) and the relative losses' normalisers, for ``params``."""
    style_params = params.style_params()
    style_params.with_styles(len(style_images))
    grams = engine.compute_style_targets(list(style_images), style_params, weights=weights).grams
    backbone, _cached, content_layers, style_layers, layer_order, extractor = engine._network(
        style_params, "float32", weights
    )
    content_index = tuple(layer_order.index(name) for name, _w in content_layers)
    style_index = tuple(layer_order.index(name) for name, _w in style_layers)
    # The relative losses' floors from the loss network's response to the engine's reference noise at the crop
    # size, exactly as engine._objective computes them for a Gatys job (losses.py explains the floor).
    forward = engine.backend.features_fn(extractor, backbone.preprocess)
    reference = forward(engine._reference_noise((params.size, params.size, 3)))
    content_floors = [losses.relative_scale(0.0, engine._mean_square(reference[i])) for i in content_index]
    style_scales = [
        losses.relative_scale(engine._mean_square(g), engine._mean_square(engine.backend.gram_fn(reference[i])))
        for i, g in zip(style_index, grams, strict=True)
    ]
    # Arrays (not lists of floats): the backends map over the structure's leaves.
    loss_args = (
        [np.asarray(g, np.float32) for g in grams],
        np.array([w for _n, w in content_layers], np.float32),
        np.array([w for _n, w in style_layers], np.float32),
        np.array([params.content_weight, params.style_weight, params.tv_weight], np.float32),
        np.array(content_floors, np.float32),
        np.array(style_scales, np.float32),
    )
    return LossSetup(backbone, extractor, tuple(content_layers), tuple(style_layers), content_index, style_index,
                     loss_args)


# --- training ------------------------------------------------------------------------------------------------------


def _center_probe(image: np.ndarray, size_px: int) -> np.ndarray:
    image = images.check_image(image, "probe")
    return images.to_uint8(images.resize(image, images.scaled_shape(image.shape, size_px)))


def _optimizer(params: TrainParams) -> keras.optimizers.Optimizer:
    # Named explicitly so its variable paths are the same in every process (checkpoints match them by name).
    return keras.optimizers.Adam(learning_rate=params.learning_rate, name="adam")


def _check_resume(state: TrainState, fingerprint: dict) -> None:
    if not isinstance(state, TrainState):
        raise EngineError("bad_checkpoint", f"resume must be a TrainState, got {type(state).__name__}")
    if state.fingerprint != fingerprint:
        changed = sorted(
            k for k in set(state.fingerprint["params"]) | set(fingerprint["params"])
            if state.fingerprint["params"].get(k) != fingerprint["params"].get(k)
        ) + [k for k in ("styles", "contents", "keras_backend") if state.fingerprint.get(k) != fingerprint.get(k)]
        raise EngineError("bad_checkpoint", "the checkpoint belongs to another training (differs in: "
                          + ", ".join(changed) + "); only steps, checkpoint_every and progress_every may change")


def _restore(state: TrainState, model: FastStyleModel, optimizer) -> None:
    feedforward.assign_weights(model.net.weights, state.weights, "checkpoint")
    feedforward.assign_weights(optimizer.variables, state.optimizer, "checkpoint optimizer")


def train(
    styles: Sequence[np.ndarray],
    contents: Sequence[np.ndarray],
    params: TrainParams,
    on_progress: Callable[[Progress], bool | None] | None = None,
    *,
    on_checkpoint: Callable[[TrainState], None] | None = None,
    resume: TrainState | None = None,
    probe: np.ndarray | None = None,
    weights: WeightSource | None = None,
) -> TrainResult:
    """Train a fast-style network on ``contents`` for ``styles``; see the module docstring. ``weights`` is where the
    loss network's weights come from, as for ``stylize`` (default: the engine's)."""
    started = time.perf_counter()
    fingerprint = _fingerprint(params, styles, contents)
    if resume is not None:
        _check_resume(resume, fingerprint)  # before any work: a wrong checkpoint fails in milliseconds
    pool = _prepare_contents(contents, params)
    style_images = _styles_for_training(styles, pool, params)
    setup = loss_setup(style_images, params, weights)
    backbone, content_layers, style_layers = setup.backbone, setup.content_layers, setup.style_layers

    model = FastStyleModel.new(params.width, params.residual_blocks, params.seed, params.preserve_color)
    optimizer = _optimizer(params)
    optimizer.build(model.net.trainable_variables)
    rng = np.random.default_rng(params.seed)
    step, elapsed_before, history = 0, 0.0, []
    if resume is not None:
        _restore(resume, model, optimizer)
        rng.bit_generator.state = resume.rng
        step, elapsed_before, history = resume.step, resume.elapsed_s, list(resume.history)
    resumed_from = step

    train_step = engine.backend.TrainStep(model.net, setup.extractor, backbone.preprocess, optimizer,
                                          setup.batch_loss(), setup.loss_args)
    probe_image = _center_probe(probe if probe is not None else contents[0], params.size)
    setup_s = time.perf_counter() - started

    def state_now() -> TrainState:
        train_step.sync()
        return TrainState(
            step,
            [(v.path, v.numpy()) for v in model.net.weights],
            [(v.path, v.numpy()) for v in optimizer.variables],
            rng.bit_generator.state,
            elapsed_before + time.perf_counter() - started,
            list(history),
            fingerprint,
        )

    def preview() -> np.ndarray:
        train_step.sync()
        return feedforward.stylize_fast(model, probe_image)

    cancelled = False
    window: list[np.ndarray] = []
    first_losses: np.ndarray | None = None
    first_step_s = 0.0
    loop_started = time.perf_counter()
    while step < params.steps:
        step_started = time.perf_counter()
        terms = train_step(_sample_batch(rng, pool, params))
        if step == resumed_from:
            first_step_s = time.perf_counter() - step_started  # includes tracing the step
        step += 1
        if not np.isfinite(terms[3]):
            raise EngineError("engine_error", f"the training loss is not finite at step {step}; lower the "
                              "learning_rate or the weights")
        first_losses = terms if first_losses is None else first_losses
        window.append(terms)
        if step % params.progress_every == 0 or step == params.steps:
            mean = np.mean(window, axis=0)
            window = []
            reported = {name: float(v) for name, v in zip(LOSS_NAMES, mean, strict=True)}
            elapsed = elapsed_before + time.perf_counter() - started
            history.append({"step": step, "elapsed_s": round(elapsed, 3), **reported})
            if on_progress is not None and on_progress(Progress(step, params.steps, reported, elapsed, preview)):
                cancelled = True
                break
        if on_checkpoint is not None and params.checkpoint_every and step % params.checkpoint_every == 0 \
                and step < params.steps:
            on_checkpoint(state_now())

    state = state_now()
    loop_s = time.perf_counter() - loop_started
    steps_run = step - resumed_from
    model.meta = {
        "trainer": "johnson2016-perceptual",
        "trained_steps": step,
        "params": params.to_dict(),
        "styles": fingerprint["styles"],
        "weights": backbone.weights_label,
        "final_losses": history[-1] if history else None,
    }
    metrics = {
        "steps": params.steps,
        "step": step,
        "steps_run": steps_run,
        "resumed_from": resumed_from,
        "cancelled": cancelled,
        "seconds": time.perf_counter() - started,
        "setup_seconds": setup_s,
        "first_step_seconds": first_step_s,
        "seconds_per_step": (loop_s - first_step_s) / (steps_run - 1) if steps_run > 1 else loop_s,
        "elapsed_s": state.elapsed_s,
        "losses": {
            "first_step": {n: float(v) for n, v in zip(LOSS_NAMES, first_losses, strict=True)}
            if first_losses is not None else None,
            "final": history[-1] if history else None,
        },
        "history": history,
        "backbone": params.backbone,
        "weights": backbone.weights_label,
        "parameters": int(model.net.count_params()),
        "width": params.width,
        "residual_blocks": params.residual_blocks,
        "size_px": params.size,
        "batch_size": params.batch_size,
        "keras_backend": keras.backend.backend(),
        "content_layers": dict(content_layers),
        "style_layers": dict(style_layers),
    }
    return TrainResult(model, metrics, cancelled, state)


__all__ = ["LossSetup", "TrainParams", "TrainResult", "TrainState", "loss_setup", "train"]
