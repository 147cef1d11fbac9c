"""The JAX-specific part of the engine: jitted loss-and-gradient and forward-only feature functions.

The twin of ``backend_tf`` (same functions, same results) for Keras' JAX backend (``KERAS_BACKEND=jax``), so the
engine can be timed on a machine that has JAX and a GPU but no TensorFlow. Nothing here imports TensorFlow.

The backbone is called with ``stateless_call``: its weights are *arguments* of the jitted function, not constants
captured by closing over the model, so XLA does not embed 80 MB of VGG19 kernels in each compiled program and
compiling stays a matter of seconds.

Recompiling: one jitted function per (feature extractor, content/style layer indices), as in backend_tf. Targets,
weights and the backbone's variables are arguments, so a second job with the same image size reuses the compiled
program; a new size compiles once more. Unlike ``tf.function(reduce_retracing=True)``, ``jax.jit`` compiles the
forward-only feature function once per input shape (content, and each style image's shape).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from worker.engine import losses, objective
from worker.engine.hardware import cpu_has_amx_bf16
from worker.engine.objective import ObjectiveSpec

# Ampere (8.0) and later have bfloat16 tensor cores; older GPUs emulate it.
BF16_MIN_COMPUTE_CAPABILITY = (8, 0)

_lock = threading.Lock()
_step_fns: dict[tuple, Callable] = {}
_feature_fns: dict[tuple, Callable] = {}
_floor_fns: dict[tuple, Callable] = {}
# Python traces of each kind of jitted function. The counters are bumped inside the traced functions, so they move
# only when jax.jit misses its cache and traces (and compiles) again: an honest count for tests and metrics.
_traces = {"step": 0, "features": 0, "floor": 0}


def _as_list(outputs) -> list:
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def _variables(extractor) -> tuple[list, list]:
    """The extractor's current weights as arrays, in the order ``stateless_call`` expects them."""
    return (
        [v.value for v in extractor.trainable_variables],
        [v.value for v in extractor.non_trainable_variables],
    )


def _forward(extractor, preprocess: Callable, variables: tuple[list, list], image) -> list:
    """Every extractor output for one ``(H, W, 3)`` image, weights taken from ``variables`` (traceable)."""
    trainable, non_trainable = variables
    outputs, _state = extractor.stateless_call(trainable, non_trainable, preprocess(image[None]), training=False)
    return _as_list(outputs)


def features_fn(extractor, preprocess: Callable) -> Callable[[np.ndarray], list[np.ndarray]]:
    """Forward pass only: float32 RGB 0-255 ``(H, W, 3)`` -> float32 feature maps of every extractor output."""
    key = (id(extractor),)
    with _lock:
        if key not in _feature_fns:

            @jax.jit
            def forward(variables, image):
                _traces["features"] += 1
                return [out.astype(jnp.float32) for out in _forward(extractor, preprocess, variables, image)]

            _feature_fns[key] = forward
    fn = _feature_fns[key]
    variables = _variables(extractor)
    return lambda image: [np.asarray(out) for out in fn(variables, jnp.asarray(image, jnp.float32))]


def gram_fn(features: np.ndarray) -> np.ndarray:
    return np.asarray(losses.gram_matrix(jnp.asarray(features)))


class Objective:
    """Loss and gradient of one job at one image size; the same contract as ``backend_tf.Objective``."""

    def __init__(self, extractor, preprocess: Callable, spec: ObjectiveSpec) -> None:
        key = spec.step_key(extractor)
        with _lock:
            if key not in _step_fns:
                _step_fns[key] = _make_step(extractor, preprocess, spec.content_index, spec.style_index)
        self.step = _step_fns[key]
        # Put on the device once per job: every iteration then passes the same arrays (no host-to-device copies).
        self._args = (_variables(extractor), *spec.step_args(lambda array: jnp.asarray(array, jnp.float32)))
        self.traced_on_first_call = False
        self._calls = 0

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._calls += 1
        if self._calls == 1:
            traces_before = _traces["step"]
        terms, grad = self.step(jnp.asarray(image, jnp.float32), *self._args)
        # np.asarray waits for the device (jax dispatches asynchronously), so timings include the work.
        terms, grad = np.asarray(terms, np.float64), np.asarray(grad)
        if self._calls == 1:
            self.traced_on_first_call = _traces["step"] > traces_before
        return terms, grad


def _make_step(extractor, preprocess, content_index, style_index):
    def total_loss(image, variables, *targets_and_weights):
        outputs = _forward(extractor, preprocess, variables, image)
        terms = objective.total_loss(outputs, image, content_index, style_index, *targets_and_weights)
        return terms[3], jnp.stack(terms)

    # Differentiates with respect to the image only (argument 0): no gradient is computed for the weights.
    loss_and_grad = jax.value_and_grad(total_loss, has_aux=True)

    @jax.jit
    def step(image, *args):
        _traces["step"] += 1
        (_total, terms), grad = loss_and_grad(image, *args)
        return terms, grad

    return step


_image_grad_fns: dict[tuple, Callable] = {}


def image_grad_fn(extractor, preprocess: Callable, loss_fn: Callable, key: tuple
                  ) -> Callable[..., tuple[float, np.ndarray]]:
    """The twin of ``backend_tf.image_grad_fn``: ``(image, *args) -> (loss, d loss / d image)`` for
    ``loss_fn(outputs, image, *args)``, jitted once per (extractor, ``key``) and input shapes."""
    full_key = (id(extractor), *key)
    with _lock:
        if full_key not in _image_grad_fns:

            def value(image, variables, *args):
                return loss_fn(_forward(extractor, preprocess, variables, image), image, *args)

            _image_grad_fns[full_key] = jax.jit(jax.value_and_grad(value))
    fn = _image_grad_fns[full_key]
    variables = _variables(extractor)

    def call(image: np.ndarray, *args) -> tuple[float, np.ndarray]:
        arrays = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), list(args))
        loss, grad = fn(jnp.asarray(image, jnp.float32), variables, *arrays)
        return float(loss), np.asarray(grad)

    return call


def floor_fn(extractor, preprocess: Callable) -> Callable[[np.ndarray], np.ndarray]:
    """The bench's floor pass; the same contract as ``backend_tf.floor_fn``."""
    key = (id(extractor),)
    with _lock:
        if key not in _floor_fns:

            def trivial_loss(image, variables):
                outputs = _forward(extractor, preprocess, variables, image)
                return sum(jnp.sum(out.astype(jnp.float32)) for out in outputs)

            floor_grad = jax.grad(trivial_loss)

            @jax.jit
            def floor(image, variables):
                _traces["floor"] += 1
                return floor_grad(image, variables)

            _floor_fns[key] = floor
    fn = _floor_fns[key]
    variables = _variables(extractor)
    return lambda image: np.asarray(fn(jnp.asarray(image, jnp.float32), variables))


class TrainStep:
    """One Adam step of a feed-forward network through the frozen loss network; the same contract as
    ``backend_tf.TrainStep``.

    The network, its optimizer and the loss network run through ``stateless_call`` / ``stateless_apply`` with all
    their variables as arguments of one jitted step (compiled once per batch shape). The updated network and
    optimizer state stay on the device between steps; ``sync()`` writes them back into the Keras variables (before a
    preview, a checkpoint or the end of training).
    """

    def __init__(self, net, extractor, preprocess: Callable, optimizer, loss_fn: Callable, loss_args) -> None:
        if not optimizer.built:
            optimizer.build(net.trainable_variables)
        self.net, self.optimizer = net, optimizer
        self._extractor_vars = _variables(extractor)
        self._args = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), list(loss_args))
        self._state = (
            [v.value for v in net.trainable_variables],
            [v.value for v in net.non_trainable_variables],
            [v.value for v in optimizer.variables],
        )

        def features(variables, images):
            trainable, non_trainable = variables
            outputs, _ = extractor.stateless_call(trainable, non_trainable, preprocess(images), training=False)
            return _as_list(outputs)

        def loss(trainable, non_trainable, extractor_vars, batch, args):
            output, non_trainable = net.stateless_call(trainable, non_trainable, batch, training=True)
            content = [jax.lax.stop_gradient(f) for f in features(extractor_vars, batch)]
            terms = jnp.stack(loss_fn(features(extractor_vars, output), content, output, *args))
            return terms[3], (terms, non_trainable)

        loss_and_grad = jax.value_and_grad(loss, has_aux=True)  # with respect to the network's trainable weights

        @jax.jit
        def step(state, extractor_vars, batch, args):
            trainable, non_trainable, optimizer_vars = state
            (_total, (terms, non_trainable)), grads = loss_and_grad(
                trainable, non_trainable, extractor_vars, batch, args
            )
            trainable, optimizer_vars = optimizer.stateless_apply(optimizer_vars, grads, trainable)
            return (trainable, non_trainable, optimizer_vars), terms

        self._step = step

    def __call__(self, batch: np.ndarray, extra: tuple = ()) -> np.ndarray:
        """``extra``: per-step arrays passed to ``loss_fn`` after ``loss_args`` (as ``backend_tf.TrainStep``)."""
        args = self._args + [jnp.asarray(e) for e in extra]
        self._state, terms = self._step(self._state, self._extractor_vars, jnp.asarray(batch, jnp.float32), args)
        return np.asarray(terms, np.float64)

    def sync(self) -> None:
        """Write the device state back into the network's and the optimizer's Keras variables."""
        trainable, non_trainable, optimizer_vars = self._state
        pairs = (
            (self.net.trainable_variables, trainable),
            (self.net.non_trainable_variables, non_trainable),
            (self.optimizer.variables, optimizer_vars),
        )
        for variables, values in pairs:
            for variable, value in zip(variables, values, strict=True):
                variable.assign(value)


def tracing_counts() -> dict[str, int]:
    """How often each kind of cached function has been traced, i.e. compiled (tests use it to prove we do not
    recompile per job)."""
    return dict(_traces)


def bfloat16_is_fast() -> bool:
    """True where bfloat16 runs the backbone faster than float32: a GPU of compute capability 8.0+ (Ampere and
    later), or a CPU with AMX-BF16 tiles (the same rule and measurements as ``backend_tf.bfloat16_is_fast``)."""
    for device in jax.devices():
        if device.platform == "gpu" and _compute_capability(device) >= BF16_MIN_COMPUTE_CAPABILITY:
            return True
    return cpu_has_amx_bf16()


def _compute_capability(device) -> tuple[int, ...]:
    """jax's CUDA devices say ``compute_capability = "9.0"``; ROCm and others say nothing, which reads as (0,)."""
    text = str(getattr(device, "compute_capability", "0"))
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        return (0,)
