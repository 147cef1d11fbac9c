"""One job's loss, backend-neutral: which extractor outputs feed which term, the targets, the weights, and the
composition of the terms (``keras.ops``). The backend modules wrap ``total_loss`` in their own traced
loss-and-gradient function (``tf.function`` + ``GradientTape``, or ``jax.jit`` + ``value_and_grad``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from worker.engine import losses, temporal


@dataclass(frozen=True)
class ObjectiveSpec:
    """``content_index``/``style_index`` are positions in the extractor's outputs; ``loss_weights`` is
    (content, style, tv); ``content_scales``/``style_scales`` are the relative losses' normalisers per layer
    (``losses.relative_scale``; empty: each target's own mean square).

    ``temporal_weight``/``temporal_target``/``temporal_mask`` (all or none) add Ruder's masked temporal loss
    (``temporal.temporal_loss``) to the total for a video frame: the previous stylized frame warped onto this one
    and its consistency mask (``worker/engine/video.py``). They are step *arguments* like the targets, so one trace
    serves every frame of a clip; the step then returns five terms, ``(content, style, tv, total, temporal)``, the
    total including the weighted temporal term."""

    content_index: tuple[int, ...]
    style_index: tuple[int, ...]
    content_targets: Sequence[np.ndarray]
    style_grams: Sequence[np.ndarray]
    content_layer_weights: Sequence[float]
    style_layer_weights: Sequence[float]
    loss_weights: Sequence[float]
    content_scales: Sequence[float] = ()
    style_scales: Sequence[float] = ()
    temporal_weight: float | None = None
    temporal_target: np.ndarray | None = None
    temporal_mask: np.ndarray | None = None

    @property
    def temporal(self) -> bool:
        return self.temporal_weight is not None

    def step_key(self, extractor) -> tuple:
        """What a traced step depends on: the network and which outputs feed which term. Targets and weights are
        arguments of the step, so a new job of the same size reuses it."""
        key = (id(extractor), self.content_index, self.style_index)
        return (*key, "temporal") if self.temporal else key

    def step_args(self, to_array: Callable[[object], object]) -> tuple:
        """Targets and weights as the backend's float32 arrays, in the order ``total_loss`` takes them."""
        args = (
            [to_array(t) for t in self.content_targets],
            [to_array(g) for g in self.style_grams],
            to_array(self.content_layer_weights),
            to_array(self.style_layer_weights),
            to_array(self.loss_weights),
        )
        if self.content_scales or self.style_scales or self.temporal:
            args += ([to_array(s) for s in self.content_scales], [to_array(s) for s in self.style_scales])
        if self.temporal:
            args += ([to_array(self.temporal_weight), to_array(self.temporal_target), to_array(self.temporal_mask)],)
        return args


def total_loss(outputs, image, content_index, style_index, content_targets, style_grams, content_lw, style_lw, loss_w,
               content_scales=None, style_scales=None, temporal_terms=None):
    """``(content, style, tv, total)`` of ``image`` from its extractor ``outputs`` (traceable on any backend).
    Without scales each relative loss divides by its own target's mean square. With ``temporal_terms`` (weight,
    warped previous frame, mask) it is ``(content, style, tv, total, temporal)``, the total including temporal."""
    content_scales = content_scales or [None] * len(content_index)
    style_scales = style_scales or [None] * len(style_index)
    content_terms = [losses.content_loss(outputs[i], t, s)
                     for i, t, s in zip(content_index, content_targets, content_scales, strict=True)]
    style_terms = [losses.style_loss(outputs[i], g, s)
                   for i, g, s in zip(style_index, style_grams, style_scales, strict=True)]
    tv = losses.total_variation_loss(image)
    terms = losses.weighted_total(content_terms, style_terms, tv, content_lw, style_lw, loss_w)
    if temporal_terms is None:
        return terms
    weight, warped, mask = temporal_terms
    temporal_term = weight * temporal.temporal_loss(image, warped, mask)
    content, style, tv_term, total = terms
    return content, style, tv_term, total + temporal_term, temporal_term
