"""The click options are generated from PARAM_SPECS: every parameter has a flag and an environment twin, and the
CLI validates with the same StyleParams rules (and wording) as the API."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from services.cli.options import env_name, flag_name, params_from_options, parse_layer_weights, style_param_options
from shared.errors import ParamError
from shared.params import PARAM_SPECS, StyleParams


@click.command()
@style_param_options()
def echo_params(**options: object) -> None:
    click.echo(repr(params_from_options(options)))


def test_every_param_has_a_flag_and_an_env_twin() -> None:
    options = {tuple(param.opts): param for param in echo_params.params}
    for spec in PARAM_SPECS:
        param = options[(flag_name(spec.name),)]
        assert param.name == spec.name
        assert param.envvar == env_name(spec.name) == "ATELIER_" + spec.name.upper()


def test_flag_names_use_dashes() -> None:
    assert flag_name("content_weight") == "--content-weight"
    assert flag_name("preserve_color") == "--preserve-color"


def test_no_options_gives_the_shared_defaults() -> None:
    assert params_from_options({}) == StyleParams()


def test_flags_and_env_twins_reach_the_params() -> None:
    result = CliRunner().invoke(
        echo_params,
        ["--size", "96", "--backbone", "XCEPTION", "--style-blend", "0.7,0.3", "--style-layers",
         "block1_conv1,block3_conv1:0.5"],
        env={"ATELIER_ITERATIONS": "7", "ATELIER_PRESERVE_COLOR": "luminance"},
    )
    assert result.exit_code == 0, result.output
    expected = StyleParams(size=96, iterations=7, backbone="xception", style_blend=(0.7, 0.3),
                           preserve_color="luminance",
                           style_layers=(("block1_conv1", 1.0), ("block3_conv1", 0.5)))
    assert result.output.strip() == repr(expected)


def test_flag_overrides_env_twin() -> None:
    result = CliRunner().invoke(echo_params, ["--size", "64"], env={"ATELIER_SIZE": "128"})
    assert result.exit_code == 0, result.output
    assert "size=64," in result.output


def test_out_of_range_is_rejected_with_the_shared_wording() -> None:
    with pytest.raises(ParamError) as caught:
        params_from_options({"size": 5})
    assert caught.value.field == "size"
    assert "size=5" in caught.value.message and "16 to 4096" in caught.value.message


def test_layer_weights_syntax() -> None:
    assert parse_layer_weights("a, b") == ["a", "b"]
    assert parse_layer_weights("a:2,b") == {"a": 2.0, "b": 1.0}
    with pytest.raises(ParamError, match="'x'"):
        parse_layer_weights("a:x")


def test_empty_layer_list_is_rejected() -> None:
    with pytest.raises(ParamError, match="content_layers is empty"):
        params_from_options({"content_layers": " , "})
