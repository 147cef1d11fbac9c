"""Stylization parameters: one typed object shared by the API, the CLI and the engine.

Every parameter is declared once in ``PARAM_SPECS`` with its type, default and bounds. The API validates
``params`` JSON with ``StyleParams.from_mapping``, the CLI builds its ``--flags`` from the same specs, and the
engine receives the validated object. A bad value raises ``ParamError`` whose message names the value and what is
allowed, so every surface reports the same thing.

This module is pure Python (no numpy, no TensorFlow) so the API can import it cheaply.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from shared.errors import ParamError

BACKBONES = ("vgg19", "xception", "efficientnetb7")
OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise", "style")
PRESERVE_COLORS = ("none", "luminance", "histogram")
PRECISIONS = ("auto", "float32", "bfloat16")
POOLINGS = ("max", "avg")
STYLE_MIXES = ("gram", "wasserstein")  # worker/engine/wasserstein.py

MAX_STYLES = 8
MODEL_ID_PATTERN = "^[0-9a-f]{32}$"  # shared.jobs.new_job_id: a style model's id is its training job's


@dataclass(frozen=True)
class ParamSpec:
    """How one parameter is typed, bounded and documented."""

    name: str
    kind: str  # "int" | "float" | "choice" | "float_list" | "layer_weights" | "optional_int" | "model_id"
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()

    def allowed(self) -> str:
        """Human-readable description of the allowed values, used in error messages."""
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind in ("int", "optional_int"):
            text = f"an integer from {_fmt(self.minimum)} to {_fmt(self.maximum)}"
            return text + (" or null" if self.kind == "optional_int" else "")
        if self.kind == "float":
            return f"a number from {_fmt(self.minimum)} to {_fmt(self.maximum)}"
        if self.kind == "float_list":
            return f"a list of up to {MAX_STYLES} numbers from 0 to {_fmt(self.maximum)} with a positive sum"
        if self.kind == "layer_weights":
            return "an object mapping Keras layer names to weights from 0 to 1000, or a list of layer names"
        if self.kind == "model_id":
            return "the id of a style model (32 hexadecimal characters, from POST /v1/styles) or null"
        raise AssertionError(self.kind)


def _fmt(value: float | None) -> str:
    if value is None:
        return "?"
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


# Default weights (tuned by the engine on the sample pairs at 128-256 px; see worker/engine/losses.py): the engine's
# content and style losses are relative (divided by their target's mean square), so both start near 1. Style 10
# makes the style evident while the content stays recognisable (100 dissolves faces and buildings at 128 px).
# TV 1e-4 (on a mean squared neighbour difference in 0-255 units, ~300 for photos, ~1500 for a painted result): the
# earlier 1e-3 was the cause of the soft, washed-out brush texture (issue 13, item 0). The penalty is squared, so it
# falls hardest on exactly the 4-16 px strokes; at 1e-3 it held the outputs' Gabor energy at those periods 15% under
# the style's (bench/texture.py: gabor 0.21 against 0.13 at 1e-4 and 0.12 at 0, on the sample pairs at 256 px),
# while the content weight, the style layer weights and the L-BFGS memory moved it by less than 0.01. 1e-4 keeps a
# little smoothing against single-pixel speckle.
# Coarse to fine by default (issue 13, item 1): min_size 128 and 100 iterations at each of the scales 128, 181, 256,
# 362 and 512 reach the old default's score (one scale, 300 iterations at 512 px) in 0.37 of its time and end
# better (bench/quality_time.py: 0.78 and 0.92 against 1.0 on two pairs, lower is better), at about 0.65 of its
# cost (194 output-size iterations' worth of work instead of 300; shared.geometry.job_output_iterations). Past 100
# iterations at the output size the curves are flat: 150 gained 0.01 for 50% more time at that scale.
# Adam's step of 10 pixel units per iteration (neural-style's default) halves the loss in
# 20 iterations; 4 did not.
PARAM_SPECS: tuple[ParamSpec, ...] = (
    ParamSpec("size", "int", 512, "Long side of the output in pixels.", 16, 4096),
    ParamSpec("iterations", "int", 100, "Optimizer iterations at each scale (the output size and, coarse to fine, "
              "every smaller scale unless scale_iterations says otherwise).", 1, 10000),
    ParamSpec("min_size", "int", 128, "Coarse to fine: long side in pixels of the first scale; each next scale is "
              "sqrt(2) larger, up to size. At or above size: one scale.", 16, 4096),
    ParamSpec("scale_iterations", "optional_int", None, "Coarse to fine: optimizer iterations at each scale below "
              "size (null: iterations).", 1, 10000),
    ParamSpec("backbone", "choice", "vgg19", "Pretrained network that defines content and style.", choices=BACKBONES),
    ParamSpec("optimizer", "choice", "lbfgs", "L-BFGS (scipy) or Adam.", choices=OPTIMIZERS),
    ParamSpec("content_weight", "float", 1.0, "Weight of the content loss.", 0, 1e9),
    ParamSpec("style_weight", "float", 10.0, "Weight of the style loss.", 0, 1e9),
    ParamSpec("tv_weight", "float", 1e-4, "Weight of the total-variation loss.", 0, 1e9),
    ParamSpec("style_blend", "float_list", None, "Blend weight per style image (default: equal).", 0, 1e6),
    ParamSpec("style_mix", "choice", "gram", "How several styles mix with the blend weights: gram averages their "
              "Gram matrices; wasserstein matches the Wasserstein-2 barycenter of their feature Gaussians (mean and "
              "covariance per layer). One style gives the same result either way.",
              choices=STYLE_MIXES),
    ParamSpec("style_scale", "float", 1.0, "Style image size relative to the output.", 0.1, 4.0),
    ParamSpec("init", "choice", "content", "Starting image.", choices=INITS),
    ParamSpec("preserve_color", "choice", "none", "Keep the content's colours.", choices=PRESERVE_COLORS),
    ParamSpec("seed", "int", 0, "Random seed; equal inputs and seed give identical CPU output.", 0, 2**32 - 1),
    ParamSpec("precision", "choice", "auto", "Backbone arithmetic; auto uses bfloat16 where fast.", choices=PRECISIONS),
    ParamSpec("progress_every", "int", 10, "Report progress every N iterations.", 1, 10000),
    ParamSpec("pooling", "choice", "max", "VGG19 pooling (max or average).", choices=POOLINGS),
    ParamSpec("content_layers", "layer_weights", None, "Content layers and weights (default: backbone's)."),
    ParamSpec("style_layers", "layer_weights", None, "Style layers and weights (default: backbone's)."),
    ParamSpec("learning_rate", "float", 10.0, "Adam step size in pixel units (0-255 scale).", 1e-4, 255),
    ParamSpec("early_stop_tol", "float", 0.0, "Stop when relative improvement over the window is below this (0: off).",
              0, 1),
    ParamSpec("early_stop_window", "int", 20, "Iterations over which early stop measures improvement.", 1, 1000),
    ParamSpec("style_model", "model_id", None, "Style with a trained style model (POST /v1/styles) in one forward "
              "pass instead of optimizing; give no style images then."),
    ParamSpec("refine_iterations", "int", 0, "With style_model: Gatys iterations started from the network's "
              "output (0: the network's output as it is).", 0, 10000),
)

SPECS_BY_NAME: dict[str, ParamSpec] = {spec.name: spec for spec in PARAM_SPECS}


def _default(name: str) -> Any:
    """The default declared in ``PARAM_SPECS``: the one place defaults live (the dataclass below reads them)."""
    return SPECS_BY_NAME[name].default


Self = TypeVar("Self", bound="SpecParams")


class SpecParams:
    """What every parameter object declared by ``ParamSpec``s shares (``StyleParams``, ``TrainParams``): coercion of
    every field on construction, ``from_mapping`` with unknown names refused, the JSON form. Subclasses are frozen
    dataclasses whose fields are exactly ``SPECS``, in order, with the specs' defaults."""

    SPECS: ClassVar[tuple[ParamSpec, ...]] = ()
    WHAT: ClassVar[str] = "parameter"  # in error messages: "unknown <WHAT> 'x'"

    def __post_init__(self) -> None:
        for spec in self.SPECS:
            object.__setattr__(self, spec.name, coerce(spec, getattr(self, spec.name)))

    @classmethod
    def from_mapping(cls: type[Self], values: Mapping[str, Any] | None) -> Self:
        """Validate a JSON-like mapping; unknown names and bad values raise ``ParamError``."""
        values = dict(values or {})
        by_name = {spec.name: spec for spec in cls.SPECS}
        unknown = sorted(set(values) - set(by_name))
        if unknown:
            raise ParamError("unknown_param", f"unknown {cls.WHAT} {unknown[0]!r}; allowed: {', '.join(by_name)}",
                             field=unknown[0])
        return cls(**{name: value for name, value in values.items()
                      if value is not None or by_name[name].default is None})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with every parameter (layer weights as objects, lists as lists)."""
        out: dict[str, Any] = {}
        for spec in self.SPECS:
            value = getattr(self, spec.name)
            if spec.kind == "layer_weights" and value is not None:
                value = dict(value)
            elif spec.kind == "float_list" and value is not None:
                value = list(value)
            out[spec.name] = value
        return out

    def replace(self: Self, **changes: Any) -> Self:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


@dataclass(frozen=True)
class StyleParams(SpecParams):
    """Validated stylization parameters. Build with ``StyleParams.from_mapping`` to get bounds checks. Field
    defaults come from ``PARAM_SPECS`` (a test checks that every spec has a field and every field a spec)."""

    size: int = _default("size")
    iterations: int = _default("iterations")
    min_size: int = _default("min_size")
    scale_iterations: int | None = _default("scale_iterations")
    backbone: str = _default("backbone")
    optimizer: str = _default("optimizer")
    content_weight: float = _default("content_weight")
    style_weight: float = _default("style_weight")
    tv_weight: float = _default("tv_weight")
    style_blend: tuple[float, ...] | None = _default("style_blend")
    style_mix: str = _default("style_mix")
    style_scale: float = _default("style_scale")
    init: str = _default("init")
    preserve_color: str = _default("preserve_color")
    seed: int = _default("seed")
    precision: str = _default("precision")
    progress_every: int = _default("progress_every")
    pooling: str = _default("pooling")
    content_layers: tuple[tuple[str, float], ...] | None = _default("content_layers")
    style_layers: tuple[tuple[str, float], ...] | None = _default("style_layers")
    learning_rate: float = _default("learning_rate")
    early_stop_tol: float = _default("early_stop_tol")
    early_stop_window: int = _default("early_stop_window")
    style_model: str | None = _default("style_model")
    refine_iterations: int = _default("refine_iterations")

    SPECS: ClassVar[tuple[ParamSpec, ...]] = PARAM_SPECS

    def with_styles(self, style_count: int) -> StyleParams:
        """Check the style images against the params: none with ``style_model`` (the model is the style), else 1 to
        ``MAX_STYLES`` with one ``style_blend`` weight each. Returns self for chaining."""
        if self.style_model is not None:
            if style_count:
                raise ParamError("style_images_with_style_model", f"got {style_count} style images and style_model="
                                 f"{self.style_model!r}; the model is the style: send no 'style' parts",
                                 field="style")
            return self
        if self.refine_iterations:
            raise ParamError("refine_without_style_model", f"refine_iterations={self.refine_iterations} needs a "
                             "style_model; without one, use iterations", field="refine_iterations")
        if not 1 <= style_count <= MAX_STYLES:
            raise ParamError("bad_style_count", f"got {style_count} style images; allowed: 1 to {MAX_STYLES}",
                             field="style")
        if self.style_blend is not None and len(self.style_blend) != style_count:
            raise ParamError(
                "param_out_of_range",
                f"style_blend has {len(self.style_blend)} weights for {style_count} style images; "
                "give one weight per style image",
                field="style_blend",
            )
        return self

    def blend_weights(self, style_count: int) -> tuple[float, ...]:
        """Blend weights normalised to sum to 1 (equal when not given)."""
        raw = self.style_blend or (1.0,) * style_count
        total = sum(raw)
        return tuple(w / total for w in raw)


def spec_json_schema(spec: ParamSpec) -> dict[str, Any]:
    """The exact JSON Schema of one parameter: what ``coerce`` accepts, no more, no less (apart from cross-field
    rules such as ``style_blend`` having one weight per style, said in the description). The OpenAPI description
    is built from this."""
    prop: dict[str, Any] = {"description": spec.help, "default": spec.default}
    if spec.kind == "int":
        prop.update(type="integer", minimum=spec.minimum, maximum=spec.maximum)
    elif spec.kind == "optional_int":
        prop.update(type=["integer", "null"], minimum=spec.minimum, maximum=spec.maximum)
    elif spec.kind == "float":
        prop.update(type="number", minimum=spec.minimum, maximum=spec.maximum)
    elif spec.kind == "choice":
        prop.update(type="string", enum=list(spec.choices))
    elif spec.kind == "model_id":
        prop.update(type=["string", "null"], pattern=MODEL_ID_PATTERN)
    elif spec.kind == "float_list":
        prop.update(description=spec.help + " One weight per 'style' part, at least one of them positive.",
                    oneOf=[{"type": "null"},
                           {"type": "array", "minItems": 1, "maxItems": MAX_STYLES,
                            "items": {"type": "number", "minimum": 0, "maximum": spec.maximum},
                            "contains": {"type": "number", "exclusiveMinimum": 0}}])
    elif spec.kind == "layer_weights":
        name = {"type": "string", "minLength": 1, "maxLength": 128, "description": "A Keras layer name of the "
                "backbone, such as block4_conv2 (VGG19)."}
        weight = {"type": "number", "minimum": 0, "maximum": 1000}
        prop.update(description=spec.help + " A list of layer names (equal weights) or an object of layer name -> "
                    "weight.",
                    oneOf=[{"type": "null"},
                           {"type": "array", "minItems": 1, "maxItems": 64, "items": name},
                           {"type": "object", "minProperties": 1, "maxProperties": 64,
                            "propertyNames": {"minLength": 1, "maxLength": 128},
                            "additionalProperties": weight}])
    else:  # pragma: no cover - a new kind must be described here
        raise AssertionError(spec.kind)
    return prop


def json_schema(specs: tuple[ParamSpec, ...] = PARAM_SPECS, description: str = "") -> dict[str, Any]:
    """JSON Schema of a ``params`` object made of ``specs`` (used in the OpenAPI description)."""
    return {"type": "object", "additionalProperties": False,
            "description": description or "Every field is optional and defaults as shown.",
            "properties": {spec.name: spec_json_schema(spec) for spec in specs}}


# --- coercion -------------------------------------------------------------------------------------------------


def _bad(spec: ParamSpec, value: Any) -> ParamError:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return ParamError("param_out_of_range", f"{spec.name}={shown} is not allowed; expected {spec.allowed()}",
                      field=spec.name)


def coerce(spec: ParamSpec, value: Any) -> Any:
    if value is None:
        if spec.default is None:
            return None
        raise _bad(spec, value)
    if spec.kind in ("int", "optional_int"):
        return _coerce_number(spec, value, integer=True)
    if spec.kind == "float":
        return _coerce_number(spec, value, integer=False)
    if spec.kind == "choice":
        if not isinstance(value, str) or value.lower() not in spec.choices:
            raise _bad(spec, value)
        return value.lower()
    if spec.kind == "float_list":
        return _coerce_float_list(spec, value)
    if spec.kind == "layer_weights":
        return _coerce_layer_weights(spec, value)
    if spec.kind == "model_id":
        if not isinstance(value, str) or not re.fullmatch(MODEL_ID_PATTERN, value):
            raise _bad(spec, value)
        return value
    raise AssertionError(spec.kind)


def _coerce_number(spec: ParamSpec, value: Any, *, integer: bool) -> int | float:
    # bool is an int subclass in Python; "true" is never a sensible size or weight.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(spec, value)
    if not math.isfinite(value):
        raise _bad(spec, value)
    if integer:
        if isinstance(value, float) and not value.is_integer():
            raise _bad(spec, value)
        value = int(value)
    else:
        value = float(value)
    assert spec.minimum is not None and spec.maximum is not None
    if not spec.minimum <= value <= spec.maximum:
        raise _bad(spec, value)
    return value


def _coerce_float_list(spec: ParamSpec, value: Any) -> tuple[float, ...]:
    if isinstance(value, str):
        try:
            value = [float(part) for part in value.split(",") if part.strip()]
        except ValueError:
            raise _bad(spec, value) from None
    if not isinstance(value, (list, tuple)) or not 1 <= len(value) <= MAX_STYLES:
        raise _bad(spec, value)
    numbers = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (int, float)) or not math.isfinite(item):
            raise _bad(spec, value)
        if not 0 <= item <= (spec.maximum or math.inf):
            raise _bad(spec, value)
        numbers.append(float(item))
    if sum(numbers) <= 0:
        raise _bad(spec, value)
    return tuple(numbers)


def _coerce_layer_weights(spec: ParamSpec, value: Any) -> tuple[tuple[str, float], ...]:
    """Accept ``["a", "b"]`` (equal weights), ``{"a": 1, "b": 0.5}`` or ``"a,b"``; layer names are checked by
    the engine, which knows the backbone."""
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(item, (list, tuple)) and len(item) == 2 for item in value):
            pairs = [(item[0], item[1]) for item in value]
        else:
            pairs = [(item, 1.0) for item in value]
    elif isinstance(value, Mapping):
        pairs = list(value.items())
    else:
        raise _bad(spec, value)
    if not 1 <= len(pairs) <= 64:
        raise _bad(spec, value)
    out = []
    for name, weight in pairs:
        if not isinstance(name, str) or not name or len(name) > 128:
            raise _bad(spec, value)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 1000:
            raise _bad(spec, value)
        out.append((name, float(weight)))
    return tuple(out)

