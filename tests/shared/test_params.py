"""``StyleParams`` and ``PARAM_SPECS`` are one definition: every parameter has a field whose default is the spec's."""

from __future__ import annotations

import dataclasses

import pytest

from shared.errors import ParamError
from shared.params import PARAM_SPECS, StyleParams


def test_every_spec_has_a_field_with_its_default_and_every_field_a_spec():
    fields = {field.name: field.default for field in dataclasses.fields(StyleParams)}
    assert list(fields) == [spec.name for spec in PARAM_SPECS]
    assert fields == {spec.name: spec.default for spec in PARAM_SPECS}


def test_defaults_validate_and_round_trip():
    params = StyleParams()
    assert StyleParams.from_mapping(params.to_dict()) == params


def test_an_unknown_name_is_refused_naming_it():
    with pytest.raises(ParamError, match="'sizes'") as info:
        StyleParams.from_mapping({"sizes": 64})
    assert info.value.code == "unknown_param"
