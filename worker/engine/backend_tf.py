"""The TensorFlow-specific part of the engine: traced loss-and-gradient and forward-only feature functions.

Everything backend-specific lives here (``tf.function``, ``tf.GradientTape``); the losses themselves are
``keras.ops`` in ``losses.py``. ``backend_jax.py`` provides the same functions with ``jax.jit`` and
``jax.value_and_grad``.

Retracing: one ``tf.function`` per (feature extractor, content/style layer indices). Targets and weights are passed
as tensor *arguments*, not captured constants, so a second job with the same image size reuses the traced graph
(``tracing_count`` lets tests check that); a new size traces once more.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from worker.engine import losses, objective
from worker.engine.hardware import cpu_has_amx_bf16
from worker.engine.objective import ObjectiveSpec

_lock = threading.Lock()
_step_fns: dict[tuple, tf.types.experimental.PolymorphicFunction] = {}
_feature_fns: dict[tuple, tf.types.experimental.PolymorphicFunction] = {}
_floor_fns: dict[tuple, tf.types.experimental.PolymorphicFunction] = {}


def _as_list(outputs) -> list:
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def features_fn(extractor, preprocess: Callable) -> Callable[[np.ndarray], list[np.ndarray]]:
    """Forward pass only: float32 RGB 0-255 ``(H, W, 3)`` -> float32 feature maps of every extractor output."""
    key = (id(extractor),)
    with _lock:
        if key not in _feature_fns:

            @tf.function(reduce_retracing=True)
            def forward(image):
                outputs = _as_list(extractor(preprocess(image[None]), training=False))
                return [tf.cast(out, tf.float32) for out in outputs]

            _feature_fns[key] = forward
    fn = _feature_fns[key]
    return lambda image: [out.numpy() for out in fn(tf.convert_to_tensor(image, tf.float32))]


def gram_fn(features: np.ndarray) -> np.ndarray:
    return losses.gram_matrix(tf.convert_to_tensor(features)).numpy()


class Objective:
    """Loss and gradient of one job at one image size.

    ``__call__(image float32 (H, W, 3))`` returns ``(losses float64[4] = content, style, tv, total;
    gradient float32 (H, W, 3))``. One call is one forward and one backward pass of the backbone.
    """

    def __init__(self, extractor, preprocess: Callable, spec: ObjectiveSpec) -> None:
        key = spec.step_key(extractor)
        with _lock:
            if key not in _step_fns:
                _step_fns[key] = _make_step(extractor, preprocess, spec.content_index, spec.style_index)
        self.step = _step_fns[key]
        # Converted once per job: every iteration then passes the same tensors (no host-to-device copies).
        self._args = spec.step_args(lambda array: tf.constant(array, tf.float32))
        self.traced_on_first_call = False
        self._calls = 0

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._calls += 1
        if self._calls == 1:
            traces_before = self.step.experimental_get_tracing_count()
        terms, grad = self.step(tf.convert_to_tensor(image, tf.float32), *self._args)
        if self._calls == 1:
            self.traced_on_first_call = self.step.experimental_get_tracing_count() > traces_before
        return terms.numpy().astype(np.float64), grad.numpy()


def _make_step(extractor, preprocess, content_index, style_index):
    @tf.function
    def step(image, *targets_and_weights):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(image)
            outputs = _as_list(extractor(preprocess(image[None]), training=False))
            terms = objective.total_loss(outputs, image, content_index, style_index, *targets_and_weights)
        grad = tape.gradient(terms[3], image)
        return tf.stack(terms), grad

    return step


_image_grad_fns: dict[tuple, tf.types.experimental.PolymorphicFunction] = {}


def image_grad_fn(extractor, preprocess: Callable, loss_fn: Callable, key: tuple
                  ) -> Callable[..., tuple[float, np.ndarray]]:
    """``(image (H, W, 3), *args) -> (loss, d loss / d image)`` for ``loss_fn(outputs, image, *args)`` (a scalar in
    ``keras.ops``; ``args`` nested lists of float32 arrays). One traced function per (extractor, ``key``): the
    caller's ``key`` names what ``loss_fn`` depends on besides its arguments (the tiled objective's pass 2)."""
    full_key = (id(extractor), *key)
    with _lock:
        if full_key not in _image_grad_fns:

            @tf.function(reduce_retracing=True)
            def value_and_grad(image, *args):
                with tf.GradientTape(watch_accessed_variables=False) as tape:
                    tape.watch(image)
                    outputs = _as_list(extractor(preprocess(image[None]), training=False))
                    value = loss_fn(outputs, image, *args)
                return value, tape.gradient(value, image)

            _image_grad_fns[full_key] = value_and_grad
    fn = _image_grad_fns[full_key]

    def call(image: np.ndarray, *args) -> tuple[float, np.ndarray]:
        tensors = tf.nest.map_structure(lambda a: tf.convert_to_tensor(a, tf.float32), list(args))
        value, grad = fn(tf.convert_to_tensor(image, tf.float32), *tensors)
        return float(value), grad.numpy()

    return call


def floor_fn(extractor, preprocess: Callable) -> Callable[[np.ndarray], np.ndarray]:
    """One forward and one backward pass of the extractor (to its deepest output) with a trivial loss: the floor
    that an engine iteration is timed against. Same network, precision and preprocessing as ``Objective``."""
    key = (id(extractor),)
    with _lock:
        if key not in _floor_fns:

            @tf.function
            def floor(image):
                with tf.GradientTape(watch_accessed_variables=False) as tape:
                    tape.watch(image)
                    outputs = _as_list(extractor(preprocess(image[None]), training=False))
                    loss = tf.add_n([tf.reduce_sum(tf.cast(out, tf.float32)) for out in outputs])
                return tape.gradient(loss, image)

            _floor_fns[key] = floor
    fn = _floor_fns[key]
    return lambda image: fn(tf.convert_to_tensor(image, tf.float32)).numpy()


class TrainStep:
    """One Adam step of a feed-forward network through the frozen loss network (``worker/engine/trainer.py``).

    ``__call__(batch float32 (N, H, W, 3) 0-255)`` runs the network on the batch, the extractor on its output and
    on the batch itself (the content targets, no gradient), ``loss_fn(output_features, content_features, output,
    *loss_args) -> (content, style, tv, total)``, and applies the gradient of ``total`` with respect to the
    network's trainable weights with ``optimizer``; it returns the four terms (float64[4]). Only the network's
    weights change: the loss network's are read, never differentiated. The network and optimizer variables are
    updated in place, so ``sync()`` has nothing to do here (the JAX twin keeps them as arrays until asked). One
    ``tf.function`` per instance: a training run traces once per batch shape.
    """

    def __init__(self, net, extractor, preprocess: Callable, optimizer, loss_fn: Callable, loss_args) -> None:
        if not optimizer.built:  # variables created eagerly, not inside the first trace
            optimizer.build(net.trainable_variables)
        self._args = [tf.nest.map_structure(lambda a: tf.constant(a, tf.float32), arg) for arg in loss_args]
        variables = net.trainable_variables

        @tf.function
        def step(batch, *args):
            content_features = [tf.stop_gradient(f) for f in _as_list(extractor(preprocess(batch), training=False))]
            with tf.GradientTape() as tape:
                output = net(batch, training=True)
                features = _as_list(extractor(preprocess(output), training=False))
                terms = loss_fn(features, content_features, output, *args)
            optimizer.apply_gradients(zip(tape.gradient(terms[3], variables), variables, strict=True))
            return tf.stack(terms)

        self._step = step

    def __call__(self, batch: np.ndarray, extra: tuple = ()) -> np.ndarray:
        """``extra``: arrays that change from step to step (the video fine-tuning's flows and masks), passed to
        ``loss_fn`` after ``loss_args`` with their own dtypes; a new structure retraces once."""
        extra_args = [tf.convert_to_tensor(e) for e in extra]
        return self._step(tf.convert_to_tensor(batch, tf.float32), *self._args, *extra_args).numpy().astype(np.float64)

    def sync(self) -> None:
        """Nothing to do: the Keras variables are the state."""


def tracing_counts() -> dict[str, int]:
    """How often each cached function has been traced (tests use it to prove we do not retrace per job)."""
    return {
        "step": sum(fn.experimental_get_tracing_count() for fn in _step_fns.values()),
        "features": sum(fn.experimental_get_tracing_count() for fn in _feature_fns.values()),
        "floor": sum(fn.experimental_get_tracing_count() for fn in _floor_fns.values()),
    }


def bfloat16_is_fast() -> bool:
    """True where bfloat16 runs the backbone faster than float32: a GPU of compute capability 8.0+ (Ampere and
    later), or a CPU with AMX-BF16 tiles (oneDNN uses them for convolutions).

    AVX512-BF16 alone is not enough: on such a CPU (Xeon, avx512_bf16 without AMX) a VGG19 forward+backward pass
    took 0.38 s in bfloat16 against 0.25 s in float32 at 256 px, and 1.52 s against 0.94 s at 512 px, timed side by
    side (TensorFlow 2.21). Without AVX512-BF16 bfloat16 is emulated, about 4x slower than float32."""
    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0))
        if tuple(capability) >= (8, 0):
            return True
    return cpu_has_amx_bf16()
