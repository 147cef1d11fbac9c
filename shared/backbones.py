"""Static facts about the three backbones, in pure Python (no TensorFlow, no numpy: the API imports this).

For each backbone (``vgg19``, ``xception``, ``efficientnetb7``):

- ``LAYER_NAMES[backbone]``: the layer names a job may use as content or style layers, in network order. They are
  the names of the Keras model the engine builds (``worker/engine/backbones.py``), written out here by the same
  rules Keras uses to name them, so the API can check a job's layers without building a network.
  ``tests/engine/test_backbone_tables.py`` compares them with the real models, so the tables cannot drift.
  Not included: Keras' auto-named layers (Xception's residual ``conv2d``/``batch_normalization``/``add``,
  EfficientNet's ``rescaling``/``normalization``). Their names get a counter suffix that depends on how many models
  the process built before (``add`` one time, ``add_12`` the next), so a job naming them would run or not by chance.
- ``DEFAULT_LAYERS[backbone]``: the default content and style layers with their (relative) weights, and why.
- ``min_side_px(backbone, layer)``: the smallest input side, in pixels, for which every feature map up to that layer
  is at least 1x1. It is computed from each network's downsampling steps (``_SIZE_STEPS``), the same arithmetic as
  Keras' padding rules:

  * VGG19: 3x3 convolutions with ``same`` padding keep the size; every 2x2/2 pooling floors it (``n // 2``), so
    block ``k`` needs ``2**(k-1)`` px and ``block5_pool`` 32 px. One pixel less and TensorFlow refuses the pooling.
  * Xception: the stem's two *valid* 3x3 convolutions (``block1_conv1`` stride 2, ``block1_conv2`` stride 1) need
    7 px (7 -> 3 -> 1); everything after them is ``same``-padded and ceils (``ceil(n / 2)``), never reaching 0.
  * EfficientNetB7: each stride-2 convolution zero-pads and then convolves *valid*, ``(n + pad - k) // 2 + 1``,
    which is ``n // 2`` for both its 3x3 and 5x5 kernels, so it floors like VGG's pooling: the stem needs 2 px,
    ``block2a_dwconv`` 4, ``block3a`` 8, ``block4a`` 16, ``block6a_dwconv`` and later 32.

``min_input_side_px`` adds what the engine itself needs on top (the total-variation loss compares neighbouring
pixels, so each side needs 2); ``shared/geometry.py`` turns it into the rule for whole jobs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

from shared.errors import ParamError

BACKBONE_NAMES = ("vgg19", "xception", "efficientnetb7")

# The engine's own minimum, on top of the network's: the total-variation loss is a mean over neighbouring-pixel
# differences, which has no terms (NaN) on an image one pixel high or wide.
ENGINE_MIN_SIDE_PX = 2

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

# A size step maps the side of a layer's input to the side of its output (one spatial axis; all three networks
# treat height and width alike). Layers without a step keep the size.
SizeStep = Callable[[int], int]


def _floor_half(n: int) -> int:
    """2x2/2 valid pooling, and EfficientNet's pad-then-valid stride-2 convolutions (3x3 pad (0,1), 5x5 pad
    (1,2)): ``(n + pad - k) // 2 + 1 == n // 2``."""
    return n // 2


def _ceil_half(n: int) -> int:
    """Stride 2 with ``same`` padding: ``ceil(n / 2)``."""
    return -(-n // 2)


def _valid(kernel: int, stride: int) -> SizeStep:
    return lambda n: max(0, (n - kernel) // stride + 1)


# --- VGG19 --------------------------------------------------------------------------------------------------------


def _vgg19() -> tuple[list[str], dict[str, SizeStep]]:
    # Same layer names as keras.applications.VGG19 (the engine builds it by hand to offer average pooling).
    names: list[str] = []
    steps: dict[str, SizeStep] = {}
    for block, convs in enumerate((2, 2, 4, 4, 4), start=1):
        names += [f"block{block}_conv{conv}" for conv in range(1, convs + 1)]
        names.append(f"block{block}_pool")
        steps[f"block{block}_pool"] = _floor_half
    return names, steps


# --- Xception -----------------------------------------------------------------------------------------------------


def _xception() -> tuple[list[str], dict[str, SizeStep]]:
    # keras.applications.xception, named layers only (see the module docstring for the auto-named residual ones).
    names = ["block1_conv1", "block1_conv1_bn", "block1_conv1_act", "block1_conv2", "block1_conv2_bn",
             "block1_conv2_act"]
    steps: dict[str, SizeStep] = {"block1_conv1": _valid(3, 2), "block1_conv2": _valid(3, 1)}
    # Block 2 starts without an activation (block 1 ended with one); blocks 3, 4 and 13 start with one.
    names += ["block2_sepconv1", "block2_sepconv1_bn", "block2_sepconv2_act", "block2_sepconv2", "block2_sepconv2_bn",
              "block2_pool"]
    for block in (3, 4):
        names += [f"block{block}_sepconv{i}{suffix}" for i in (1, 2) for suffix in ("_act", "", "_bn")]
        names.append(f"block{block}_pool")
    for block in range(5, 13):  # middle flow: three separable convolutions, same size
        names += [f"block{block}_sepconv{i}{suffix}" for i in (1, 2, 3) for suffix in ("_act", "", "_bn")]
    names += [f"block13_sepconv{i}{suffix}" for i in (1, 2) for suffix in ("_act", "", "_bn")]
    names.append("block13_pool")
    names += [f"block14_sepconv{i}{suffix}" for i in (1, 2) for suffix in ("", "_bn", "_act")]
    for pool in ("block2_pool", "block3_pool", "block4_pool", "block13_pool"):
        steps[pool] = _ceil_half  # 3x3/2 max pooling, same padding (and its residual 1x1/2 conv likewise)
    return names, steps


# --- EfficientNetB7 -----------------------------------------------------------------------------------------------

# keras.applications.efficientnet DEFAULT_BLOCKS_ARGS: (base repeats, expand ratio, stride, filters in, filters out)
# per stage; B7 scales repeats by its depth coefficient 3.1 (rounded up), as Keras' round_repeats does.
_EFFICIENTNET_STAGES = ((1, 1, 1, 32, 16), (2, 6, 2, 16, 24), (2, 6, 2, 24, 40), (3, 6, 2, 40, 80),
                        (3, 6, 1, 80, 112), (4, 6, 2, 112, 192), (1, 6, 1, 192, 320))
_B7_DEPTH_COEFFICIENT = 3.1


def _efficientnetb7() -> tuple[list[str], dict[str, SizeStep]]:
    names = ["stem_conv_pad", "stem_conv", "stem_bn", "stem_activation"]
    steps: dict[str, SizeStep] = {"stem_conv": _floor_half}
    for stage, (repeats, expand, stride, filters_in, filters_out) in enumerate(_EFFICIENTNET_STAGES, start=1):
        for index in range(math.ceil(_B7_DEPTH_COEFFICIENT * repeats)):
            prefix = f"block{stage}{chr(ord('a') + index)}_"
            block_stride = stride if index == 0 else 1
            block_in = filters_in if index == 0 else filters_out
            if expand != 1:
                names += [prefix + "expand_conv", prefix + "expand_bn", prefix + "expand_activation"]
            if block_stride == 2:
                names.append(prefix + "dwconv_pad")
                steps[prefix + "dwconv"] = _floor_half
            names += [prefix + s for s in ("dwconv", "bn", "activation", "se_squeeze", "se_reshape", "se_reduce",
                                           "se_expand", "se_excite", "project_conv", "project_bn")]
            # Residual (with stochastic depth) only where shapes match: stride 1 and as many filters out as in.
            # Keras adds the dropout for a positive drop rate only, which every block but block1a has (and block1a
            # has no residual).
            if block_stride == 1 and block_in == filters_out:
                names += [prefix + "drop", prefix + "add"]
    names += ["top_conv", "top_bn", "top_activation"]
    return names, steps


def _tables() -> tuple[dict[str, tuple[str, ...]], dict[str, dict[str, int]]]:
    names_by_backbone: dict[str, tuple[str, ...]] = {}
    min_side: dict[str, dict[str, int]] = {}
    for backbone, build in (("vgg19", _vgg19), ("xception", _xception), ("efficientnetb7", _efficientnetb7)):
        names, steps = build()
        names_by_backbone[backbone] = tuple(names)
        # Each layer's minimum: the smallest input side n for which every size step up to and including it leaves
        # at least 1 px. Sides only grow with n, so counting up from 1 finds it (never past 64 for these networks).
        path: list[SizeStep] = []
        table: dict[str, int] = {}
        for name in names:
            if name in steps:
                path.append(steps[name])
            n = 1
            while not _survives(n, path):
                n += 1
            table[name] = n
        min_side[backbone] = table
    return names_by_backbone, min_side


def _survives(n: int, path: list[SizeStep]) -> bool:
    for step in path:
        n = step(n)
        if n < 1:
            return False
    return True


LAYER_NAMES, MIN_SIDE_PX = _tables()


# --- the functions the API and the engine call --------------------------------------------------------------------


def check_backbone(backbone: str) -> str:
    if backbone not in LAYER_NAMES:
        raise ParamError("param_out_of_range", f"backbone={backbone!r} is not allowed; expected one of "
                         + ", ".join(BACKBONE_NAMES), field="backbone")
    return backbone


def check_layers(backbone: str, layer_names: Iterable[str], kind: str | None) -> tuple[str, ...]:
    """``layer_names`` if every one is a usable layer of ``backbone``, else ``ParamError("unknown_layer")`` (422)
    naming the first bad one and listing the allowed ones. ``kind`` is ``content`` or ``style`` (the field is
    ``<kind>_layers``), or None (field ``layers``)."""
    valid = LAYER_NAMES[check_backbone(backbone)]
    names = tuple(layer_names)
    allowed = set(valid)
    field = f"{kind}_layers" if kind else "layers"
    for name in names:
        if name not in allowed:
            raise ParamError(
                "unknown_layer",
                f"{field}: {name!r} is not a layer of {backbone}; allowed: " + ", ".join(valid),
                field=field,
            )
    return names


def layers_or_default(backbone: str, requested: Iterable[tuple[str, float]] | None, kind: str
                      ) -> tuple[tuple[str, float], ...]:
    """The requested ``(layer, weight)`` pairs, or the backbone's defaults when none are given (unnormalised), or
    ``ParamError`` (422): ``unknown_layer``, or ``param_out_of_range`` when the weights sum to 0."""
    chosen = tuple(requested or ()) or DEFAULT_LAYERS[check_backbone(backbone)][kind]
    check_layers(backbone, (name for name, _w in chosen), kind)
    if sum(weight for _name, weight in chosen) <= 0:
        raise ParamError("param_out_of_range", f"{kind}_layers: weights sum to 0; give at least one positive weight",
                         field=f"{kind}_layers")
    return chosen


def min_side_px(backbone: str, layer_name: str) -> int:
    """The smallest input side (px, after scaling) for which every feature map up to ``layer_name`` is >= 1x1."""
    check_layers(backbone, (layer_name,), None)
    return MIN_SIDE_PX[backbone][layer_name]


def min_input_side_px(backbone: str, layer_names: Iterable[str]) -> int:
    """The smallest side (px) of an image the engine can run through ``backbone`` to all of ``layer_names``: the
    deepest layer's network minimum, and at least ``ENGINE_MIN_SIDE_PX`` (2: the total-variation loss).

    vgg19: 2 (the engine's minimum) up to block2_conv2, 4 from block2_pool, 8 from block3_pool, 16 from
    block4_pool, 32 for block5_pool; default layers 16.
    xception: 3 for block1_conv1 and its bn/act, 7 from block1_conv2 on; default layers 7.
    efficientnetb7: 2 up to block2a_dwconv_pad, 4 from block2a_dwconv, 8 from block3a_dwconv, 16 from
    block4a_dwconv, 32 from block6a_dwconv on; default layers 16."""
    names = tuple(layer_names)
    check_layers(backbone, names, None)
    return max([ENGINE_MIN_SIDE_PX, *(MIN_SIDE_PX[backbone][name] for name in names)])


def deepest_layer(backbone: str, layer_names: Iterable[str]) -> str:
    """The layer of ``layer_names`` that needs the largest input (the latest in network order among equals)."""
    names = set(layer_names)
    ordered = [name for name in LAYER_NAMES[backbone] if name in names]
    return max(reversed(ordered), key=lambda name: MIN_SIDE_PX[backbone][name])
