"""The three Gatys losses as small pure functions of tensors, written with ``keras.ops`` (any Keras backend).

Every loss is a *mean*, so its size does not grow with the image: weights tuned at 256 px stay right at 1024 px.

- content: mean squared difference of feature maps (Gatys sums and halves; a mean is the size-free version),
  divided by the mean square of the target features.
- style: Gram matrices normalised by positions and channels, ``G = F^T F / (H W C)``, compared by the mean squared
  difference over the ``C x C`` entries (Gatys' ``1 / (4 N^2 M^2)`` up to a constant) and divided by the mean
  square of the target Gram. Grams are computed in float32 even when the backbone runs in bfloat16: a sum over
  ``H W`` positions in bfloat16 (8 bits of mantissa) loses the small differences the optimizer needs.

Departure from Gatys: the division by the target's mean square. With the raw (unnormalised) ImageNet VGG19 the
per-layer style losses differ by four orders of magnitude (block4_conv1 ~1e6 against block1_conv1 and
block5_conv1 ~5e2 for the sample images), so "equal layer weights" would in fact mean "block4 only". Dividing by
a constant per layer (computed from the target, so the loss stays a plain quadratic that L-BFGS likes) makes
each layer's loss relative and the layer weights mean what they say; crowsonkb/style-transfer-pytorch rescales its
losses for the same reason.

The normaliser has a floor (``relative_scale``): ``REFERENCE_FLOOR`` times what the same layer gives for the
engine's noise image at the same size. Without it a flat image makes the division meaningless: a style (or
content) of one colour has almost no feature energy, so its mean square is tiny and the relative loss explodes.
Measured with ImageNet VGG19 at 32 px: an ImageNet-mean grey style gave a style loss of 1.8e8 (1.3e4 for mid-grey)
against about 10 for a painting, so the style term was all L-BFGS saw, any weight the user gave was meaningless,
and one more order of magnitude (a larger image, a larger ``style_weight``) heads for float32 overflow. Natural
images sit far above the floor (their target mean squares were 0.08-80 times the noise reference for the sample
images at 64-256 px, so 1e-3 leaves them untouched); a flat one is floored: the ImageNet-mean style's loss
falls from 1.8e8 to 1.2e4, the order a mid-grey style had before, finite at every allowed weight, and it still asks
for a flat result. We take no NaN from these inputs (float32 holds 1e38); the failure was a meaningless objective.
- total variation: mean squared difference between neighbouring pixels (0-255 scale), horizontally plus
  vertically. Squared rather than absolute so the loss is smooth for L-BFGS.
"""

from __future__ import annotations

from keras import ops

# Keeps the relative losses finite for an all-zero target (a blank image, a dead layer) when no reference is given.
EPSILON = 1e-8
# Floor of a relative loss's normaliser, as a fraction of the noise reference's mean square (module docstring).
REFERENCE_FLOOR = 1e-3


def relative_scale(target_mean_square: float, reference_mean_square: float) -> float:
    """The normaliser of a relative loss: the target's mean square, but never below ``REFERENCE_FLOOR`` times the
    reference's (the same layer's response to noise of the same size), nor below ``EPSILON``."""
    return max(float(target_mean_square), REFERENCE_FLOOR * float(reference_mean_square), EPSILON)


@ops.custom_gradient
def gram_matrix(features):
    """``(1, H, W, C)`` or ``(H, W, C)`` features -> ``(C, C)`` float32 Gram matrix divided by ``H * W * C``.

    Hand-written gradient: autodiff of ``F^T F`` differentiates each factor on its own, two ``(HW x C) (C x C)``
    matmuls plus a transpose of an ``HW x C`` tensor. Since ``G`` is a product of ``F`` with itself,
    ``dL/dF = F (dG + dG^T) / count``: one matmul. Same numbers, and at 256 px it took the traced step from 1.15
    to 1.10 times a forward+backward pass of VGG19 (docs/engine.md).
    """
    flat = ops.reshape(ops.cast(features, "float32"), (-1, ops.shape(features)[-1]))
    count = ops.cast(ops.shape(flat)[0] * ops.shape(flat)[1], "float32")
    gram = ops.matmul(ops.transpose(flat), flat) / count

    def gradient(*args, upstream=None):
        if upstream is None:  # positional on TensorFlow and JAX, by name on PyTorch (Keras docs)
            (upstream,) = args
        d_flat = ops.matmul(flat, (upstream + ops.transpose(upstream)) / count)
        # Back in the features' own dtype: under bfloat16 the backbone's backward pass expects bfloat16.
        return ops.cast(ops.reshape(d_flat, ops.shape(features)), features.dtype)

    return gram, gradient


def content_loss(features, target, scale=None):
    """Mean squared difference of two feature maps over ``scale`` (default: the target's mean square; the engine
    passes ``relative_scale``'s floored one). 0 for identical inputs."""
    target = ops.cast(target, "float32")
    if scale is None:
        scale = ops.mean(ops.square(target)) + EPSILON
    return ops.mean(ops.square(ops.cast(features, "float32") - target)) / scale


def style_loss(features, target_gram, scale=None):
    """Mean squared difference between the Gram matrix of ``features`` and a target Gram, over ``scale`` (default:
    the target's mean square; the engine passes ``relative_scale``'s floored one)."""
    if scale is None:
        scale = ops.mean(ops.square(target_gram)) + EPSILON
    return ops.mean(ops.square(gram_matrix(features) - target_gram)) / scale


def total_variation_loss(image):
    """Mean squared neighbour difference of an ``(1, H, W, C)`` or ``(H, W, C)`` image, down plus across."""
    image = ops.cast(image, "float32")
    down = image[..., 1:, :, :] - image[..., :-1, :, :]
    across = image[..., :, 1:, :] - image[..., :, :-1, :]
    return ops.mean(ops.square(down)) + ops.mean(ops.square(across))


def weighted_total(content_terms, style_terms, tv_term, content_layer_weights, style_layer_weights, loss_weights):
    """Combine per-layer losses: returns ``(content, style, tv, total)``; ``loss_weights`` is (content, style, tv).

    Each term already carries its global weight, so ``content + style + tv == total`` in every report (as
    jcjohnson/neural-style prints them).
    """
    content = loss_weights[0] * ops.sum(ops.stack(content_terms) * content_layer_weights)
    style = loss_weights[1] * ops.sum(ops.stack(style_terms) * style_layer_weights)
    tv = loss_weights[2] * tv_term
    return content, style, tv, content + style + tv
