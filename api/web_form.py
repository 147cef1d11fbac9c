"""The studio's parameters form, generated from ``shared.params.PARAM_SPECS`` (the one parameter definition).

Each ``ParamSpec`` becomes one ``FormField``: its HTML widget and constraint attributes (``min``, ``max``, ``step``,
``required``), its default and its help text, so the page validates with the same bounds the API enforces and shows
the same "allowed" text the API's error messages use (``ParamSpec.allowed``). The template (``api/templates/
index.html``) renders the fields server-side; the page's script (``api/static/js/studio.js``) reads each field's
``data-*`` attributes to build the ``params`` JSON, sending only values that differ from the default so the API's
defaults stay the API's.

Two kinds have their own widgets elsewhere on the form: ``float_list`` (``style_blend``) is the blend slider of each
style image, and ``model_id`` (``style_model``) is a select the script fills from ``GET /v1/styles``. A kind this
module does not know (a parameter added later) still gets a text field whose value is sent as JSON when it parses,
else as text; the API remains the judge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.params import PARAM_SPECS, ParamSpec

# Shown above the fold; every other parameter is under "Advanced" (a <details> element).
PRIMARY_PARAMS = ("size", "iterations", "style_weight", "content_weight", "tv_weight", "backbone", "optimizer",
                  "init", "preserve_color", "style_model")
# Labels where the parameter's name does not read well as one ("Tv weight").
LABELS = {"tv_weight": "TV weight", "init": "Start from", "early_stop_tol": "Early-stop tolerance",
          "early_stop_window": "Early-stop window", "progress_every": "Progress every (iterations)"}
# Kinds with a widget of their own rather than a field in the parameters fieldset.
BLEND_KIND = "float_list"
MODEL_KIND = "model_id"


@dataclass(frozen=True)
class FormField:
    name: str
    kind: str
    label: str
    help: str
    allowed: str
    widget: str  # "number" | "select" | "text" | "model" | "blend"
    default: Any
    attrs: dict[str, str] = field(default_factory=dict)  # HTML attributes of the <input>/<select>
    choices: tuple[str, ...] = ()
    primary: bool = False

    @property
    def default_text(self) -> str:
        if self.default is None:
            return ""
        return number_text(self.default) if self.widget == "number" else str(self.default)


def number_text(value: float | None) -> str:
    """A number as an HTML ``valid floating-point number`` (no ``1e+09``-style exponents for integers)."""
    if value is None:
        return ""
    if float(value).is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(float(value))


def form_field(spec: ParamSpec) -> FormField:
    label = LABELS.get(spec.name, spec.name.replace("_", " ").capitalize())
    common: dict[str, Any] = {"name": spec.name, "kind": spec.kind, "label": label, "help": spec.help,
                              "allowed": _allowed(spec), "default": spec.default,
                              "primary": spec.name in PRIMARY_PARAMS}
    if spec.kind in ("int", "optional_int", "float"):
        attrs = {"type": "number", "min": number_text(spec.minimum), "max": number_text(spec.maximum),
                 "step": "1" if spec.kind != "float" else "any", "inputmode": "decimal"}
        if spec.kind != "optional_int":
            attrs["required"] = "required"
        return FormField(widget="number", attrs=attrs, **common)
    if spec.kind == "choice":
        return FormField(widget="select", choices=spec.choices, **common)
    if spec.kind == BLEND_KIND:
        return FormField(widget="blend", attrs={"min": number_text(spec.minimum or 0)}, **common)
    if spec.kind == MODEL_KIND:
        return FormField(widget="model", **common)
    if spec.kind == "layer_weights":
        return FormField(widget="text", attrs={"type": "text", "placeholder": "default (e.g. block4_conv2, "
                                               "block5_conv2)", "maxlength": "4096", "spellcheck": "false"},
                         **common)
    return FormField(widget="text", attrs={"type": "text", "maxlength": "4096", "spellcheck": "false"}, **common)


def _allowed(spec: ParamSpec) -> str:
    try:
        return spec.allowed()
    except AssertionError:  # a kind ParamSpec.allowed does not describe yet
        return "see the API's description"


def form_fields(specs: tuple[ParamSpec, ...] = PARAM_SPECS) -> list[FormField]:
    return [form_field(spec) for spec in specs]
