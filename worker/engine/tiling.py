"""Exact tiled loss and gradient, so a print-size image (4096 px) runs in bounded memory.

The untiled pass keeps every activation of the backbone for the backward pass: its memory grows with the pixel
count (``BYTES_PER_PX``, measured), about 16 GB for VGG19 at 2048x1524. Gatys' losses are sums over feature
positions (the content loss directly, the style loss through its Gram matrices ``G = sum_p F_p^T F_p / (N C)``),
so the loss and its gradient can be computed one tile at a time *exactly*, in two passes:

1. **Statistics.** Every tile is run forward on its *window* (its core plus a halo) and only its core's feature
   positions are kept: their ``F^T F`` summed over the tiles is the whole image's Gram matrix, their squared
   content differences summed are the content loss. The halo covers the receptive field's reach, so the core's
   features equal the untiled ones; the window origins sit on multiples of the deepest layer's total stride, so
   every pooling grid lines up with the whole image's.
2. **Gradient.** With the whole-image Grams fixed, ``dL/dG`` is known per layer. Each tile is run forward and
   backward on a surrogate whose gradient with respect to the core's features is the true one:
   ``<dL/dG, F_core^T F_core> / (N C)`` gives ``F (dG + dG^T) / (N C)`` (the same identity as
   ``losses.gram_matrix``'s hand-written gradient), plus the content term restricted to the core. The pixel
   gradient of the whole window (halo included: a halo pixel feeds core features too) is added into the image's.
   Summed over the tiles this is the untiled gradient up to float rounding, so nothing can seam.

The total-variation term is a pixel-space sum, computed on the whole image at once (cheap).

Cost: two forward passes and one backward per tile (about 1.33x an untiled iteration) plus the halos' area. The
tiles are as large as the memory budget allows, so the halo share stays small.

Receptive fields (``network_reach``) come from the Keras layers' kernels, strides and dilations, walked through the
functional graph; for VGG19 to ``block5_conv1`` (the default style layers): receptive field 156 px, total stride
16, reach 94 px, halo 96 px. A layer that mixes every position (global pooling, squeeze-excitation, dense) makes
exact tiling impossible; such a network (EfficientNetB7) is refused and runs untiled.

Exactness of the halo: a core feature's value depends on input pixels at most ``(rf - 1) / 2`` away from the
input position it is centred on, and a feature at stride ``s`` sits within ``s`` px of its tile's core edge, so a
halo of ``reach = (rf - 1) // 2 + stride`` (rounded up to the stride) leaves every core feature's whole support
inside the window, and the window's own zero padding never reaches it. The test compares tiled and untiled loss
and gradient on random-weight VGG19 (tests/engine/test_tiling.py) and shows that a halo one stride too small fails.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from keras import layers, ops

from worker.engine import losses
from worker.engine.objective import ObjectiveSpec

# Bytes of process memory per input pixel of one untiled loss-and-gradient pass (VGG19 to block5_conv1, every
# activation kept for the backward pass, float32). First measured as the slope of a whole ``stylize`` run's peak RSS
# over the image area with random weights, 4752-4934 B/px between 128x128 and 640x640 px; then, with the ImageNet
# weights and ``bench/memory.py``'s phases at 1024x681 px (issue 13), the optimisation phase held 1680 MiB over the
# RSS after the backbone was built, 2.5 kB/px, and the slope of the whole run's peak between 341x512 and 1024x681 was
# 1.75 kB/px. 5000 tiled every 1024 px job on a 24 GB machine where it needed no tiling (the last scale of a
# 1024x762 job ran at 16.6 s/it in 6 tiles against 8.3 s/it untiled at 1024x681, docs/engine.md "Print sizes");
# 3000 keeps 20% over the 1024 px measurement. bfloat16 keeps half-size
# activations but also float32 copies for the losses; the float32 figure is used for both.
BYTES_PER_PX = 3000
# Fixed part of a pass that does not grow with the image (TensorFlow's workspaces, the Grams), added to the estimate.
PASS_FIXED_BYTES = 128 * 1024 * 1024
# The smallest core a tile gets, in strides: below this the halo's share makes tiling pointless.
MIN_CORE_STRIDES = 4

# Layers that do not change where a feature looks (position-wise, or merging aligned branches).
_POSITIONWISE = (
    layers.InputLayer, layers.Activation, layers.ReLU, layers.BatchNormalization, layers.Add, layers.Rescaling,
    layers.Normalization, layers.Dropout, layers.Concatenate, layers.Identity,
)
_GLOBAL = (
    layers.GlobalAveragePooling2D, layers.GlobalMaxPooling2D, layers.Dense, layers.Reshape, layers.Flatten,
    layers.Multiply,
)


class TilingUnsupported(ValueError):
    """The network has a layer that mixes all positions, so it cannot be tiled exactly."""


@dataclass(frozen=True)
class Reach:
    """How far one layer's features look: receptive field and total stride in input pixels."""

    receptive_field_px: int
    stride_px: int

    @property
    def reach_px(self) -> int:
        """Input pixels beyond a tile's core edge that its core features can depend on (module docstring)."""
        return (self.receptive_field_px - 1) // 2 + self.stride_px


def _layer_kernel(layer) -> tuple[int, int]:
    """(effective kernel, stride) of one layer along height (the backbones use square kernels)."""
    if isinstance(layer, (layers.Conv2D, layers.DepthwiseConv2D, layers.SeparableConv2D)):
        dilation = layer.dilation_rate[0]
        return dilation * (layer.kernel_size[0] - 1) + 1, layer.strides[0]
    if isinstance(layer, (layers.MaxPooling2D, layers.AveragePooling2D)):
        return layer.pool_size[0], layer.strides[0]
    if isinstance(layer, layers.ZeroPadding2D):
        return 1, 1
    if isinstance(layer, _POSITIONWISE):
        return 1, 1
    if isinstance(layer, _GLOBAL):
        raise TilingUnsupported(f"layer {layer.name} ({type(layer).__name__}) mixes all positions")
    raise TilingUnsupported(f"layer {layer.name} ({type(layer).__name__}) has no known receptive field")


def network_reach(model, layer_names: Sequence[str]) -> dict[str, Reach]:
    """Receptive field and total stride of each of ``layer_names``, from the layers' kernels and strides, walked
    through ``model``'s functional graph (a merge takes the largest of its inputs). ``TilingUnsupported`` when a
    layer on the way mixes all positions."""
    wanted = set(layer_names)
    found: dict[str, Reach] = {}
    for layer in model.layers:  # functional models list their layers in topological order
        parents = [node.operation.name for node in layer._inbound_nodes[0].parent_nodes] if layer._inbound_nodes else []
        inputs = [found[name] for name in parents if name in found]
        rf = max((r.receptive_field_px for r in inputs), default=1)
        stride = max((r.stride_px for r in inputs), default=1)
        kernel, step = _layer_kernel(layer)
        found[layer.name] = Reach(rf + (kernel - 1) * stride, stride * step)
        if wanted <= found.keys():
            break
    return {name: found[name] for name in layer_names}


@dataclass(frozen=True)
class Tile:
    core: tuple[int, int, int, int]  # y0, y1, x0, x1 in image pixels: the positions this tile is responsible for
    window: tuple[int, int, int, int]  # the pixels it runs on: the core plus the halo, clipped to the image


@dataclass(frozen=True)
class TilePlan:
    image_hw: tuple[int, int]
    core_px: int
    halo_px: int
    stride_px: int
    tiles: tuple[Tile, ...]

    def metrics(self) -> dict:
        return {"tiles": len(self.tiles), "tile_px": self.core_px, "halo_px": self.halo_px,
                "stride_px": self.stride_px}


def _spans(length: int, core_px: int, halo_px: int) -> list[tuple[int, int, int, int]]:
    spans = []
    for start in range(0, length, core_px):
        end = min(length, start + core_px)
        spans.append((start, end, max(0, start - halo_px), min(length, end + halo_px)))
    return spans


def plan_tiles(image_hw: tuple[int, int], core_px: int, halo_px: int, stride_px: int) -> TilePlan:
    """Tiles of ``core_px`` (a multiple of ``stride_px``) covering the image, each with ``halo_px`` (also a multiple
    of the stride) around it where the image has pixels."""
    if core_px % stride_px or halo_px % stride_px:
        raise ValueError(f"core {core_px} px and halo {halo_px} px must be multiples of the stride {stride_px} px")
    height, width = image_hw
    tiles = tuple(
        Tile((y0, y1, x0, x1), (wy0, wy1, wx0, wx1))
        for y0, y1, wy0, wy1 in _spans(height, core_px, halo_px)
        for x0, x1, wx0, wx1 in _spans(width, core_px, halo_px)
    )
    return TilePlan((height, width), core_px, halo_px, stride_px, tiles)


def pass_bytes(image_hw: tuple[int, int]) -> int:
    """Estimated process memory of one untiled loss-and-gradient pass at ``image_hw``."""
    return PASS_FIXED_BYTES + BYTES_PER_PX * image_hw[0] * image_hw[1]


@dataclass(frozen=True)
class Tiler:
    """Picks, per image shape, whether to tile and with which tiles: the largest square window whose pass fits in
    ``budget_bytes``."""

    budget_bytes: int
    stride_px: int  # total stride of the deepest layer used
    halo_px: int  # its reach, rounded up to the stride
    strides: tuple[int, ...]  # total stride of each extractor output, in extractor order
    core_px: int | None = None  # a fixed core size (tests, benchmarks); None: the largest the budget allows

    @classmethod
    def for_network(cls, model, layer_order: Sequence[str], budget_bytes: int, core_px: int | None = None) -> Tiler:
        reach = network_reach(model, layer_order)
        stride = max(r.stride_px for r in reach.values())
        halo = _round_up(max(r.reach_px for r in reach.values()), stride)
        return cls(budget_bytes, stride, halo, tuple(reach[name].stride_px for name in layer_order), core_px)

    def plan(self, image_hw: tuple[int, int]) -> TilePlan | None:
        """None when the untiled pass fits in the budget, else the tiles."""
        if pass_bytes(image_hw) <= self.budget_bytes:
            return None
        if self.core_px is not None:
            return plan_tiles(image_hw, self.core_px, self.halo_px, self.stride_px)
        window_px = math.isqrt(max(0, self.budget_bytes - PASS_FIXED_BYTES) // BYTES_PER_PX)
        core = (window_px - 2 * self.halo_px) // self.stride_px * self.stride_px
        return plan_tiles(image_hw, max(core, MIN_CORE_STRIDES * self.stride_px), self.halo_px, self.stride_px)


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


# --- statistics (pass 1) ------------------------------------------------------------------------------------------


def _core_box(tile: Tile, plan: TilePlan, stride: int, feature_hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """The tile's core in its window's feature map of a layer with total ``stride`` (window-local indices)."""
    (y0, y1, x0, x1), (wy0, _wy1, wx0, _wx1) = tile.core, tile.window
    height, width = plan.image_hw
    top, left = (y0 - wy0) // stride, (x0 - wx0) // stride
    # The last tile of a row or column owns the whole image's remainder (pooling floors odd sizes).
    bottom = feature_hw[0] if y1 == height else (y1 - wy0) // stride
    right = feature_hw[1] if x1 == width else (x1 - wx0) // stride
    return top, bottom, left, right


def _window(image: np.ndarray, tile: Tile) -> np.ndarray:
    wy0, wy1, wx0, wx1 = tile.window
    return image[wy0:wy1, wx0:wx1]


def layer_stats(
    forward: Callable[[np.ndarray], list[np.ndarray]],
    gram: Callable[[np.ndarray], np.ndarray],
    image: np.ndarray,
    plan: TilePlan | None,
    strides: Sequence[int],
    map_indices: Sequence[int],
    gram_indices: Sequence[int],
) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """The feature maps of the extractor outputs ``map_indices`` and the Gram matrices (``losses.gram_matrix``'s
    normalisation) of ``gram_indices`` for ``image``: untiled when ``plan`` is None, else assembled from the tiles'
    cores (the same numbers up to float rounding) without ever holding a whole image's activations."""
    if plan is None:
        outputs = forward(image)
        return {i: outputs[i] for i in map_indices}, {i: gram(outputs[i]) for i in gram_indices}
    maps: dict[int, list] = {i: [] for i in map_indices}
    sums: dict[int, np.ndarray] = {}
    counts: dict[int, int] = dict.fromkeys(gram_indices, 0)
    for tile in plan.tiles:
        outputs = forward(_window(image, tile))
        for i in set(map_indices) | set(gram_indices):
            top, bottom, left, right = _core_box(tile, plan, strides[i], outputs[i].shape[1:3])
            core = outputs[i][:, top:bottom, left:right]
            if i in maps:
                maps[i].append((tile, core))
            if i in counts and core.size:
                positions = core.shape[1] * core.shape[2]
                # gram() divides by positions x channels; undo it to sum, in float64 across tiles.
                part = np.asarray(gram(core), np.float64) * (positions * core.shape[-1])
                sums[i] = part if i not in sums else sums[i] + part
                counts[i] += positions
        del outputs
    grams = {i: (sums[i] / (counts[i] * sums[i].shape[0])).astype(np.float32) for i in gram_indices}
    return {i: _assemble(parts, plan, strides[i]) for i, parts in maps.items()}, grams


def _assemble(parts: list, plan: TilePlan, stride: int) -> np.ndarray:
    """One feature map from the tiles' cores, in tile order (rows of tiles, left to right)."""
    rows: dict[int, list] = {}
    for tile, core in parts:
        rows.setdefault(tile.core[0], []).append(core)
    return np.concatenate([np.concatenate(row, axis=2) for _y, row in sorted(rows.items())], axis=1)


# --- loss and gradient (pass 2) -----------------------------------------------------------------------------------


def tile_surrogate(outputs, content_masks, content_targets, content_coefs, style_masks, style_coefs, gram_rescale,
                   *, content_index, style_index):
    """A scalar whose gradient with respect to a window's pixels is that window's share of the whole image's
    loss gradient (module docstring, pass 2). Traceable with ``keras.ops`` on any backend.

    ``content_coefs[k]`` is ``content_weight * layer_weight / (N C scale)`` of content layer ``k``;
    ``style_coefs[k]`` is ``dL/dG`` of style layer ``k`` (C x C); ``gram_rescale[k]`` is the window's positions
    over the whole image's, turning ``gram_matrix``'s per-window normalisation into the whole image's."""
    total = ops.cast(0.0, "float32")
    for k, i in enumerate(content_index):
        diff = (ops.cast(outputs[i], "float32") - content_targets[k]) * content_masks[k]
        total = total + content_coefs[k] * ops.sum(ops.square(diff))
    for k, i in enumerate(style_index):
        features = ops.cast(outputs[i], "float32") * style_masks[k]
        total = total + gram_rescale[k] * ops.sum(style_coefs[k] * losses.gram_matrix(features))
    return total


def tv_loss_and_grad(image: np.ndarray) -> tuple[float, np.ndarray]:
    """``losses.total_variation_loss`` of a whole ``(H, W, 3)`` image and its gradient, in numpy."""
    image = image.astype(np.float32, copy=False)
    grad = np.zeros_like(image)
    value = 0.0
    for axis in (0, 1):
        diff = np.diff(image, axis=axis)
        if diff.size == 0:  # a 1-px side: Keras' mean of nothing is NaN; the engine pads such images anyway
            continue
        value += float(np.mean(np.square(diff, dtype=np.float64)))
        scaled = diff * np.float32(2.0 / diff.size)
        lead = [slice(None)] * 3
        lead[axis] = slice(1, None)
        grad[tuple(lead)] += scaled
        lead[axis] = slice(None, -1)
        grad[tuple(lead)] -= scaled
    return value, grad


class TiledObjective:
    """The contract of ``backend.Objective`` (``image -> (losses float64[4], gradient float32)``), computed in the
    tiles of ``plan``. ``backend`` is the engine's backend module (``features_fn``, ``gram_fn``, ``image_grad_fn``)."""

    def __init__(self, backend, extractor, preprocess: Callable, spec: ObjectiveSpec, plan: TilePlan,
                 strides: Sequence[int]) -> None:
        self.spec, self.plan, self.strides, self.extractor = spec, plan, tuple(strides), extractor
        self._forward = backend.features_fn(extractor, preprocess)
        self._gram = backend.gram_fn
        key = ("tile_surrogate", spec.content_index, spec.style_index)
        self._grad = backend.image_grad_fn(extractor, preprocess, _bind(spec), key)
        self._content_scales = _scales(spec.content_scales, spec.content_targets, len(spec.content_index))
        self._style_scales = _scales(spec.style_scales, spec.style_grams, len(spec.style_index))
        self._shapes: dict[tuple[int, int], list[tuple[int, int]]] = {}
        self.traced_on_first_call = False  # one small trace per window shape (at most four), inside the first call

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        spec = self.spec
        content_w, style_w, tv_w = (float(w) for w in spec.loss_weights)
        grams, content_sq = self._statistics(image)
        content_n = [self._positions(i) * spec.content_targets[k].shape[-1] for k, i in enumerate(spec.content_index)]
        content_terms = [sq / (n * s) for sq, n, s in zip(content_sq, content_n, self._content_scales, strict=True)]
        style_terms, style_coefs = [], []
        for k in range(len(spec.style_index)):
            diff = grams[k] / self._positions(spec.style_index[k]) - np.asarray(spec.style_grams[k], np.float64)
            style_terms.append(float(np.mean(np.square(diff))) / self._style_scales[k])
            # d style_k / dG, times the term's weights: the fixed coefficient of pass 2's surrogate.
            coef = style_w * float(spec.style_layer_weights[k]) * 2.0 * diff / (diff.size * self._style_scales[k])
            style_coefs.append(coef.astype(np.float32))
        content = content_w * float(np.dot(content_terms, spec.content_layer_weights)) if content_terms else 0.0
        style = style_w * float(np.dot(style_terms, spec.style_layer_weights)) if style_terms else 0.0
        tv_value, grad = tv_loss_and_grad(image)
        grad *= np.float32(tv_w)
        content_coefs = [np.float32(content_w * float(w) / (n * s)) for w, n, s in
                         zip(spec.content_layer_weights, content_n, self._content_scales, strict=True)]
        self._accumulate_gradient(image, grad, content_coefs, style_coefs)
        tv = tv_w * tv_value
        return np.array([content, style, tv, content + style + tv], np.float64), grad

    def _statistics(self, image: np.ndarray) -> tuple[list[np.ndarray], list[float]]:
        """Pass 1: per style layer the sum over the image of ``F^T F / C`` (float64), per content layer the sum of
        squared differences to the target, from one forward pass per tile."""
        spec = self.spec
        grams = [np.zeros(0)] * len(spec.style_index)
        squares = [0.0] * len(spec.content_index)
        for tile in self.plan.tiles:
            outputs = self._forward(_window(image, tile))
            for k, i in enumerate(spec.style_index):
                top, bottom, left, right = _core_box(tile, self.plan, self.strides[i], outputs[i].shape[1:3])
                core = outputs[i][:, top:bottom, left:right]
                # gram() divides by the core's positions x channels; keep the channels' division, undo the rest.
                part = np.asarray(self._gram(core), np.float64) * (core.shape[1] * core.shape[2])
                grams[k] = part if grams[k].size == 0 else grams[k] + part
            for k, i in enumerate(spec.content_index):
                top, bottom, left, right = _core_box(tile, self.plan, self.strides[i], outputs[i].shape[1:3])
                target = self._window_target(k, tile, outputs[i].shape[1:3])[0, top:bottom, left:right]
                diff = outputs[i][0, top:bottom, left:right].astype(np.float64) - target
                squares[k] += float(np.sum(np.square(diff)))
            del outputs
        return grams, squares

    def _accumulate_gradient(self, image, grad, content_coefs, style_coefs) -> None:
        """Pass 2: each window's pixel gradient of the surrogate, added into ``grad`` where the window sits."""
        spec = self.spec
        for tile in self.plan.tiles:
            window = _window(image, tile)
            shapes = self._feature_shapes(window.shape[:2])
            content_masks, content_targets = [], []
            for k, i in enumerate(spec.content_index):
                content_masks.append(_mask(shapes[i], _core_box(tile, self.plan, self.strides[i], shapes[i])))
                content_targets.append(self._window_target(k, tile, shapes[i]))
            style_masks, rescale = [], []
            for i in spec.style_index:
                style_masks.append(_mask(shapes[i], _core_box(tile, self.plan, self.strides[i], shapes[i])))
                # gram_matrix(window) divides by the window's positions; the loss wants the whole image's.
                rescale.append(np.float32(shapes[i][0] * shapes[i][1] / self._positions(i)))
            _value, window_grad = self._grad(window, content_masks, content_targets, content_coefs, style_masks,
                                             style_coefs, rescale)
            wy0, wy1, wx0, wx1 = tile.window
            grad[wy0:wy1, wx0:wx1] += window_grad

    def _feature_shapes(self, image_hw: tuple[int, int]) -> list[tuple[int, int]]:
        """Each extractor output's (height, width) for an input of ``image_hw`` (Keras' shape inference)."""
        if image_hw not in self._shapes:
            shapes = self.extractor.compute_output_shape((1, *image_hw, 3))
            shapes = shapes if isinstance(shapes, list) else [shapes]
            self._shapes[image_hw] = [(int(s[1]), int(s[2])) for s in shapes]
        return self._shapes[image_hw]

    def _positions(self, i: int) -> int:
        height, width = self._feature_shapes(self.plan.image_hw)[i]
        return height * width

    def _window_target(self, k: int, tile: Tile, shape: tuple[int, int]) -> np.ndarray:
        """Content layer ``k``'s target over the window's feature positions (zeros where the image's map ends)."""
        stride = self.strides[self.spec.content_index[k]]
        oy, ox = tile.window[0] // stride, tile.window[2] // stride
        target = np.asarray(self.spec.content_targets[k])[0, oy : oy + shape[0], ox : ox + shape[1]]
        if target.shape[:2] == tuple(shape):
            return target[None]
        out = np.zeros((*shape, target.shape[-1]), np.float32)
        out[: target.shape[0], : target.shape[1]] = target
        return out[None]


def _scales(given: Sequence[float], targets: Sequence[np.ndarray], count: int) -> list[float]:
    """The relative losses' normalisers: the engine's floored ones, or each target's own mean square."""
    if given:
        return [float(s) for s in given]
    return [float(np.mean(np.square(np.asarray(t, np.float64)))) + losses.EPSILON for t in targets[:count]]


def _mask(shape: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    top, bottom, left, right = box
    mask = np.zeros((1, *shape, 1), np.float32)
    mask[:, top:bottom, left:right] = 1.0
    return mask


def _bind(spec: ObjectiveSpec) -> Callable:
    content_index, style_index = spec.content_index, spec.style_index

    def loss(outputs, _image, *args):
        return tile_surrogate(outputs, *args, content_index=content_index, style_index=style_index)

    return loss
