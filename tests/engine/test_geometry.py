"""shared/geometry.py: the one rule for image sizes the API checks and the engine runs by (pure Python, fast)."""

from __future__ import annotations

import pytest

from shared.errors import ParamError
from shared.geometry import check_geometry, check_job, scaled_shape, style_long_side_px
from shared.params import StyleParams


def test_scaled_shape_keeps_the_aspect_ratio_and_at_least_one_pixel():
    assert scaled_shape((300, 3), 64) == (64, 1)
    assert scaled_shape((480, 640, 3), 64) == (48, 64)
    assert scaled_shape((1, 10_000), 16) == (1, 16)
    assert style_long_side_px(64, 0.1) == 16 and style_long_side_px(512, 0.5) == 256


def test_thin_content_is_padded_to_the_minimum_not_refused():
    geometry = check_job(StyleParams(size=64), (300, 3), [(40, 40)])
    assert geometry.min_side_px == 16 and geometry.deepest_layer == "block5_conv1"
    assert geometry.content.scaled_hw == (64, 1) and geometry.content.padded_hw == (64, 16)
    assert geometry.content.padding == ((0, 0), (7, 8))  # real pixels in the middle
    assert geometry.styles[0].scaled_hw == (64, 64) and not geometry.styles[0].padded


def test_a_long_side_below_the_layers_minimum_is_refused_naming_limit_and_size():
    params = StyleParams.from_mapping({"size": 16, "style_layers": ["block5_pool"]})
    with pytest.raises(ParamError) as caught:
        check_job(params, (480, 640), [(40, 40)])
    error = caught.value
    assert error.code == "image_too_small" and error.field == "size" and error.http_status == 422
    assert "16x12 px" in error.message and "32 px" in error.message and "block5_pool" in error.message


def test_a_style_image_is_checked_after_style_scale():
    # size 64, style_scale 0.1: style long side max(16, 6) = 16, enough for the defaults (16) ...
    assert check_job(StyleParams(size=64, style_scale=0.1), (64, 64), [(400, 20)]).styles[0].padded_hw == (16, 16)
    # ... not for block5_pool (32), which the content at size 64 would have allowed.
    params = StyleParams.from_mapping({"size": 64, "style_scale": 0.1, "content_layers": ["block5_pool"]})
    with pytest.raises(ParamError) as caught:
        check_job(params, (64, 64), [(40, 40)])
    assert caught.value.field == "style_scale" and "16x16 px" in caught.value.message


def test_xception_needs_seven_pixels_and_an_unknown_layer_is_refused():
    geometry = check_geometry("xception", ["block4_sepconv2_act"], ["block1_conv1_act"], (100, 2), [(2, 100)], 16, 1.0)
    assert geometry.min_side_px == 7 and geometry.content.padded_hw == (16, 7)
    with pytest.raises(ParamError) as caught:
        check_geometry("xception", ["add"], [], (10, 10), [], 64, 1.0)
    assert caught.value.code == "unknown_layer"
