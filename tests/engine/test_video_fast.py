"""The fast video mode: the blend rule, lower flicker than the same model frame by frame, cancel, seams, and
fine-tuning on the clip (tiny random networks at 48x64 px, 8 frames of a synthetic pan; the loss network for the
fine-tuning test has random weights, the test-only switch)."""

from __future__ import annotations

import numpy as np
import pytest

from shared.errors import ParamError

pytestmark = pytest.mark.slow

SIZE = 64


@pytest.fixture(scope="module")
def model():
    from worker.engine.feedforward import FastStyleModel

    return FastStyleModel.new(width=0.125, residual_blocks=1, seed=3)


@pytest.fixture(scope="module")
def clip(cat):
    from worker.video.synthetic import pan_zoom_clip

    frames, _flow = pan_zoom_clip(cat, 8, (48, 64), dx_px_per_frame=1.5, zoom_per_frame=1.01)
    return frames


@pytest.fixture(scope="module")
def blended(model, clip):
    from worker.engine.video_fast import stylize_frames_fast

    return stylize_frames_fast(model, clip, size=SIZE, temporal_blend=0.5)


def test_blend_rule_visible_pixels_mix_masked_pixels_are_the_models():
    from worker.engine.video_fast import blend

    rng = np.random.default_rng(0)
    network, warped = rng.uniform(0, 255, (2, 6, 8, 3)).astype(np.float32)
    mask = np.ones((6, 8), np.float32)
    mask[:, :3] = 0  # occluded: nothing from the previous output
    out = blend(network, warped, mask, 0.5)
    np.testing.assert_array_equal(out[:, :3], network[:, :3])
    np.testing.assert_allclose(out[:, 3:], 0.5 * warped[:, 3:] + 0.5 * network[:, 3:], rtol=1e-6)
    # a fully visible, perfectly warped pair (the previous output is this frame's) is unchanged
    np.testing.assert_allclose(blend(network, network, np.ones((6, 8)), 0.8), network, rtol=1e-6)


def test_static_clip_is_styled_exactly_as_frame_by_frame(model, clip):
    """Zero motion, everything visible: the warped previous output equals the network's output, so blending
    changes nothing (the rule does not drift on its own)."""
    from worker.engine.feedforward import stylize_fast
    from worker.engine.video_fast import stylize_frames_fast

    static = np.repeat(clip[:1], 4, axis=0)
    result = stylize_frames_fast(model, static, size=SIZE, temporal_blend=0.8)
    single = stylize_fast(model, static[0])
    assert result.metrics["visible_fraction"] == 1.0
    assert np.abs(result.frames.astype(int) - single.astype(int)).max() <= 1
    assert result.metrics["warping_error"] < 1e-4


def test_blend_lowers_the_warping_error_on_a_pan(model, clip, blended):
    from worker.engine import flow
    from worker.engine.video_fast import resize_frames, stylize_frames_fast

    plain = stylize_frames_fast(model, clip, size=SIZE, temporal_blend=0.0)
    assert plain.metrics["warping_error"] == pytest.approx(plain.metrics["warping_error_network"])
    # the same network outputs, so the run's own "without" figure is the plain run's
    assert blended.metrics["warping_error_network"] == pytest.approx(plain.metrics["warping_error"], rel=1e-6)
    assert blended.metrics["warping_error"] < 0.5 * plain.metrics["warping_error"], blended.metrics
    # the metric is Lai's, as flow.warping_error_of computes it on the (resized) input frames
    inputs = resize_frames(clip, SIZE)
    assert blended.metrics["warping_error"] == pytest.approx(flow.warping_error_of(blended.frames, inputs), rel=1e-6)
    assert blended.frames.shape == (8, 48, 64, 3) and blended.frames.dtype == np.uint8
    assert 0 < blended.metrics["drift"] < 0.2
    seconds = blended.metrics["seconds_per_frame"]
    assert set(seconds) == {"network", "flow", "blend", "metric"} and all(v >= 0 for v in seconds.values())
    assert blended.metrics["frames_per_second"] > 0
    # flows computed ahead by threads or in turn on this thread: the same video; without measuring, no errors
    one = stylize_frames_fast(model, clip, size=SIZE, temporal_blend=0.5, flow_workers=1, measure=False)
    np.testing.assert_array_equal(one.frames, blended.frames)
    assert blended.metrics["flow_workers"] >= 1 and one.metrics["warping_error"] is None


def test_progress_every_frame_and_cancel(model, clip):
    from worker.engine.video_fast import stylize_frames_fast

    seen = []

    def on_progress(progress):
        seen.append((progress.frame_index, progress.frames_done, progress.frames, progress.preview().shape))
        return progress.frames_done == 3

    result = stylize_frames_fast(model, clip, size=SIZE, on_progress=on_progress)
    assert result.cancelled and result.metrics["cancelled"]
    assert len(result.frames) == 3
    assert seen == [(0, 1, 8, (48, 64, 3)), (1, 2, 8, (48, 64, 3)), (2, 3, 8, (48, 64, 3))]


def test_a_segment_started_early_joins_the_continuous_run(model, clip, blended):
    """Segments overlap by overlap_frames_for(a) frames: the first kept frame is within a^k of the seam-free run."""
    from worker.engine.video_fast import overlap_frames_for, stylize_frames_fast

    assert overlap_frames_for(0.5) == 5 and overlap_frames_for(0.0) == 0
    late = stylize_frames_fast(model, clip[2:], size=SIZE, temporal_blend=0.5)  # starts cold at frame 2
    start = np.abs(late.frames[0].astype(float) - blended.frames[2]).mean()
    end = np.abs(late.frames[-1].astype(float) - blended.frames[-1]).mean()  # 5 frames later
    assert end <= 0.05 * start + 0.5, (start, end)  # + rounding to uint8


def test_bad_blend_and_frames_are_refused(model, clip):
    from shared.errors import ImageError
    from worker.engine.video_fast import stylize_frames_fast

    with pytest.raises(ParamError, match="temporal_blend"):
        stylize_frames_fast(model, clip, size=SIZE, temporal_blend=1.5)
    with pytest.raises(ImageError, match="uint8"):
        stylize_frames_fast(model, clip.astype(np.float32), size=SIZE)


def test_keras_warp_is_flow_warp(clip):
    from keras import ops

    from worker.engine import flow
    from worker.engine.video_fast import _bilinear_taps, _warp_ops

    _forward, backward = flow.FlowEstimator().video(clip[:2])
    image = clip[0].astype(np.float32)
    indices, weights = _bilinear_taps(backward[0])
    ours = ops.convert_to_numpy(_warp_ops(ops.convert_to_tensor(image), indices, weights))
    np.testing.assert_allclose(ours, flow.warp(image, backward[0]), atol=0.05)  # cv2 rounds weights to 1/32


def test_finetuning_lowers_the_clips_temporal_loss_and_leaves_the_model(model, clip, cat, random_weights):
    from worker.engine.video_fast import finetune_on_clip, finetune_params

    before = [w.numpy().copy() for w in model.net.weights]
    # shallow layers: the loss network is truncated after block2, so the step traces and runs in a fraction
    params = finetune_params(model, 32, learning_rate=5e-3, content_layers=(("block2_conv2", 1.0),),
                             style_layers=(("block1_conv1", 0.5), ("block2_conv1", 0.5)))
    tuned, metrics = finetune_on_clip(model, clip[:4], [cat], params, temporal_weight=1e4, steps=6,
                                      weights=random_weights)
    assert metrics["steps_run"] == 6 and not metrics["cancelled"]
    assert metrics["temporal_loss_after"] < 0.8 * metrics["temporal_loss_before"], metrics
    assert set(metrics["history"][0]) >= {"content", "style", "tv", "total", "temporal"}
    assert tuned is not model and tuned.meta["finetuned_on_clip"]["steps"] == 6
    for original, now in zip(before, model.net.weights, strict=True):
        np.testing.assert_array_equal(original, now.numpy())
