"""Video parameters (issue 12): one typed object shared by the API (``POST /v1/videos``), the CLI and the worker.

A video's ``params`` JSON object holds two kinds of keys:

- the video keys below (``VIDEO_PARAM_SPECS``, declared with the same ``ParamSpec`` machinery as images, so bounds,
  defaults, error messages and the OpenAPI schema come from one place);
- every other key is a Gatys parameter (``shared.params.StyleParams``: weights, layers, optimizer, seed...), used
  for each frame in ``optimize`` mode. ``size`` and ``iterations`` are the video's (their bounds differ), and
  ``style_model`` is the video's too (the ``fast`` mode's model).

Choices, where the issue was silent:

- ``size`` 256 px by default, at most 1024: a video is hundreds of frames, and one ``optimize`` frame at 256 px
  is about 0.5 s an iteration on the 2-core CPU (a 512 px frame four times that). Print sizes are for images.
- ``iterations`` (first frame of each segment) 300 like an image; ``later_iterations`` null lets the engine choose
  (Ruder et al. run the later frames with fewer iterations since they start from the warped previous result).
- ``segment_frames`` 24 and ``overlap_frames`` 4: a segment is the unit of work a worker takes (and loses if it is
  killed); 24 frames is one second of film, a few minutes of ``optimize`` at 256 px here, seconds on a GPU. Each
  segment after the first restarts 4 frames before its own range, and those frames are crossfaded with the previous
  segment's at assembly (``worker/video/segments.py`` has the rule).
- ``fps`` 0 keeps the input's rate; a positive value caps it (frames are dropped, the MP4 plays at the cap).
- ``mode`` defaults to ``optimize``, or to ``fast`` when ``style_model`` is given without a mode.

Pure Python: the API imports it without numpy or TensorFlow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from shared.errors import ParamError
from shared.params import PARAM_SPECS, ParamSpec, SpecParams, StyleParams, json_schema

MODES = ("optimize", "fast")

# Set by the optimize engine's tuning (worker/engine/video.py, bench/video.py tune, docs/video.md): Ruder's 1e3 is
# relative to their content 5 / style 100 in absolute units; our content and style losses are relative (near 1) and
# the temporal term is a mean squared difference in 0-255 units, so the number is ours. On the flicker check's clip
# (96 px, 30/15 iterations) the warping error falls to 0.15 / 0.12 / 0.08 of independent styling at 0.001 / 0.003 /
# 0.01 and no further at 0.03-1, while the frames' style loss rises (+24 % at 0.01, +46 % at 0.03, +118 % at 1):
# 0.01 is the knee.
DEFAULT_TEMPORAL_WEIGHT = 0.01
# optimize mode: with later_iterations null, every frame after the first of a segment runs this share of
# `iterations`, rounded up (Ruder et al.'s script: 2000 iterations for the first frame, 1000 after).
DEFAULT_LATER_ITERATIONS_FRACTION = 0.5
# fast mode: how much of the flow-warped previous output is blended in where the mask says a pixel is visible in
# both frames (worker/engine/video_fast.py documents the rule); 0 applies the model frame by frame.
DEFAULT_TEMPORAL_BLEND = 0.5

MAX_VIDEO_SIZE = 1024
# Gatys keys that are the video's own (the video spec replaces them) or make no sense per frame: each frame after
# the first starts from the warped previous one at the output size, so coarse to fine has nothing to do.
VIDEO_OWNED_STYLE_KEYS = frozenset({"size", "iterations", "style_model", "refine_iterations", "min_size",
                                    "scale_iterations"})

VIDEO_PARAM_SPECS: tuple[ParamSpec, ...] = (
    ParamSpec("mode", "choice", "optimize", "optimize: Ruder et al.'s method on the Gatys engine (style images); "
              "fast: a trained style model applied per frame with temporal blending.", choices=MODES),
    ParamSpec("size", "int", 256, "Long side of the output frames in pixels (never enlarged).", 16, MAX_VIDEO_SIZE),
    ParamSpec("iterations", "int", 300, "optimize: iterations of the first frame of each segment.", 1, 10000),
    ParamSpec("later_iterations", "optional_int", None, "optimize: iterations of every later frame (null: the "
              "engine's default, fewer than the first since each starts from the warped previous result).", 1, 10000),
    ParamSpec("temporal_weight", "float", DEFAULT_TEMPORAL_WEIGHT, "optimize: weight of Ruder's masked temporal "
              "loss (0: every frame on its own).", 0, 1e9),
    ParamSpec("fps", "float", 0.0, "Cap on the frame rate in frames per second (0: the input's rate).", 0, 120),
    ParamSpec("segment_frames", "int", 24, "Frames per segment: the unit of work one worker takes.", 2, 10000),
    ParamSpec("overlap_frames", "int", 4, "Frames each segment after the first restarts before its own range; "
              "crossfaded with the previous segment's at assembly.", 0, 64),
    ParamSpec("style_model", "model_id", None, "fast: the trained style model (POST /v1/styles) to apply; give no "
              "style images then."),
    ParamSpec("finetune_steps", "int", 0, "fast: steps fine-tuning the model on this clip's own frames with the "
              "temporal loss before applying it (0: apply as trained).", 0, 10000),
    ParamSpec("temporal_blend", "float", DEFAULT_TEMPORAL_BLEND, "fast: share of the flow-warped previous output "
              "blended in where a pixel is visible in both frames (0: frame by frame).", 0, 1),
)

VIDEO_SPECS_BY_NAME: dict[str, ParamSpec] = {spec.name: spec for spec in VIDEO_PARAM_SPECS}
# The Gatys parameters a video takes as they are (every StyleParams key the video does not own).
FRAME_PARAM_SPECS: tuple[ParamSpec, ...] = tuple(spec for spec in PARAM_SPECS
                                                 if spec.name not in VIDEO_OWNED_STYLE_KEYS)


def _default(name: str) -> Any:
    return VIDEO_SPECS_BY_NAME[name].default


@dataclass(frozen=True)
class VideoParams(SpecParams):
    """The video keys of ``params``, validated (``ParamError`` names a bad value and what is allowed)."""

    mode: str = _default("mode")
    size: int = _default("size")
    iterations: int = _default("iterations")
    later_iterations: int | None = _default("later_iterations")
    temporal_weight: float = _default("temporal_weight")
    fps: float = _default("fps")
    segment_frames: int = _default("segment_frames")
    overlap_frames: int = _default("overlap_frames")
    style_model: str | None = _default("style_model")
    finetune_steps: int = _default("finetune_steps")
    temporal_blend: float = _default("temporal_blend")

    SPECS: ClassVar[tuple[ParamSpec, ...]] = VIDEO_PARAM_SPECS
    WHAT: ClassVar[str] = "video parameter"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.overlap_frames >= self.segment_frames:
            raise ParamError("param_out_of_range", f"overlap_frames={self.overlap_frames} is not allowed with "
                             f"segment_frames={self.segment_frames}; expected fewer overlap frames than segment "
                             "frames", field="overlap_frames")
        if self.mode == "fast" and self.style_model is None:
            raise ParamError("style_model_required", "mode='fast' needs params.style_model (a trained style model "
                             "from POST /v1/styles); for style images use mode='optimize'", field="style_model")
        if self.mode == "optimize" and self.style_model is not None:
            raise ParamError("style_model_with_optimize", f"style_model={self.style_model!r} is applied by "
                             "mode='fast'; mode='optimize' styles with the 'style' images", field="mode")

    @property
    def fps_cap(self) -> float | None:
        return self.fps or None


@dataclass(frozen=True)
class VideoJobParams:
    """A video's whole ``params``: the video keys and the Gatys parameters of every frame."""

    video: VideoParams
    frame: StyleParams

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> VideoJobParams:
        values = dict(values or {})
        allowed = [spec.name for spec in (*VIDEO_PARAM_SPECS, *FRAME_PARAM_SPECS)]
        unknown = sorted(set(values) - set(allowed))
        if unknown:
            raise ParamError("unknown_param", f"unknown video parameter {unknown[0]!r}; allowed: {', '.join(allowed)}",
                             field=unknown[0])
        video_values = {name: value for name, value in values.items() if name in VIDEO_SPECS_BY_NAME}
        if "mode" not in video_values and video_values.get("style_model") is not None:
            video_values["mode"] = "fast"
        video = VideoParams.from_mapping(video_values)
        frame_values = {name: value for name, value in values.items() if name not in VIDEO_SPECS_BY_NAME}
        frame = StyleParams.from_mapping(frame_values).replace(size=video.size, iterations=video.iterations,
                                                               min_size=video.size)  # one scale
        return cls(video=video, frame=frame)

    def with_styles(self, style_count: int) -> VideoJobParams:
        """``fast`` takes no style images (the model is the style); ``optimize`` 1 to 8, one blend weight each."""
        if self.video.mode == "fast":
            if style_count:
                raise ParamError("style_images_with_style_model", f"got {style_count} style images and mode='fast'; "
                                 "the style model is the style: send no 'style' parts", field="style")
            return self
        self.frame.with_styles(style_count)
        return self

    def to_dict(self) -> dict[str, Any]:
        """The flat JSON form (what the record stores and ``from_mapping`` reads back)."""
        frame = {name: value for name, value in self.frame.to_dict().items() if name not in VIDEO_OWNED_STYLE_KEYS}
        return {**self.video.to_dict(), **frame}


def video_params_schema() -> dict[str, Any]:
    """JSON Schema of a video's ``params`` (OpenAPI)."""
    return json_schema((*VIDEO_PARAM_SPECS, *FRAME_PARAM_SPECS),
                       "Video keys, then the Gatys parameters of every frame (optimize mode). Every field is "
                       "optional and defaults as shown; mode is fast when style_model is given without a mode.")
