"""Coarse-to-fine (shared/geometry.py's ladder, worker/engine/scales.py): the size ladder, the door's floor, and
tiny runs through ``stylize`` with random weights."""

from __future__ import annotations

import numpy as np
import pytest

from shared.geometry import check_job, job_output_iterations, job_scale_iterations, job_scale_sizes, scale_sizes
from shared.params import StyleParams


def test_sizes_climb_by_sqrt2_and_end_at_the_output_size():
    assert scale_sizes(512, 128) == [128, 181, 256, 362, 512]
    assert scale_sizes(512, 512) == [512] and scale_sizes(256, 1024) == [256]
    assert scale_sizes(135, 64) == [64, 91, 135]  # 64 * 2 = 128 lies within 10% of 135: dropped
    assert scale_sizes(48, 24) == [24, 34, 48]
    assert scale_sizes(512, 16, floor_px=200) == [200, 283, 400, 512]


def test_the_ladder_starts_where_the_layers_and_the_style_scale_allow():
    # block5_pool needs 32 px; at style_scale 0.5 the style is half the output, so the ladder starts at 64.
    deep = StyleParams(size=256, min_size=16, style_layers=(("block5_pool", 1.0),), style_scale=0.5)
    sizes = job_scale_sizes(deep)
    assert sizes[0] == 64 and sizes[-1] == 256
    for size_px in sizes:  # what the door accepts at `size` runs at every rung
        check_job(deep.replace(size=size_px), (300, 400), [(600, 800)])
    assert job_scale_sizes(StyleParams(size=512)) == [128, 181, 256, 362, 512]  # the default: coarse to fine
    assert job_scale_sizes(StyleParams(size=512, min_size=512)) == [512]
    assert job_scale_sizes(StyleParams(size=140)) == [140]  # 128 lies within 10% of 140: one scale


def test_scales_below_the_output_get_scale_iterations_and_the_last_gets_iterations():
    params = StyleParams(iterations=40, scale_iterations=15)
    assert job_scale_iterations(params, 3) == [15, 15, 40]
    assert job_scale_iterations(params, 1) == [40]
    assert job_scale_iterations(StyleParams(iterations=7), 3) == [7, 7, 7]  # null: iterations at every scale


def test_a_job_costs_its_rungs_iterations_weighted_by_their_pixels():
    # 100 at each of 128, 181, 256, 362 and 512: 100 x (1/16 + 181^2/512^2 + 1/4 + 362^2/512^2 + 1) = 193.7
    assert job_output_iterations(StyleParams()) == pytest.approx(193.7, abs=0.05)
    assert job_output_iterations(StyleParams(min_size=512, iterations=300)) == 300
    assert job_output_iterations(StyleParams(size=256, min_size=128, iterations=10, scale_iterations=40)) == \
        pytest.approx(10 + 40 * (128 / 256) ** 2 + 40 * (181 / 256) ** 2)


def _c2f(**values) -> StyleParams:
    return StyleParams.from_mapping({"size": 40, "min_size": 28, "iterations": 2, "scale_iterations": 3,
                                     "progress_every": 1, "precision": "float32", **values})


@pytest.mark.slow  # builds VGG19 and traces a step per size, like tests/engine/test_stylize.py
def test_stylize_runs_coarse_to_fine_and_carries_the_image_up(cat, starry_night, random_weights):
    from worker.engine import stylize

    seen, work = [], []

    def on_progress(progress) -> None:  # returns None: a truthy return would cancel
        seen.append((progress.iteration, progress.iterations))
        work.append(progress.work_done)

    result = stylize(cat, [starry_night], _c2f(), on_progress, weights=random_weights)
    scales = result.metrics["scales"]
    assert [s["size_px"] for s in scales] == [28, 40] and max(result.image.shape[:2]) == 40
    assert [s["iterations"] for s in scales] == [3, 2]
    assert result.metrics["iterations_run"] == sum(s["iterations_run"] for s in scales) > 0
    assert [i for i, _total in seen] == sorted(i for i, _total in seen) and {t for _i, t in seen} == {5}
    # work weighs each scale's iterations by its pixels: 3 at 28 px are 3 x 784 of 3 x 784 + 2 x 1600
    first_scale_share = 3 * 28**2 / (3 * 28**2 + 2 * 40**2)
    assert work == sorted(work) and work[-1] == pytest.approx(1.0)
    assert work[seen.index((3, 5))] == pytest.approx(first_scale_share)
    assert np.all(np.isfinite(list(result.metrics["losses"]["final"].values())))
    assert not result.cancelled


@pytest.mark.slow
def test_a_cancel_during_the_first_scale_stops_the_whole_run(cat, starry_night, random_weights):
    from worker.engine import stylize

    result = stylize(cat, [starry_night], _c2f(), lambda p: p.iteration >= 1, weights=random_weights)
    assert result.cancelled and [s["size_px"] for s in result.metrics["scales"]] == [28]


@pytest.mark.slow
def test_an_init_image_refines_at_the_output_size_only(cat, starry_night, random_weights):
    from worker.engine import stylize

    result = stylize(cat, [starry_night], _c2f(), weights=random_weights, init_image=cat)
    assert "scales" not in result.metrics and result.metrics["iterations_run"] == 2
