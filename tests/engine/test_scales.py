"""Coarse-to-fine (worker/engine/scales.py): the size ladder, and a tiny two-scale run with random weights."""

from __future__ import annotations

import numpy as np
import pytest

from shared.params import StyleParams
from worker.engine.scales import iterations_per_scale, scale_sizes


def test_sizes_climb_by_sqrt2_and_end_at_the_output_size():
    assert scale_sizes(512, 128) == [128, 181, 256, 362, 512]
    assert scale_sizes(512, 512) == [512] and scale_sizes(256, 1024) == [256]
    assert scale_sizes(135, 64) == [64, 91, 135]  # 64 * 2 = 128 lies within 10% of 135: dropped
    assert scale_sizes(48, 24) == [24, 34, 48]


def test_every_scale_gets_the_iterations():
    assert iterations_per_scale(300, 3) == [300, 300, 300]


@pytest.mark.slow  # builds VGG19 and traces a step per size, like tests/engine/test_stylize.py
def test_two_scales_run_and_carry_the_image_up(cat, starry_night, random_weights):
    from worker.engine.scales import stylize_coarse_to_fine

    seen = []
    params = StyleParams.from_mapping({"size": 40, "iterations": 2, "progress_every": 1, "precision": "float32"})
    result = stylize_coarse_to_fine(cat, [starry_night], params, 28, lambda p: seen.append((p.iteration,
                                                                                                 p.iterations)),
                                    weights=random_weights)
    scales = result.metrics["scales"]
    assert [s["size_px"] for s in scales] == [28, 40] and max(result.image.shape[:2]) == 40
    assert result.metrics["iterations_run"] == sum(s["iterations_run"] for s in scales) > 0
    assert [i for i, _total in seen] == sorted(i for i, _total in seen) and {t for _i, t in seen} == {4}
    assert np.all(np.isfinite(list(result.metrics["losses"]["final"].values())))
    assert not result.cancelled
