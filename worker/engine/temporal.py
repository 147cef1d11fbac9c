"""Ruder's temporal loss, written with ``keras.ops`` to join the Gatys objective, and its numpy twin.

Ruder, Dosovitskiy and Brox, "Artistic style transfer for videos", GCPR 2016 (arXiv 1604.08610), the temporal
consistency loss (the same in the IJCV 2018 version):

    L_temporal(x, w, c) = (1 / D) * sum_k c_k * (x_k - w_k)^2

over the ``D = H * W * C`` values of the image being optimised ``x``, with ``w`` the previous stylized frame warped
onto this frame (``worker.engine.flow.warp(prev, flow(i -> i-1))``) and ``c`` the per-pixel consistency mask
(``worker.engine.flow.consistency_mask(flow(i -> i-1), flow(i-1 -> i))``), shared by the channels. ``D`` counts
every value, masked or not, as the paper writes it: the loss is not renormalised by the visible area, so a frame
that is mostly occluded pulls less towards its predecessor, which is what we want.

Scale: the loss is a plain mean of squared pixel differences in whatever units ``x`` has (the engine optimises
0-255 values, the 'caffe' preprocessing only shifts them, which the difference cancels). The engine's content and
style losses are relative (divided by their target's mean square, ``losses.py``), so Ruder's weights (temporal 1e3
against content 5 and style 100, for losses that were not normalised) do not carry over as numbers; the wiring of
``temporal_weight`` has to be tuned on our losses (the benchmark's warping error is the measure).

``long_term_weights`` is Ruder's long-term consistency variant: with masks ``c^(i-j, i)`` for the
frames j = 1..J back, each pixel is tied only to the *closest* earlier frame in which it is visible:
``c_long^(i-j, i) = max(c^(i-j, i) - sum_{k < j} c^(i-k, i), 0)``.
"""

from __future__ import annotations

import numpy as np
from keras import ops


def temporal_loss(image, warped, mask):
    """``(1/D) sum c (x - w)^2`` for ``image`` and ``warped`` of the same shape, (H, W, C) or (1, H, W, C), and
    ``mask`` (H, W), (H, W, 1) or of the image's shape. float32 scalar; differentiable in ``image``."""
    image = ops.cast(image, "float32")
    warped = ops.cast(warped, "float32")
    mask = ops.cast(mask, "float32")
    if _per_pixel(tuple(mask.shape), tuple(image.shape)):
        mask = ops.expand_dims(mask, -1)  # one mask for all channels
    # mean over the broadcast product = sum over all D values of the image / D, masked ones counted in D.
    return ops.mean(ops.broadcast_to(mask, ops.shape(image)) * ops.square(image - warped))


def temporal_loss_np(image: np.ndarray, warped: np.ndarray, mask: np.ndarray) -> float:
    """The numpy twin of ``temporal_loss``, for tests and metrics (float64 arithmetic)."""
    image = np.asarray(image, dtype=np.float64)
    warped = np.asarray(warped, dtype=np.float64)
    mask = np.asarray(mask, dtype=np.float64)
    if _per_pixel(mask.shape, image.shape):
        mask = mask[..., None]
    return float(np.mean(np.broadcast_to(mask, image.shape) * np.square(image - warped)))


def long_term_weights(masks: np.ndarray) -> np.ndarray:
    """Ruder's long-term weights: from masks ``c^(i-j, i)`` stacked for j = 1..J (nearest frame first), shape
    (J, H, W), the weights of the same shape: each pixel keeps weight only for the nearest frame where it is
    visible."""
    masks = np.asarray(masks, dtype=np.float32)
    earlier = np.concatenate([np.zeros_like(masks[:1]), np.cumsum(masks, axis=0)[:-1]], axis=0)
    return np.maximum(masks - earlier, 0.0)


def _per_pixel(mask_shape: tuple, image_shape: tuple) -> bool:
    """True when the mask has no channel axis: its last two axes are the image's (H, W)."""
    return len(mask_shape) >= 2 and tuple(mask_shape[-2:]) == tuple(image_shape[-3:-1])
