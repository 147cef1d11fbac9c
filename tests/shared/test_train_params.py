"""``TrainParams`` is declared once (``TRAIN_PARAM_SPECS``) and validated like the Gatys parameters."""

from __future__ import annotations

import dataclasses

import pytest

from shared.errors import ParamError
from shared.train_params import TRAIN_PARAM_SPECS, TrainParams


def test_every_spec_has_a_field_with_its_default_and_every_field_a_spec():
    fields = {field.name: field.default for field in dataclasses.fields(TrainParams)}
    assert fields == {spec.name: spec.default for spec in TRAIN_PARAM_SPECS}


def test_round_trip_and_style_params_describe_the_same_loss():
    params = TrainParams.from_mapping({"size": 64, "steps": 30, "style_layers": ["block1_conv1"]})
    assert TrainParams.from_mapping(params.to_dict()) == params
    gatys = params.style_params()
    assert gatys.size == 64 and gatys.style_layers == (("block1_conv1", 1.0),) and gatys.precision == "float32"


@pytest.mark.parametrize("values, field", [
    ({"steps": 0}, "steps"), ({"width": 8}, "width"), ({"batch_size": 1.5}, "batch_size"),
    ({"preserve_color": "sepia"}, "preserve_color"), ({"stepz": 3}, "stepz"),
])
def test_bad_values_are_refused_naming_them(values, field):
    with pytest.raises(ParamError) as info:
        TrainParams.from_mapping(values)
    assert info.value.field == field and field in info.value.message


def test_style_count_is_checked_against_style_blend():
    with pytest.raises(ParamError, match="style_blend has 2 weights for 1"):
        TrainParams.from_mapping({"style_blend": [1, 2]}).with_styles(1)
    assert TrainParams().with_styles(3).steps == 1000
