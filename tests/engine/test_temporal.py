"""worker/engine/temporal.py: Ruder's masked temporal loss (keras.ops and numpy twin) and the long-term weights."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

from worker.engine import flow
from worker.engine.temporal import long_term_weights, temporal_loss, temporal_loss_np
from worker.video.synthetic import moving_patch_clip, pan_zoom_clip, pan_zoom_flow


def _value(tensor) -> float:
    return float(ops.convert_to_numpy(tensor))


def test_zero_for_a_perfectly_warped_frame(cat: np.ndarray) -> None:
    frames, _ = pan_zoom_clip(cat, 3, (64, 80), 1.5, 1.01)
    backward = pan_zoom_flow((64, 80), 1.5, 1.01, backward=True)  # frame 2 -> frame 1
    previous = frames[1].astype(np.float32)
    warped = flow.warp(previous, backward)
    mask = flow.consistency_mask(backward, pan_zoom_flow((64, 80), 1.5, 1.01))
    # x is exactly the warped previous stylization: nothing to pull towards.
    assert _value(temporal_loss(warped, warped, mask)) == 0.0
    assert temporal_loss_np(warped, warped, mask) == 0.0
    # The real next frame is the warped previous one up to interpolation (the bilinear warp smooths: measured 11,
    # an RMS of 3.3 grey levels, against 306 without the warp): small, not zero.
    real = temporal_loss_np(frames[2].astype(np.float32), warped, mask)
    unwarped = temporal_loss_np(frames[2].astype(np.float32), previous, mask)
    assert 0 < real < 25 and real < 0.1 * unwarped


def test_masked_pixels_are_ignored_and_d_counts_every_value(cat: np.ndarray) -> None:
    clip = moving_patch_clip(cat, 3, 48, 16, (3, 2))
    previous = clip.frames[0].astype(np.float32)
    mask = flow.consistency_mask(clip.backward[0], clip.forward[0])  # on frame 1, for warping frame 0 onto it
    warped = flow.warp(previous, clip.backward[0])
    image = warped.copy()
    hidden = mask == 0
    assert hidden.any() and clip.disoccluded[0][hidden].any()
    image[hidden] = 255.0 - image[hidden]  # wildly different, but only where the mask says "not visible"
    assert _value(temporal_loss(image, warped, mask)) == 0.0
    # One visible pixel off by 10 in one channel: 100 / D with D = H * W * C (masked values counted in D).
    image[~hidden] = warped[~hidden]
    y, x = np.argwhere(~hidden)[0]
    image[y, x, 1] += 10.0
    assert _value(temporal_loss(image, warped, mask)) == pytest.approx(100.0 / image.size, rel=1e-6)


@pytest.mark.parametrize("batched", [False, True])
@pytest.mark.parametrize("mask_shape", ["hw", "hw1", "full"])
def test_keras_and_numpy_agree(batched: bool, mask_shape: str) -> None:
    rng = np.random.default_rng(4)
    x = rng.uniform(-120, 150, (12, 10, 3)).astype(np.float32)
    w = rng.uniform(-120, 150, (12, 10, 3)).astype(np.float32)
    mask = (rng.uniform(size=(12, 10)) > 0.3).astype(np.float32)
    expected = float(np.sum(mask[..., None] * (x.astype(np.float64) - w) ** 2) / x.size)
    if mask_shape == "hw1":
        mask = mask[..., None]
    elif mask_shape == "full":
        mask = np.repeat(mask[..., None], 3, axis=-1)
    if batched:
        x, w = x[None], w[None]
        mask = mask[None] if mask_shape == "full" else mask
    assert temporal_loss_np(x, w, mask) == pytest.approx(expected, rel=1e-9)
    assert _value(temporal_loss(x, w, mask)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="gradient taken with tf.GradientTape")
def test_gradient_is_two_c_times_the_difference_over_d() -> None:
    import tensorflow as tf

    rng = np.random.default_rng(5)
    x = tf.Variable(rng.uniform(0, 255, (1, 6, 5, 3)).astype(np.float32))
    w = rng.uniform(0, 255, (1, 6, 5, 3)).astype(np.float32)
    mask = (rng.uniform(size=(6, 5)) > 0.5).astype(np.float32)
    with tf.GradientTape() as tape:
        loss = temporal_loss(x, w, mask)
    gradient = tape.gradient(loss, x).numpy()
    np.testing.assert_allclose(gradient, 2 * mask[None, ..., None] * (x.numpy() - w) / x.numpy().size, rtol=1e-5,
                               atol=1e-7)


def test_long_term_weights_keep_the_nearest_visible_frame() -> None:
    masks = np.array([[[1, 0, 0, 1]], [[1, 1, 0, 0]], [[0, 1, 1, 1]]], np.float32)  # j = 1, 2, 3 frames back
    np.testing.assert_array_equal(long_term_weights(masks),
                                  [[[1, 0, 0, 1]], [[0, 1, 0, 0]], [[0, 0, 1, 0]]])
    assert long_term_weights(masks[:1]).tolist() == masks[:1].tolist()
