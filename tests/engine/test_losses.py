"""Closed-form values of the loss functions (keras.ops on the TensorFlow backend)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # imports TensorFlow


def _np(tensor) -> np.ndarray:
    from keras import ops

    return np.asarray(ops.convert_to_numpy(tensor))


def test_gram_of_a_known_tensor_is_normalised_by_positions_and_channels():
    from worker.engine.losses import gram_matrix

    # Two positions (1x2 image), two channels: F = [[1, 2], [3, 4]] (rows are positions).
    features = np.array([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=np.float32)
    # F^T F = [[1+9, 2+12], [2+12, 4+16]] = [[10, 14], [14, 20]], divided by H*W*C = 2*2.
    np.testing.assert_allclose(_np(gram_matrix(features)), [[2.5, 3.5], [3.5, 5.0]], rtol=1e-6)


def test_gram_is_computed_in_float32_from_bfloat16_features():
    import tensorflow as tf

    from worker.engine.losses import gram_matrix

    gram = gram_matrix(tf.constant(np.ones((1, 4, 4, 3)), dtype=tf.bfloat16))
    assert gram.dtype == tf.float32
    np.testing.assert_allclose(_np(gram), np.full((3, 3), 1 / 3), rtol=1e-6)


def test_gram_gradient_matches_autodiff_of_the_plain_product():
    """The hand-written Gram gradient is the derivative of F^T F / count, also for a non-symmetric upstream."""
    import tensorflow as tf

    from worker.engine.losses import gram_matrix

    rng = np.random.default_rng(3)
    features = tf.constant(rng.normal(size=(1, 5, 7, 6)), tf.float32)
    weights = tf.constant(rng.normal(size=(6, 6)), tf.float32)  # not symmetric: exercises dG + dG^T

    def plain_gram(f):
        flat = tf.reshape(f, (-1, 6))
        return tf.matmul(flat, flat, transpose_a=True) / (5 * 7 * 6)

    grads = []
    for gram in (gram_matrix, plain_gram):
        with tf.GradientTape() as tape:
            tape.watch(features)
            loss = tf.reduce_sum(tf.square(gram(features)) * weights)
        grads.append(tape.gradient(loss, features).numpy())
    assert np.abs(grads[1]).max() > 0
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-5, atol=1e-7)


def test_gram_gradient_keeps_the_bfloat16_dtype_of_its_features():
    import tensorflow as tf

    from worker.engine.losses import gram_matrix

    features = tf.constant(np.ones((1, 3, 3, 2)), tf.bfloat16)
    with tf.GradientTape() as tape:
        tape.watch(features)
        loss = tf.reduce_sum(gram_matrix(features))
    grad = tape.gradient(loss, features)
    assert grad.dtype == tf.bfloat16
    # d/dF sum(F^T F / 18) = F (1 + 1^T) / 18 = 2 * 2 / 18 per entry for all-ones F with two channels.
    np.testing.assert_allclose(grad.numpy().astype(np.float32), np.full((1, 3, 3, 2), 4 / 18), rtol=1e-2)


def test_total_variation_of_a_checkerboard():
    from worker.engine.losses import total_variation_loss

    size = 8
    board = (np.indices((size, size)).sum(axis=0) % 2 * 255.0).astype(np.float32)[None, :, :, None]
    # Every neighbour pair differs by 255, down and across: mean square 255^2 each.
    assert float(_np(total_variation_loss(board))) == pytest.approx(2 * 255.0**2)
    flat = np.full_like(board, 100.0)
    assert float(_np(total_variation_loss(flat))) == 0.0


def test_total_variation_metric_equals_tf_image_total_variation():
    import tensorflow as tf

    from worker.engine.images import total_variation

    size = 6
    board = np.repeat((np.indices((size, size)).sum(axis=0) % 2 * 255).astype(np.uint8)[..., None], 3, axis=-1)
    # Closed form: 2 directions * size * (size - 1) pairs * 3 channels * 255.
    assert total_variation(board) == 2 * size * (size - 1) * 3 * 255
    noisy = np.random.default_rng(1).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    expected = float(tf.image.total_variation(tf.constant(noisy, tf.float32)).numpy())
    assert total_variation(noisy) == pytest.approx(expected, rel=1e-6)


def test_content_loss_is_zero_for_identical_inputs_and_relative_otherwise():
    from worker.engine.losses import content_loss

    features = np.random.default_rng(0).normal(size=(1, 4, 5, 8)).astype(np.float32)
    assert float(_np(content_loss(features, features))) == 0.0
    target = np.full((1, 2, 2, 1), 2.0, np.float32)
    shifted = target + 1.0
    # mean((3 - 2)^2) / mean(2^2) = 1 / 4
    assert float(_np(content_loss(shifted, target))) == pytest.approx(0.25, rel=1e-6)


def test_style_loss_is_zero_at_the_target_and_positive_elsewhere():
    from worker.engine.losses import gram_matrix, style_loss

    rng = np.random.default_rng(0)
    features = rng.uniform(size=(1, 6, 6, 4)).astype(np.float32)
    target = _np(gram_matrix(features))
    assert float(_np(style_loss(features, target))) == pytest.approx(0.0, abs=1e-12)
    assert float(_np(style_loss(features * 2.0, target))) == pytest.approx(9.0, rel=1e-5)  # (4G - G)^2 / G^2


def test_weighted_total_sums_the_weighted_terms():
    from worker.engine.losses import weighted_total

    content, style, tv, total = (
        float(_np(x))
        for x in weighted_total(
            [np.float32(2.0)],
            [np.float32(1.0), np.float32(3.0)],
            np.float32(4.0),
            np.array([1.0], np.float32),
            np.array([0.5, 0.5], np.float32),
            np.array([10.0, 100.0, 0.5], np.float32),
        )
    )
    assert (content, style, tv) == (20.0, 200.0, 2.0)
    assert total == content + style + tv
