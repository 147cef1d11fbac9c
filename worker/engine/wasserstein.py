"""Wasserstein style mixing: several styles blended as the Wasserstein-2 barycenter of their feature Gaussians.

A style layer's features ``F`` (``H W`` positions x ``C`` channels) are summarised as a Gaussian ``N(mu, Sigma)``
with ``mu`` the mean over positions and ``Sigma`` the (population, ``1 / (H W)``) covariance: the view of Gaussian
optimal-transport style transfer (Mroueh 2019, "Wasserstein style transfer"; Kalischek, Wegner, Schindler 2021,
"In the light of feature distributions: moment matching for neural style transfer"), where styles mix by a
Wasserstein barycenter instead of by averaging Gram matrices.

The barycenter of ``N(mu_i, Sigma_i)`` with weights ``w_i`` (summing to 1) has the mean ``sum_i w_i mu_i`` and the
covariance ``S`` solving ``S = sum_i w_i (S^1/2 Sigma_i S^1/2)^1/2``. We find it by the fixed point of Álvarez-Esteban,
del Barrio, Cuesta-Albertos & Matrán 2016, "A fixed-point approach to barycenters in Wasserstein space" (J. Math.
Anal. Appl. 441, Theorem 4.2), which converges from any positive definite start::

    S <- S^-1/2 (sum_i w_i (S^1/2 Sigma_i S^1/2)^1/2)^2 S^-1/2

All of it runs once per job, in numpy float64, at the style-target stage; square roots are eigendecompositions
of symmetric PSD matrices (``numpy.linalg.eigh``) with tiny and negative eigenvalues clamped (``EIGEN_FLOOR``). No
matrix square root is ever differentiated: the optimisation loop sees only a fixed target matrix per layer.

**What the style loss matches: the Gram of the barycenter.** The engine's Gram is ``G = F^T F / (H W C)``
(losses.py), and ``F^T F / (H W) = Sigma + mu mu^T`` (the uncentred second moment), so the barycenter's Gram is
``(S + m m^T) / C``. We hand that to the existing Gram style loss rather than adding a mean term and a covariance
term, because:

- the loss, its hand-written gradient, both backends' traced steps, the tiled (global-Gram) evaluation and the
  style-target cache format stay exactly as they are: only the *target* changes, which is the point of a mix;
- with one style (or one style of non-zero weight) the targets are the very same Grams as ``style_mix=gram``, so
  the two mixes differ only where they should, and the relative-loss normalisers (losses.relative_scale) and the
  tuned ``style_weight`` keep their meaning;
- what differs between the mixes is then exactly the target's second moment. Averaged Grams are the second moment
  of the *mixture* of the styles, ``sum w_i (Sigma_i + mu_i mu_i^T)``: in 1-D its variance is
  ``sum w_i s_i^2 + w_1 w_2 (m_1 - m_2)^2``, wider than either style when their means differ, a blur of both
  distributions that the optimiser meets with features of neither style (the "mud"). The barycenter is one Gaussian
  between them (in 1-D: mean ``sum w_i m_i``, standard deviation ``sum w_i s_i``), the displacement interpolation of
  optimal transport, as Rabin, Peyré, Delon & Bernot 2011 mix textures.

What is given up: a Gram alone cannot tell a larger mean from a larger variance along the mean's direction, so the
optimiser matches ``S + m m^T``, not ``m`` and ``S`` separately. The Gram path has always had that limitation; a
separate mean term would need a new term in every backend's traced step and in tiling.

The moments come from the Gram of each style's features with a channel of ones appended (``with_ones_channel``):
``[F 1]^T [F 1]`` holds ``F^T F``, ``F^T 1`` and the count, and tiling.layer_stats already sums Grams over tiles
exactly, so targets computed in tiles are the same. The fixed point runs on the joint support of the covariances
(the range of ``sum w_i Sigma_i``, ``_joint_support``), which drops float32 round-off directions and shrinks the
matrices where layers have fewer positions than channels.

Cost (``bench/mix_sweep.py cost``, docs/engine.md): three eigendecompositions of ``r x r`` matrices (``r <= C``, up
to 512 for VGG19) per fixed-point iteration per layer for two styles; independent of the image size except for
the styles' forward passes and ``F^T F``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Eigenvalues below EIGEN_FLOOR x the largest are treated as that floor when inverting (and negatives from round-off
# as 0 when taking a square root). Deep layers at small sizes have fewer positions than channels (block5_conv1 at
# 256 px: 16 x 16 = 256 positions for 512 channels) and dead ReLU channels are exactly zero, so covariances are
# often singular; 1e-12 keeps S^-1/2 finite while float64's ~1e-16 round-off stays below the matrices' own accuracy.
EIGEN_FLOOR = 1e-12
# Directions whose variance in the blend-weighted mean covariance is below SUPPORT_FLOOR x the largest are left out
# of the barycenter (it has no variance there). The covariances come from float32 Grams (``Sigma = M - mu mu^T``
# cancels), so eigenvalues a few 1e-7 of the largest are round-off, not texture; iterating on them made the fixed
# point crawl (hundreds of 512 x 512 eigendecompositions) for nothing a float32 Gram target could hold.
SUPPORT_FLOOR = 1e-5
# The fixed point stops when the covariance's relative change (Frobenius) falls below TOLERANCE, or after
# MAX_ITERATIONS. It converges linearly, slowly where covariances are singular (deep layers with fewer positions
# than channels): measured on random ReLU features of 512 channels, 4-16 positions, 1e-5 took 136-167 iterations
# and left the barycenter's Gram within 4e-5-6e-5 (relative) of a 3000-iteration reference; 1e-6 took 30% more
# iterations for 10x less, far below what a float32 Gram target and an optimisation that ends at a relative style
# loss of ~1e-2 can see.
TOLERANCE = 1e-5
MAX_ITERATIONS = 500


@dataclass(frozen=True)
class Gaussian:
    """A feature distribution: ``mean`` (C,) and ``cov`` (C, C), float64."""

    mean: np.ndarray
    cov: np.ndarray


def feature_gaussian(features: np.ndarray) -> Gaussian:
    """``(1, H, W, C)`` or ``(H, W, C)`` feature maps -> their mean and population covariance over positions (float64,
    centred before the product, so a large mean does not swamp the covariance in round-off)."""
    flat = np.asarray(features, dtype=np.float64).reshape(-1, np.shape(features)[-1])
    mean = flat.mean(axis=0)
    centred = flat - mean
    cov = centred.T @ centred / flat.shape[0]
    return Gaussian(mean, _symmetric(cov))


def with_ones_channel(features: np.ndarray) -> np.ndarray:
    """Feature maps ``(..., C)`` with a channel of ones appended ``(..., C + 1)``: the Gram of ``[F 1]`` holds the
    second moment ``F^T F``, the sum ``F^T 1`` (hence the mean) and the count, so the engine's Gram machinery,
    tiled or not (tiling.layer_stats sums Grams over tiles exactly), gathers a layer's mean and covariance too."""
    ones = np.ones((*np.shape(features)[:-1], 1), dtype=np.asarray(features).dtype)
    return np.concatenate([features, ones], axis=-1)


def gaussian_from_ones_gram(gram: np.ndarray) -> Gaussian:
    """The mean and covariance of features ``F`` from the engine's Gram of ``[F 1]`` (``with_ones_channel``), which
    is ``[F 1]^T [F 1] / (N (C + 1))`` over ``N`` positions: times ``C + 1`` it is ``[[M, mu], [mu^T, 1]]`` with
    ``M = F^T F / N``, and ``Sigma = M - mu mu^T``."""
    moments = np.asarray(gram, dtype=np.float64) * gram.shape[0]
    mean = moments[:-1, -1]
    return Gaussian(mean, _symmetric(moments[:-1, :-1] - np.outer(mean, mean)))


def gram_of(gaussian: Gaussian) -> np.ndarray:
    """The engine's normalised Gram ``F^T F / (H W C)`` of features with this mean and covariance:
    ``(Sigma + mu mu^T) / C`` (losses.gram_matrix), float32."""
    channels = gaussian.mean.shape[0]
    second_moment = gaussian.cov + np.outer(gaussian.mean, gaussian.mean)
    return (second_moment / channels).astype(np.float32)


def _symmetric(matrix: np.ndarray) -> np.ndarray:
    return (matrix + matrix.T) / 2


def psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """The PSD square root of a symmetric PSD matrix by eigendecomposition (negative round-off clamped to 0)."""
    values, vectors = np.linalg.eigh(_symmetric(matrix))
    return _symmetric((vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T)


def psd_sqrt_and_inverse(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(M^1/2, M^-1/2)`` from one eigendecomposition; eigenvalues below ``EIGEN_FLOOR`` x the largest are raised to
    that floor, so a singular ``M`` gets a finite (pseudo-)inverse root."""
    values, vectors = np.linalg.eigh(_symmetric(matrix))
    floor = EIGEN_FLOOR * max(float(values.max()), np.finfo(np.float64).tiny)
    roots = np.sqrt(np.maximum(values, floor))
    return _symmetric((vectors * roots) @ vectors.T), _symmetric((vectors / roots) @ vectors.T)


def transport_map(source_cov: np.ndarray, target_cov: np.ndarray) -> np.ndarray:
    """The matrix ``A`` of the optimal (W2) map ``x -> m_t + A (x - m_s)`` from ``N(m_s, source_cov)`` to
    ``N(m_t, target_cov)``: ``A = S^-1/2 (S^1/2 T S^1/2)^1/2 S^-1/2`` (Dowson & Landau 1982; Knott & Smith 1984)."""
    root, inverse_root = psd_sqrt_and_inverse(source_cov)
    return _symmetric(inverse_root @ psd_sqrt(root @ target_cov @ root) @ inverse_root)


@dataclass(frozen=True)
class Barycenter:
    gaussian: Gaussian
    iterations: int  # fixed-point iterations run (0: one Gaussian of non-zero weight, returned as it is)
    change: float  # the last relative change of the covariance (0 when no iteration ran)


def barycenter(gaussians: Sequence[Gaussian], weights: Sequence[float], *, tolerance: float = TOLERANCE,
               max_iterations: int = MAX_ITERATIONS) -> Barycenter:
    """The W2 barycenter of ``gaussians`` with ``weights`` (non-negative, normalised here) by the fixed point of
    Álvarez-Esteban et al. 2016, started from the weighted mean of the covariances (positive definite as soon as
    one of them is). Gaussians of weight 0 take no part; a single remaining one is returned exactly."""
    weights = np.asarray(weights, dtype=np.float64)
    if len(gaussians) != len(weights) or not len(weights) or np.any(weights < 0) or weights.sum() <= 0:
        raise ValueError(f"need one non-negative weight per Gaussian with a positive sum, got {weights.tolist()}")
    kept = [(w / weights.sum(), g) for w, g in zip(weights, gaussians, strict=True) if w > 0]
    if len(kept) == 1:
        return Barycenter(kept[0][1], 0, 0.0)
    mean = sum(w * g.mean for w, g in kept)
    basis, cov = _joint_support(_symmetric(sum(w * g.cov for w, g in kept)))
    if basis.shape[1] == 0:  # every covariance is zero (flat images): the barycenter is the point at the mean
        return Barycenter(Gaussian(mean, np.zeros_like(kept[0][1].cov)), 0, 0.0)
    covs = [(w, _symmetric(basis.T @ g.cov @ basis)) for w, g in kept]
    change = np.inf
    iterations = 0
    while iterations < max_iterations and change > tolerance:
        root, inverse_root = psd_sqrt_and_inverse(cov)
        inner = sum(w * psd_sqrt(root @ c @ root) for w, c in covs)
        updated = _symmetric(inverse_root @ inner @ inner @ inverse_root)
        scale = max(float(np.linalg.norm(cov)), np.finfo(np.float64).tiny)
        change = float(np.linalg.norm(updated - cov)) / scale
        cov = updated
        iterations += 1
    return Barycenter(Gaussian(mean, _symmetric(basis @ cov @ basis.T)), iterations, change)


def _joint_support(weighted_mean_cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An orthonormal basis ``U`` (C x r) of the range of ``sum w_i Sigma_i`` (the sum of the covariances' ranges,
    as the weights are positive) and the start ``U^T (sum w_i Sigma_i) U`` (r x r, positive definite).

    Every ``Sigma_i`` lives in that subspace and so does the barycenter (each fixed-point step maps it into itself),
    so iterating on ``r x r`` matrices is exact (up to the round-off directions ``SUPPORT_FLOOR`` drops), meets the
    theorem's positive definite start, and is much cheaper where features are low-rank: at 32 px block5_conv1 has 4
    positions for 512 channels."""
    values, vectors = np.linalg.eigh(weighted_mean_cov)
    keep = values > SUPPORT_FLOOR * max(float(values.max()), np.finfo(np.float64).tiny)
    return vectors[:, keep], np.diag(values[keep])


def mixes(weights: Sequence[float]) -> bool:
    """Whether these blend weights mix anything: more than one style of non-zero weight. Otherwise
    ``style_mix=wasserstein`` is the one style's own Grams, computed as ``style_mix=gram`` computes them."""
    return sum(1 for weight in weights if weight > 0) > 1


def barycenter_grams(per_style: Sequence[Sequence[Gaussian]], weights: Sequence[float]) -> tuple[np.ndarray, ...]:
    """``per_style[s][layer]``: each style's Gaussian per style layer -> the Gram of each layer's barycenter
    (``gram_of``), float32, in layer order: the style targets of ``style_mix=wasserstein``."""
    layers = len(per_style[0])
    return tuple(gram_of(barycenter([style[layer] for style in per_style], weights).gaussian)
                 for layer in range(layers))
