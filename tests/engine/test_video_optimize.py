"""The ``optimize`` video mode (worker/engine/video.py, Ruder et al.): warped initialisation after the first frame,
the temporal term in the reported losses (zero when independent), lower flicker than independent styling on a
synthetic pan, cancel mid-clip, and one traced step for every frame.

Small on purpose (random-weight VGG19, 48 px frames, 6 frames, a few iterations): the figures at 256 px with the real
weights are bench/video.py's."""

from __future__ import annotations

import numpy as np
import pytest

from shared.params import StyleParams
from shared.video_params import DEFAULT_TEMPORAL_WEIGHT
from worker.engine import backend_tf, flow
from worker.engine.video import LOSS_NAMES, later_iterations_for, stylize_frames
from worker.video.synthetic import pan_zoom_clip

FRAMES = 6
SIZE_HW = (36, 48)  # rendered at the output size, so the engine's flows are the clip's
PARAMS = StyleParams.from_mapping({"size": 48, "iterations": 6, "progress_every": 1})


@pytest.fixture(scope="module")
def clip(cat) -> np.ndarray:
    frames, _flow = pan_zoom_clip(cat, FRAMES, SIZE_HW, 2.0, 1.0)  # whole-pixel pan: 2 px a frame to the right
    return frames


def _run(clip, style, weights, temporal_weight, stop=None):
    events = []

    def on_progress(progress):
        events.append(progress)
        return stop(progress) if stop else None

    result = stylize_frames(clip, [style], PARAMS, temporal_weight=temporal_weight, on_progress=on_progress,
                            weights=weights)
    return result, events


@pytest.fixture(scope="module")
def runs(clip, starry_night):
    from shared.weights import WeightSource

    weights = WeightSource(random=True)
    independent = _run(clip, starry_night, weights, 0.0)
    before = backend_tf.tracing_counts()["step"]
    temporal = _run(clip, starry_night, weights, DEFAULT_TEMPORAL_WEIGHT)
    traces = backend_tf.tracing_counts()["step"] - before
    return {"independent": independent, "temporal": temporal, "temporal_traces": traces, "weights": weights}


def _first_evaluation(events, frame_index):
    return next(e for e in events if e.frame_index == frame_index and e.iteration == 1 and e.frames_done == frame_index)


def test_later_frames_start_from_the_warped_previous_result(runs, clip):
    result, events = runs["temporal"]
    assert result.frames.shape == (FRAMES, *SIZE_HW, 3)
    _forward, backward = flow.FlowEstimator().video(clip)
    _to_next, to_previous = flow.video_masks(_forward, backward)
    for k in (1, FRAMES - 1):
        start = _first_evaluation(events, k)
        # The warped init makes the temporal term exactly zero at the first evaluation (masked pixels do not count).
        assert start.losses["temporal"] == pytest.approx(0.0, abs=1e-6)
        visible = to_previous[k - 1] > 0
        warped = flow.warp(result.frames[k - 1], backward[k - 1]).astype(np.float32)
        preview = start.preview().astype(np.float32)
        assert np.abs(preview - warped)[visible].mean() < 1.0  # the previous output (rounding only)
        assert np.abs(preview - clip[k].astype(np.float32))[visible].mean() > 5.0  # not the content frame
    # Independent frames start from params.init (the content frame), not from the previous result.
    _result, independent_events = runs["independent"]
    start = _first_evaluation(independent_events, 1)
    assert np.abs(start.preview().astype(np.float32) - clip[1].astype(np.float32)).mean() < 1.0


def test_temporal_loss_is_reported_and_zero_when_independent(runs):
    _result, independent_events = runs["independent"]
    assert all(set(e.losses) == set(LOSS_NAMES) for e in independent_events)
    assert all(e.losses["temporal"] == 0.0 for e in independent_events)
    result, events = runs["temporal"]
    later = [e for e in events if e.frame_index > 0]
    assert max(e.losses["temporal"] for e in later) > 0
    for e in later:
        parts = e.losses["content"] + e.losses["style"] + e.losses["tv"] + e.losses["temporal"]
        assert e.losses["total"] == pytest.approx(parts, rel=1e-4)
    assert result.metrics["temporal_weight"] == DEFAULT_TEMPORAL_WEIGHT
    assert [f["iterations"] for f in result.metrics["per_frame"]] == [PARAMS.iterations] + [
        later_iterations_for(PARAMS.iterations)
    ] * (FRAMES - 1)
    assert later_iterations_for(PARAMS.iterations) < PARAMS.iterations  # Ruder: fewer after the first frame


def test_progress_counts_frames(runs):
    _result, events = runs["temporal"]
    after_frames = [e for e in events if e.frames_done == e.frame_index + 1]
    assert [e.frame_index for e in after_frames] == list(range(FRAMES))
    assert all(e.frames == FRAMES for e in events)
    assert [e.frames_done for e in events] == sorted(e.frames_done for e in events)


def test_temporal_flickers_less_than_independent(runs):
    independent = runs["independent"][0].metrics["warping_error"]
    temporal = runs["temporal"][0].metrics["warping_error"]
    assert independent > 0
    assert temporal < 0.5 * independent, (temporal, independent)


def test_one_trace_serves_every_frame(runs):
    result, _events = runs["temporal"]
    traced = [f["traced"] for f in result.metrics["per_frame"]]
    assert not any(traced[1:]), traced  # frames after the first reuse the step (warped target and mask are args)
    # The independent run before it traced the same step (weight 0, empty mask): the temporal run traces nothing.
    assert runs["temporal_traces"] == 0


def test_cancel_mid_clip_returns_the_finished_frames(clip, starry_night, runs):
    result, events = _run(clip, starry_night, runs["weights"], DEFAULT_TEMPORAL_WEIGHT,
                          stop=lambda p: p.frame_index == 2 and p.iteration == 2)
    assert result.cancelled and result.metrics["cancelled"]
    assert result.frames.shape == (2, *SIZE_HW, 3)
    assert max(e.frame_index for e in events) == 2  # frame 3 never started
    assert len(result.metrics["per_frame"]) == 2
