"""Click options generated from ``shared.params.PARAM_SPECS``, so every command that takes stylization
parameters (``stylize``, ``batch``, ``submit``) offers the same flags with the same names, defaults and help; and
from ``shared.train_params.TRAIN_PARAM_SPECS`` for ``atelier styles train``, by the same code.

Each parameter ``foo_bar`` becomes ``--foo-bar`` with the environment twin ``ATELIER_FOO_BAR`` (training parameters:
``ATELIER_TRAIN_FOO_BAR``, because ``size``, ``seed`` or ``learning_rate`` mean other things there: a crop side, not
an output side; Adam on network weights, not on pixels). Options default to ``None`` ("not given"), so
``params_from_options`` passes on only what the user chose and ``StyleParams`` (or ``TrainParams``) fills in the
rest: bounds and defaults live in one place (``shared/``), and an out-of-range value gets the same message here as
from the API.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import click

from shared.errors import ParamError
from shared.params import PARAM_SPECS, ParamSpec, StyleParams
from shared.train_params import TRAIN_PARAM_SPECS, TrainParams

F = TypeVar("F", bound=Callable[..., Any])

ENV_PREFIX = "ATELIER_"
TRAIN_ENV_PREFIX = "ATELIER_TRAIN_"


def flag_name(param_name: str) -> str:
    """``content_weight`` -> ``--content-weight``."""
    return "--" + param_name.replace("_", "-")


def env_name(param_name: str, prefix: str = ENV_PREFIX) -> str:
    """``content_weight`` -> ``ATELIER_CONTENT_WEIGHT`` (``TRAIN_ENV_PREFIX``: ``ATELIER_TRAIN_CONTENT_WEIGHT``)."""
    return prefix + param_name.upper()


def _click_type(spec: ParamSpec) -> click.ParamType:
    # Numbers are parsed by click (so "abc" is rejected with click's one-line message) but NOT bounded here:
    # StyleParams checks bounds so the CLI and the API word range errors identically.
    if spec.kind in ("int", "optional_int"):
        return click.INT
    if spec.kind == "float":
        return click.FLOAT
    if spec.kind == "choice":
        return click.Choice(spec.choices, case_sensitive=False)
    # float_list ("0.7,0.3") and layer_weights ("block1_conv1,block2_conv1:0.5") are parsed below.
    return click.STRING


def _metavar(spec: ParamSpec) -> str | None:
    if spec.kind == "float_list":
        return "W1,W2,..."
    if spec.kind == "layer_weights":
        return "LAYER[:WEIGHT],..."
    return None


def _help(spec: ParamSpec) -> str:
    text = spec.help
    if spec.kind in ("int", "float", "optional_int"):
        text += f" Allowed: {spec.allowed().removeprefix('a number ').removeprefix('an integer ')}."
    if spec.default is not None:
        # Shown from the spec because the option's own default is None ("not given", see module docstring).
        text += f" Default: {spec.default}."
    return text


def style_param_options(exclude: Iterable[str] = ()) -> Callable[[F], F]:
    """Decorator adding one option per stylization parameter (minus ``exclude``) to a click command."""
    return spec_options(PARAM_SPECS, ENV_PREFIX, exclude)


def train_param_options(exclude: Iterable[str] = ()) -> Callable[[F], F]:
    """Decorator adding one option per training parameter (``TRAIN_PARAM_SPECS``, minus ``exclude``)."""
    return spec_options(TRAIN_PARAM_SPECS, TRAIN_ENV_PREFIX, exclude)


def spec_options(specs: tuple[ParamSpec, ...], env_prefix: str, exclude: Iterable[str] = ()) -> Callable[[F], F]:
    """Decorator adding one option per spec of ``specs`` (minus ``exclude``), environment twins under
    ``env_prefix``."""
    excluded = set(exclude)
    unknown = excluded - {spec.name for spec in specs}
    if unknown:
        raise ValueError(f"unknown parameter names to exclude: {sorted(unknown)}")

    def decorate(func: F) -> F:
        # click lists options in decoration order from the bottom up, so apply them reversed to keep
        # the specs' order in --help.
        for spec in reversed(specs):
            if spec.name in excluded:
                continue
            func = click.option(
                flag_name(spec.name),
                spec.name,
                type=_click_type(spec),
                default=None,
                envvar=env_name(spec.name, env_prefix),
                show_envvar=True,
                metavar=_metavar(spec),
                help=_help(spec),
            )(func)
        return func

    return decorate


def parse_layer_weights(text: str) -> dict[str, float] | list[str]:
    """``"a,b"`` -> ``["a", "b"]`` (equal weights); ``"a:1,b:0.5"`` -> ``{"a": 1.0, "b": 0.5}``.

    Layer names are checked by the engine (it knows the backbone); only the syntax is checked here.
    """
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not any(":" in part for part in parts):
        return parts
    weights: dict[str, float] = {}
    for part in parts:
        name, _, weight = part.partition(":")
        try:
            weights[name.strip()] = float(weight) if weight else 1.0
        except ValueError:
            raise ParamError(
                "param_out_of_range",
                f"layer weight {weight!r} in {text!r} is not a number; expected LAYER or LAYER:WEIGHT, comma separated",
            ) from None
    return weights


def params_from_options(options: Mapping[str, Any], *, base: Mapping[str, Any] | None = None) -> StyleParams:
    """Build validated ``StyleParams`` from a command's keyword arguments (other keys are ignored).

    ``base`` supplies values the command sets itself (for example a batch file's own params); options the user
    gave override it. Raises ``ParamError`` with the shared wording on a bad value.
    """
    return StyleParams.from_mapping(spec_values(PARAM_SPECS, options, base))


def train_params_from_options(options: Mapping[str, Any], *, base: Mapping[str, Any] | None = None) -> TrainParams:
    """As ``params_from_options``, for the training parameters: validated ``TrainParams``."""
    return TrainParams.from_mapping(spec_values(TRAIN_PARAM_SPECS, options, base))


def given_params(specs: tuple[ParamSpec, ...], options: Mapping[str, Any], validated: Mapping[str, Any]
                 ) -> dict[str, Any]:
    """The validated values (``to_dict()``) of only the parameters the user gave: what a command sends to the API,
    so the server's defaults apply to the rest."""
    given = {spec.name for spec in specs if options.get(spec.name) is not None}
    return {name: value for name, value in validated.items() if name in given}


def spec_values(specs: tuple[ParamSpec, ...], options: Mapping[str, Any], base: Mapping[str, Any] | None = None
                ) -> dict[str, Any]:
    """The values of ``specs`` the options give, over ``base``; layer lists parsed (``parse_layer_weights``)."""
    values: dict[str, Any] = dict(base or {})
    for spec in specs:
        value = options.get(spec.name)
        if value is None:
            continue
        if spec.kind == "layer_weights" and isinstance(value, str):
            value = parse_layer_weights(value)
            if not value:
                raise ParamError("param_out_of_range", f"{spec.name} is empty; expected {spec.allowed()}",
                                 field=spec.name)
        values[spec.name] = value
    return values
