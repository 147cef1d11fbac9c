"""Image geometry of a job, in pure Python: the one definition the engine runs by and the API checks with.

What happens to each image (``worker/engine/engine.py`` calls ``plan_job``; the API calls ``check_job`` with the
decoded images' sizes, before it stores anything):

1. **Scale.** The content is resized so its long side is ``size`` (``scaled_shape``); each style image so its long
   side is ``style_long_side_px(size, style_scale)`` = ``max(16, round(size * style_scale))``. Aspect ratios are
   kept and no side drops below 1 px.
2. **Pad thin images (the engine handles these).** Every feature map up to the job's deepest layer must be at least
   1x1, which needs an input side of ``shared.backbones.min_input_side_px`` (VGG19 default layers: 16 px;
   Xception: 7; EfficientNetB7: 16; see that module for every layer). An image whose *short* side is below that
   is reflect-padded up to it, symmetrically, before optimisation, and the output is cropped back to the scaled
   size, so a 300x3 content at size 64 (64x1 after scaling) runs and gives a 64x1 result. Reflection keeps the
   local statistics the Gram matrices measure (no black border invents an edge), costs a few rows of pixels, and
   the real pixels keep their full extent along the long side. The padded strip is optimised with the rest (the
   total-variation loss runs over it, so the crop's edge stays smooth) and then dropped.
3. **Refuse what cannot run faithfully (the door does this).** When even the *long* side after scaling is below
   the minimum (e.g. ``size=16`` with ``block5_pool``, which needs 32), padding would make most of every feature
   map up of reflections; the job is refused with ``ParamError("image_too_small")`` (422) naming the layer, the
   limit and the image's size after scaling. Since the long side after scaling is ``size`` for the content and the
   style long side for styles, this depends only on the parameters and the layers, never on the image's aspect
   ratio: any image runs at a ``size`` (and ``style_scale``) the layers allow.
4. **Coarse to fine** (``job_scale_sizes``). A job with ``min_size`` below ``size`` runs at a ladder of long sides,
   ``min_size`` up by x sqrt(2) to ``size``; a rung the layers could not run at (content or styles) is dropped, so
   a job the door accepts at ``size`` runs at every rung. Shape and refusal rules 1-3 apply at each rung.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from shared.backbones import deepest_layer, layers_or_default, min_input_side_px
from shared.errors import ParamError

# A style image's long side never goes below this (neural-style's -style_scale can make it tiny otherwise).
MIN_STYLE_LONG_SIDE_PX = 16
# crowsonkb/style-transfer-pytorch's step between coarse-to-fine scales (StyleTransfer.stylize).
SCALE_RATIO = math.sqrt(2.0)
# A rung within this factor of the output size is dropped: it costs nearly a full-size iteration and adds nothing.
SCALE_MERGE_FACTOR = 1.1


def scaled_shape(shape: Sequence[int], long_side_px: int) -> tuple[int, int]:
    """(height, width) with the long side equal to ``long_side_px`` and the aspect ratio kept (short side >= 1)."""
    height, width = int(shape[0]), int(shape[1])
    scale = long_side_px / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def style_long_side_px(size_px: int, style_scale: float) -> int:
    """A style image's long side after ``style_scale`` (neural-style's -style_scale, relative to the output)."""
    return max(MIN_STYLE_LONG_SIDE_PX, round(size_px * style_scale))


@dataclass(frozen=True)
class ImageGeometry:
    """One image of a job: its (height, width) after scaling and what the engine runs on (padded, if thin)."""

    what: str  # "content", "style" or "style 2" ...
    scaled_hw: tuple[int, int]
    padded_hw: tuple[int, int]

    @property
    def padding(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """((top, bottom), (left, right)) pixels of reflection the engine adds; the real pixels sit in the middle."""
        out = []
        for scaled, padded in zip(self.scaled_hw, self.padded_hw, strict=True):
            before = (padded - scaled) // 2
            out.append((before, padded - scaled - before))
        return out[0], out[1]

    @property
    def padded(self) -> bool:
        return self.padded_hw != self.scaled_hw


@dataclass(frozen=True)
class JobGeometry:
    backbone: str
    deepest_layer: str  # the layer that sets the minimum
    min_side_px: int  # every side the network sees is at least this
    content: ImageGeometry
    styles: tuple[ImageGeometry, ...]


def plan_image(what: str, scaled_hw: tuple[int, int], min_side_px: int, *, backbone: str, layer: str,
               scaled_by: str, field: str) -> ImageGeometry:
    """The geometry of one scaled image, or ``ParamError("image_too_small")`` when its long side is below the
    minimum (see the module docstring). ``scaled_by`` says how the scale came about (for the message)."""
    height, width = scaled_hw
    if max(height, width) < min_side_px:
        raise ParamError(
            "image_too_small",
            f"the {what} image is {width}x{height} px (width x height) after scaling ({scaled_by}); {backbone} layer "
            f"{layer} needs at least {min_side_px} px on the long side. Raise {field}, or use shallower layers",
            field=field,
        )
    return ImageGeometry(what, (height, width), (max(height, min_side_px), max(width, min_side_px)))


def check_geometry(
    backbone: str,
    content_layers: Iterable[str],
    style_layers: Iterable[str],
    content_hw: tuple[int, int],
    style_hws: Sequence[tuple[int, int]],
    size_px: int,
    style_scale: float,
) -> JobGeometry:
    """The geometry of a job, or ``ParamError`` (422): ``image_too_small`` when an image cannot run (its long side
    after scaling is below what the layers need), ``unknown_layer`` for a layer ``backbone`` does not have.

    ``content_hw`` and ``style_hws`` are the decoded images' (height, width) before scaling; the layer lists are
    names (use ``shared.backbones.layers_or_default`` for a job's defaults). Every image runs through the network
    to the deepest layer of *both* lists (one truncated extractor serves both losses), so one minimum applies to
    all. Thin images pass: the engine pads them (module docstring)."""
    names = (*content_layers, *style_layers)
    min_side = min_input_side_px(backbone, names)
    layer = deepest_layer(backbone, names)
    content = plan_image("content", scaled_shape(content_hw, size_px), min_side, backbone=backbone, layer=layer,
                         scaled_by=f"long side = size = {size_px}", field="size")
    style_long = style_long_side_px(size_px, style_scale)
    styles = tuple(
        plan_image("style" if len(style_hws) == 1 else f"style {i}", scaled_shape(hw, style_long), min_side,
                   backbone=backbone, layer=layer, field="style_scale",
                   scaled_by=f"long side = max({MIN_STYLE_LONG_SIDE_PX}, size x style_scale) = "
                             f"max({MIN_STYLE_LONG_SIDE_PX}, {size_px} x {style_scale:g}) = {style_long}")
        for i, hw in enumerate(style_hws, start=1)
    )
    return JobGeometry(backbone, layer, min_side, content, styles)


def check_job(params: Any, content_hw: tuple[int, int], style_hws: Sequence[tuple[int, int]]) -> JobGeometry:
    """``check_geometry`` for a ``shared.params.StyleParams`` (its backbone, content/style layers or the
    backbone's defaults, size and style_scale): what the API calls at submission and the engine runs by."""
    content = layers_or_default(params.backbone, params.content_layers, "content")
    style = layers_or_default(params.backbone, params.style_layers, "style")
    return check_geometry(params.backbone, [n for n, _w in content], [n for n, _w in style], content_hw,
                          style_hws, params.size, params.style_scale)


def scale_sizes(size_px: int, min_size_px: int, floor_px: int = 1, ratio: float = SCALE_RATIO) -> list[int]:
    """Long sides from ``max(min_size_px, floor_px)`` up by ``ratio`` each, ending exactly at ``size_px``; a rung
    within ``SCALE_MERGE_FACTOR`` of ``size_px`` is dropped. ``[size_px]`` (one scale) when the start is not below
    ``size_px``."""
    current = float(max(min_size_px, floor_px))
    sizes = []
    while current * SCALE_MERGE_FACTOR < size_px:
        sizes.append(round(current))
        current *= ratio
    return [*sizes, size_px]


def job_scale_sizes(params: Any) -> list[int]:
    """The coarse-to-fine ladder of a ``shared.params.StyleParams``: ``scale_sizes(size, min_size)`` from the
    smallest long side at which the content *and* the styles (``max(16, s x style_scale)``) reach the layers'
    minimum input side, so every rung runs whenever ``size`` does."""
    content = layers_or_default(params.backbone, params.content_layers, "content")
    style = layers_or_default(params.backbone, params.style_layers, "style")
    min_side = min_input_side_px(params.backbone, [n for n, _w in (*content, *style)])
    floor_px = max(min_side, math.ceil(min_side / params.style_scale))
    return scale_sizes(params.size, params.min_size, floor_px)


def job_scale_iterations(params: Any, scale_count: int) -> list[int]:
    """Iterations at each rung of the ladder, coarsest first: ``scale_iterations`` (None: ``iterations``) below the
    output size, ``iterations`` at it."""
    below = params.iterations if params.scale_iterations is None else params.scale_iterations
    return [below] * (scale_count - 1) + [params.iterations]


def rung_pixel_shares(sizes: Sequence[int]) -> list[float]:
    """What one iteration at each rung costs relative to one at the last (the output size): its pixel count over
    the output's, ``(side / output side)^2``, since a pass's work grows with the pixels."""
    return [(side / sizes[-1]) ** 2 for side in sizes]


def job_output_iterations(params: Any) -> float:
    """What a job's optimisation costs in iterations at its output size: each rung's iterations weighted by its
    ``rung_pixel_shares``. The default job (512 px from 128, 100 iterations at each of 5 rungs) is about 194; the
    batch planner, ``bench/fast.py`` and the coarse-to-fine progress (``work_done``) count work by it."""
    sizes = job_scale_sizes(params)
    iterations = job_scale_iterations(params, len(sizes))
    return sum(count * share for share, count in zip(rung_pixel_shares(sizes), iterations, strict=True))
