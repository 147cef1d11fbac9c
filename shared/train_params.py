"""Fast-style training parameters: one typed object shared by the API (``POST /v1/styles``), the CLI and the trainer.

Declared once in ``TRAIN_PARAM_SPECS`` with the same ``ParamSpec`` machinery as the Gatys parameters
(``shared.params``), so bounds, defaults, error messages and the OpenAPI schema come from one place. Pure Python: the
API imports it without TensorFlow; ``worker.engine.trainer`` trains with it.

Defaults follow Johnson et al. 2016 where they apply (256 px crops, batch 4, Adam at 1e-3) and the Gatys engine for
the objective (its layers and relative losses, content 1, style 10, TV 1e-3: the same weights mean the same balance
in both engines). Three departures: width 0.5 (a 512 px image in 0.17 s instead of 0.72 s at width 1.0 on the
2-core CPU; training costs the same, the loss network dominates it), 1000 steps, and content weight 3: a network
trained with the Gatys balance (1) turned the astronaut's face under The Scream into a blob (luminance SSIM 0.17),
with 3 the head and suit stay readable (SSIM 0.38) and the style's random-network Gram distance even fell (0.199 ->
0.083); one network serves every image, so it cannot trade content for style per image the way an optimisation
does (docs/fast.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from shared.params import BACKBONES, POOLINGS, PRESERVE_COLORS, ParamSpec, SpecParams, StyleParams

# Architecture bounds of the image-transformation network (worker/engine/feedforward.py builds it).
MIN_WIDTH, MAX_WIDTH = 1 / 32, 4.0
DEFAULT_RESIDUAL_BLOCKS = 5  # Johnson's network for 256 px inputs
MAX_RESIDUAL_BLOCKS = 16

TRAIN_PARAM_SPECS: tuple[ParamSpec, ...] = (
    ParamSpec("size", "int", 256, "Side of the square training crops, px.", 16, 1024),
    ParamSpec("steps", "int", 1000, "Adam steps.", 1, 200_000),
    ParamSpec("batch_size", "int", 4, "Crops per step.", 1, 64),
    ParamSpec("learning_rate", "float", 1e-3, "Adam's step size.", 1e-6, 1.0),
    ParamSpec("content_weight", "float", 3.0, "Weight of the content loss.", 0, 1e9),
    ParamSpec("style_weight", "float", 10.0, "Weight of the style loss.", 0, 1e9),
    ParamSpec("tv_weight", "float", 1e-3, "Weight of the total-variation loss.", 0, 1e9),
    ParamSpec("style_blend", "float_list", None, "Blend weight per style image (default: equal).", 0, 1e6),
    ParamSpec("style_scale", "float", 1.0, "Style image size relative to the crops.", 0.1, 4.0),
    ParamSpec("preserve_color", "choice", "none", "Keep the content's colours.", choices=PRESERVE_COLORS),
    ParamSpec("width", "float", 0.5, "Channel width multiplier of the network (1.0: Johnson's 32/64/128).",
              MIN_WIDTH, MAX_WIDTH),
    ParamSpec("residual_blocks", "int", DEFAULT_RESIDUAL_BLOCKS, "Residual blocks of the network.", 0,
              MAX_RESIDUAL_BLOCKS),
    ParamSpec("seed", "int", 0, "Random seed: same inputs, params and seed give the same model on one machine.", 0,
              2**32 - 1),
    ParamSpec("checkpoint_every", "int", 50, "Steps between checkpoints (a killed worker resumes from the last; 0: "
              "never).", 0, 200_000),
    ParamSpec("progress_every", "int", 10, "Report progress every N steps.", 1, 200_000),
    ParamSpec("backbone", "choice", "vgg19", "Loss network.", choices=BACKBONES),
    ParamSpec("pooling", "choice", "max", "VGG19 pooling (max or average).", choices=POOLINGS),
    ParamSpec("content_layers", "layer_weights", None, "Content layers and weights (default: backbone's)."),
    ParamSpec("style_layers", "layer_weights", None, "Style layers and weights (default: backbone's)."),
    ParamSpec("max_scale", "float", 1.5, "Scale jitter: a crop's short side is 1 to this times size.", 1.0, 4.0),
)

TRAIN_SPECS_BY_NAME: dict[str, ParamSpec] = {spec.name: spec for spec in TRAIN_PARAM_SPECS}
# What a checkpoint may be resumed with a different value of: how long to go on and how often to report.
RESUMABLE_CHANGES = frozenset({"steps", "checkpoint_every", "progress_every"})


def _default(name: str) -> Any:
    return TRAIN_SPECS_BY_NAME[name].default


@dataclass(frozen=True)
class TrainParams(SpecParams):
    """Validated training parameters (``ParamError`` names a bad value and what is allowed)."""

    size: int = _default("size")
    steps: int = _default("steps")
    batch_size: int = _default("batch_size")
    learning_rate: float = _default("learning_rate")
    content_weight: float = _default("content_weight")
    style_weight: float = _default("style_weight")
    tv_weight: float = _default("tv_weight")
    style_blend: tuple[float, ...] | None = _default("style_blend")
    style_scale: float = _default("style_scale")
    preserve_color: str = _default("preserve_color")
    width: float = _default("width")
    residual_blocks: int = _default("residual_blocks")
    seed: int = _default("seed")
    checkpoint_every: int = _default("checkpoint_every")
    progress_every: int = _default("progress_every")
    backbone: str = _default("backbone")
    pooling: str = _default("pooling")
    content_layers: tuple[tuple[str, float], ...] | None = _default("content_layers")
    style_layers: tuple[tuple[str, float], ...] | None = _default("style_layers")
    max_scale: float = _default("max_scale")

    SPECS: ClassVar[tuple[ParamSpec, ...]] = TRAIN_PARAM_SPECS
    WHAT: ClassVar[str] = "training parameter"

    def with_styles(self, style_count: int) -> TrainParams:
        """Check the number of style images and ``style_blend`` against it (as for Gatys jobs)."""
        self.style_params().with_styles(style_count)
        return self

    def style_params(self) -> StyleParams:
        """The Gatys parameters describing the same loss network and style targets (float32: training always)."""
        return StyleParams(
            size=self.size, backbone=self.backbone, pooling=self.pooling, precision="float32",
            content_layers=self.content_layers, style_layers=self.style_layers, style_blend=self.style_blend,
            style_scale=self.style_scale, content_weight=self.content_weight, style_weight=self.style_weight,
            tv_weight=self.tv_weight,
        )
