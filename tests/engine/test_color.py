"""Colour preservation maths (numpy only)."""

from __future__ import annotations

import numpy as np

from worker.engine import color


def test_yiq_round_trip():
    image = np.random.default_rng(0).uniform(0, 255, (5, 7, 3)).astype(np.float32)
    np.testing.assert_allclose(color.yiq_to_rgb(color.rgb_to_yiq(image)), image, atol=1e-3)


def test_recombine_keeps_the_content_chroma_and_the_result_luminance():
    rng = np.random.default_rng(1)
    # Moderate colours and luminances, so the recombined pixels stay inside 0-255 (no clipping).
    content = (128 + rng.uniform(-30, 30, (6, 6, 3))).astype(np.float32)
    result = (128 + rng.uniform(-30, 30, (6, 6, 3))).astype(np.float32)
    out = color.recombine_luminance(result, content)
    out_yiq, content_yiq, result_yiq = (color.rgb_to_yiq(x) for x in (out, content, result))
    np.testing.assert_allclose(out_yiq[..., 1:], content_yiq[..., 1:], atol=1e-2)
    np.testing.assert_allclose(out_yiq[..., 0], result_yiq[..., 0], atol=1e-2)


def test_histogram_matching_gives_the_style_the_content_mean_and_covariance():
    rng = np.random.default_rng(2)
    content = np.clip(rng.normal([150, 90, 60], [20, 15, 10], (64, 64, 3)), 0, 255).astype(np.float32)
    style = np.clip(rng.normal([60, 120, 200], [10, 25, 30], (48, 48, 3)), 0, 255).astype(np.float32)
    matched = color.match_color_histogram(style, content)
    c, m = content.reshape(-1, 3), matched.reshape(-1, 3)
    np.testing.assert_allclose(m.mean(0), c.mean(0), atol=0.5)
    np.testing.assert_allclose(np.cov(m, rowvar=False), np.cov(c, rowvar=False), atol=3.0)
    assert np.abs(style.reshape(-1, 3).mean(0) - c.mean(0)).max() > 50  # it really had to move


def test_luminance_match_sets_mean_and_std():
    rng = np.random.default_rng(3)
    content = rng.uniform(100, 160, (8, 8, 3)).astype(np.float32)
    style = rng.uniform(0, 255, (8, 8, 3)).astype(np.float32)
    matched = color.match_luminance(style, content)
    assert abs(matched.mean() - content.mean()) < 0.5
    assert abs(matched.std() - content.std()) < 0.5
