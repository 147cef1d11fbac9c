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

from shared.errors import ParamError
from worker.engine import weights as weights_mod
from worker.engine.pastiche_weights import VGG19_CONV_LAYERS, dequantize_vgg19

# Default layers. Weights are relative (normalised to sum to 1 per loss), so adding a layer does not change scale.
DEFAULT_LAYERS: dict[str, dict[str, tuple[tuple[str, float], ...]]] = {
    # Gatys et al. (2016): content at block4_conv2, style at the first conv of every block. The 2024 paper used
    # block5_conv2 for content, which at 1/16 resolution keeps too little layout at 256-512 px; block4_conv2 keeps
    # the scene recognisable. Deepest layer used: block5_conv1, the floor the bench times against.
    "vgg19": {
        "content": (("block4_conv2", 1.0),),
        "style": tuple((f"block{n}_conv1", 1.0) for n in range(1, 6)),
    },
    # Xception has no plain conv stack after block 1, so we take the activation that ends each entry-flow block
    # before its strided pooling: the same five scales as VGG (1/2 ... 1/16). Content at 1/8 like VGG's
    # block4_conv2. Auto-named layers (``add``, ``add_1``) are avoided: their names change between builds.
    "xception": {
        "content": (("block4_sepconv2_act", 1.0),),
        "style": (
            ("block1_conv1_act", 1.0),
            ("block2_sepconv2_act", 1.0),
            ("block3_sepconv2_act", 1.0),
            ("block4_sepconv2_act", 1.0),
            ("block5_sepconv3_act", 1.0),
        ),
    },
    # EfficientNetB7: the stem and the expansion activation at the start of each stage, again one per scale
    # (1/2 ... 1/16). Stage inputs are where the network summarises the previous stage; deeper stages (6, 7) add
    # cost at 1/32 resolution for little style.
    "efficientnetb7": {
        "content": (("block4a_expand_activation", 1.0),),
        "style": (
            ("stem_activation", 1.0),
            ("block2a_expand_activation", 1.0),
            ("block3a_expand_activation", 1.0),
            ("block4a_expand_activation", 1.0),
            ("block5a_expand_activation", 1.0),
        ),
    },
}

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
    layer_names: tuple[str, ...]  # valid names for content/style layers, in network order


_lock = threading.Lock()
_backbones: dict[tuple[str, str, str, bool], Backbone] = {}
_extractors: dict[tuple, keras.Model] = {}


def get_backbone(name: str, pooling: str, precision: str) -> tuple[Backbone, bool]:
    """The cached backbone (built on first use); the bool says whether it was already built in this process."""
    pooling = pooling if name == "vgg19" else "max"  # pooling is a VGG19 option only
    random_weights = weights_mod.random_weights_requested()
    key = (name, pooling, precision, random_weights)
    with _lock:
        if key in _backbones:
            return _backbones[key], True
        started = time.perf_counter()
        model, preprocess, label = _BUILDERS[name](pooling, random_weights)
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
    """User layers (or the backbone's defaults) checked against the network, weights normalised to sum to 1."""
    chosen = requested or DEFAULT_LAYERS[backbone.name][kind]
    valid = set(backbone.layer_names)
    for layer_name, _weight in chosen:
        if layer_name not in valid:
            raise ParamError(
                "unknown_layer",
                f"{kind}_layers: {layer_name!r} is not a layer of {backbone.name}; allowed: "
                + ", ".join(backbone.layer_names),
                field=f"{kind}_layers",
            )
    total = sum(weight for _name, weight in chosen)
    if total <= 0:
        raise ParamError(
            "param_out_of_range",
            f"{kind}_layers: weights sum to 0; give at least one positive weight",
            field=f"{kind}_layers",
        )
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


def _vgg19(pooling: str, random_weights: bool) -> tuple[keras.Model, Callable, str]:
    # Built by hand (same layer names as keras.applications.VGG19) because Keras' VGG19 has no average pooling.
    # Gatys et al. found average pooling gives slightly smoother results; max is the trained network's own.
    model = _vgg19_graph(pooling)
    if random_weights:
        label = weights_mod.RANDOM_WEIGHTS_LABEL
    else:
        model.load_weights(_vgg19_cached_weights())
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


def _vgg19_cached_weights() -> str:
    """Path of the Keras weights file converted from pastiche's data, converting it on first use."""
    path = weights_mod.cache_dir() / weights_mod.VGG19_CACHE_NAME
    if path.is_file():
        return str(path)
    source = weights_mod.pastiche_weights_path()
    kernels = dequantize_vgg19(source)
    holder = _vgg19_graph("max")
    for layer_name in VGG19_CONV_LAYERS:
        holder.get_layer(layer_name).set_weights(list(kernels[layer_name]))
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename: two worker processes converting at once must not read a half-written file.
    tmp = path.with_name(f".{os.getpid()}.{path.name}")
    holder.save_weights(str(tmp))
    os.replace(tmp, path)
    return str(path)


def _xception(pooling: str, random_weights: bool) -> tuple[keras.Model, Callable, str]:
    path = None if random_weights else weights_mod.official_weights_path("xception")  # fail before building
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


def _efficientnetb7(pooling: str, random_weights: bool) -> tuple[keras.Model, Callable, str]:
    path = None if random_weights else weights_mod.official_weights_path("efficientnetb7")  # fail before building
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
