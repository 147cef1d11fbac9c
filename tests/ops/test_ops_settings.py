"""The operations settings fail at start-up, naming the variable, the value and what is allowed."""

from __future__ import annotations

import pytest

from shared.settings import Settings, SettingsError


@pytest.mark.parametrize("name,value,allowed", [
    ("ATELIER_LOG_FORMAT", "xml", "json, text"),
    ("ATELIER_PRELOAD_BACKBONE", "resnet50", "default, none, vgg19, xception, efficientnetb7"),
])
def test_bad_ops_settings_are_refused_with_the_allowed_values(name: str, value: str, allowed: str):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({name: value})
    assert caught.value.field == name
    assert repr(value) in caught.value.message and allowed in caught.value.message


def test_ops_settings_defaults_and_choices():
    assert Settings().log_format == "json" and Settings().preload_backbone == "default"
    assert Settings.from_env({"ATELIER_PRELOAD_BACKBONE": "none", "ATELIER_LOG_FORMAT": "text"}).log_format == "text"
    assert Settings.from_env({"ATELIER_PRELOAD_BACKBONE": "xception"}).preload_backbone == "xception"
