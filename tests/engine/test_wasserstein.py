"""Wasserstein style mixing (worker/engine/wasserstein.py) against closed forms, and one tiny engine run.

Closed forms used: the W2 barycenter of 1-D Gaussians has mean ``sum w_i m_i`` and standard deviation
``sum w_i s_i``; for commuting (here diagonal) covariances it is ``(sum w_i Sigma_i^1/2)^2``; for two Gaussians it is
McCann's displacement interpolant ``M Sigma_1 M`` with ``M = w_1 I + w_2 T`` (T the optimal map from the first to
the second).
"""

from __future__ import annotations

import numpy as np
import pytest

from shared.errors import ParamError
from shared.params import StyleParams
from worker.engine import wasserstein
from worker.engine.wasserstein import Gaussian


def _random_gaussian(rng: np.random.Generator, dim: int) -> Gaussian:
    factor = rng.normal(size=(dim, dim))
    return Gaussian(rng.normal(size=dim), factor @ factor.T + 0.1 * np.eye(dim))


def test_two_1d_gaussians_have_the_closed_form_barycenter():
    first, second = Gaussian(np.array([-2.0]), np.array([[0.25]])), Gaussian(np.array([3.0]), np.array([[9.0]]))
    result = wasserstein.barycenter([first, second], [0.3, 0.7])
    assert result.gaussian.mean == pytest.approx([0.3 * -2.0 + 0.7 * 3.0])
    assert np.sqrt(result.gaussian.cov[0, 0]) == pytest.approx(0.3 * 0.5 + 0.7 * 3.0, rel=1e-9)


def test_weights_are_normalised():
    first, second = Gaussian(np.array([0.0]), np.array([[1.0]])), Gaussian(np.array([1.0]), np.array([[4.0]]))
    result = wasserstein.barycenter([first, second], [1.0, 3.0])
    assert np.sqrt(result.gaussian.cov[0, 0]) == pytest.approx(0.25 * 1 + 0.75 * 2, rel=1e-9)


def test_commuting_covariances_give_the_weighted_mean_of_square_roots_squared():
    rng = np.random.default_rng(1)
    diagonals = [rng.uniform(0.01, 5.0, size=6) for _ in range(3)]
    weights = [0.2, 0.5, 0.3]
    gaussians = [Gaussian(rng.normal(size=6), np.diag(d)) for d in diagonals]
    result = wasserstein.barycenter(gaussians, weights)
    expected = np.diag(sum(w * np.sqrt(d) for w, d in zip(weights, diagonals, strict=True)) ** 2)
    np.testing.assert_allclose(result.gaussian.cov, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(result.gaussian.mean, sum(w * g.mean for w, g in zip(weights, gaussians, strict=True)))


def test_two_full_covariances_give_mccanns_interpolant_and_a_psd_fixed_point():
    rng = np.random.default_rng(2)
    first, second = _random_gaussian(rng, 8), _random_gaussian(rng, 8)
    result = wasserstein.barycenter([first, second], [0.4, 0.6], tolerance=1e-10)
    step = 0.4 * np.eye(8) + 0.6 * wasserstein.transport_map(first.cov, second.cov)
    expected = step @ first.cov @ step
    assert np.linalg.norm(result.gaussian.cov - expected) < 1e-8 * np.linalg.norm(expected)
    cov = result.gaussian.cov
    assert np.allclose(cov, cov.T) and np.linalg.eigvalsh(cov).min() > 0
    assert 0 < result.iterations < wasserstein.MAX_ITERATIONS and result.change <= 1e-10


def test_three_gaussians_satisfy_the_barycenter_equation_and_stay_psd():
    rng = np.random.default_rng(3)
    gaussians = [_random_gaussian(rng, 10) for _ in range(3)]
    weights = [0.5, 0.3, 0.2]
    cov = wasserstein.barycenter(gaussians, weights, tolerance=1e-10).gaussian.cov
    root = wasserstein.psd_sqrt(cov)
    fixed = sum(w * wasserstein.psd_sqrt(root @ g.cov @ root) for w, g in zip(weights, gaussians, strict=True))
    assert np.linalg.norm(fixed - cov) < 1e-8 * np.linalg.norm(cov)
    assert np.linalg.eigvalsh(cov).min() > 0


def test_one_gaussian_is_its_own_barycenter_and_zero_weights_take_no_part():
    rng = np.random.default_rng(4)
    alone, other = _random_gaussian(rng, 5), _random_gaussian(rng, 5)
    assert wasserstein.barycenter([alone], [2.0]).gaussian is alone
    result = wasserstein.barycenter([alone, other], [1.0, 0.0])
    assert result.gaussian is alone and result.iterations == 0
    assert not wasserstein.mixes([1.0, 0.0]) and wasserstein.mixes([0.5, 0.5])
    with pytest.raises(ValueError, match="non-negative weight"):
        wasserstein.barycenter([alone, other], [1.0, -1.0])


def test_the_map_from_a_gaussian_to_itself_is_the_identity_and_maps_push_covariances():
    rng = np.random.default_rng(5)
    source, target = _random_gaussian(rng, 7), _random_gaussian(rng, 7)
    np.testing.assert_allclose(wasserstein.transport_map(source.cov, source.cov), np.eye(7), atol=1e-8)
    forward = wasserstein.transport_map(source.cov, target.cov)
    np.testing.assert_allclose(forward @ source.cov @ forward, target.cov, rtol=1e-7, atol=1e-9)
    assert np.linalg.eigvalsh(forward).min() > 0  # optimal maps are gradients of convex functions: symmetric PD


def test_singular_covariances_stay_finite_and_psd():
    """Deep layers at small sizes have fewer positions than channels, and dead ReLU channels are zero."""
    rng = np.random.default_rng(6)
    features = [np.maximum(rng.normal(size=(12, 32)), 0) for _ in range(2)]
    for f in features:
        f[:, 0] = 0.0  # a dead channel
    gaussians = [wasserstein.feature_gaussian(f) for f in features]
    cov = wasserstein.barycenter(gaussians, [0.5, 0.5]).gaussian.cov
    assert np.all(np.isfinite(cov)) and np.linalg.eigvalsh(cov).min() > -1e-9 * np.abs(cov).max()
    assert abs(cov[0, 0]) < 1e-9 and np.abs(cov[0]).max() < 1e-9
    flat = [Gaussian(np.full(4, value), np.zeros((4, 4))) for value in (1.0, 3.0)]  # one-colour images
    point = wasserstein.barycenter(flat, [0.5, 0.5]).gaussian
    np.testing.assert_array_equal(point.cov, np.zeros((4, 4)))
    np.testing.assert_allclose(point.mean, np.full(4, 2.0))


def test_moments_from_the_gram_with_a_ones_channel_match_the_features():
    rng = np.random.default_rng(7)
    features = np.maximum(rng.normal(1.0, 2.0, size=(1, 9, 11, 6)), 0).astype(np.float32)
    flat = wasserstein.with_ones_channel(features).reshape(-1, 7).astype(np.float64)
    gram_with_ones = flat.T @ flat / flat.size  # losses.gram_matrix's normalisation: positions x channels
    direct, recovered = wasserstein.feature_gaussian(features), wasserstein.gaussian_from_ones_gram(gram_with_ones)
    np.testing.assert_allclose(recovered.mean, direct.mean, rtol=1e-12)
    np.testing.assert_allclose(recovered.cov, direct.cov, rtol=1e-9, atol=1e-12)
    plain = features.reshape(-1, 6).astype(np.float64)
    np.testing.assert_allclose(wasserstein.gram_of(direct), plain.T @ plain / plain.size, rtol=1e-6)


def test_style_mix_is_validated_like_every_parameter():
    assert StyleParams().style_mix == "gram"
    assert StyleParams.from_mapping({"style_mix": "Wasserstein"}).style_mix == "wasserstein"
    with pytest.raises(ParamError) as caught:
        StyleParams.from_mapping({"style_mix": "average"})
    assert caught.value.code == "param_out_of_range" and caught.value.field == "style_mix"
    assert "style_mix='average'" in str(caught.value) and "one of gram, wasserstein" in str(caught.value)


def test_style_mix_is_part_of_the_style_target_keys():
    from worker.style_cache import cache_key_fields

    gram, mixed = StyleParams.from_mapping({"size": 32}), StyleParams.from_mapping({"size": 32, "style_mix":
                                                                                     "wasserstein"})
    styles = ["inputs/" + "a" * 64 + ".jpg", "inputs/" + "b" * 64 + ".jpg"]
    assert cache_key_fields(styles, gram, "float32") != cache_key_fields(styles, mixed, "float32")


@pytest.mark.slow  # builds VGG19 and traces a step, like tests/engine/test_stylize.py
def test_engine_mixes_two_styles_by_their_barycenter(cat, starry_night, scream, random_weights):
    """Random-weight VGG19 at 32 px: the barycenter targets differ from averaged Grams, one style gives the very
    Grams of style_mix=gram, and a short run reports finite losses."""
    from worker.engine import compute_style_targets, stylize

    base = {"size": 32, "iterations": 3, "progress_every": 3, "precision": "float32"}
    gram = StyleParams.from_mapping({**base, "style_blend": [0.5, 0.5]})
    mixed = gram.replace(style_mix="wasserstein")
    averaged = compute_style_targets([starry_night, scream], gram, weights=random_weights)
    barycentric = compute_style_targets([starry_night, scream], mixed, weights=random_weights)
    assert averaged.key != barycentric.key
    assert len(barycentric.grams) == len(averaged.grams)
    for one, other in zip(averaged.grams, barycentric.grams, strict=True):
        assert one.shape == other.shape and np.all(np.isfinite(other))
        np.testing.assert_allclose(other, other.T, rtol=1e-5, atol=1e-7)
    assert any(not np.allclose(one, other, rtol=1e-3) for one, other in zip(averaged.grams, barycentric.grams,
                                                                                  strict=True))

    first_only = compute_style_targets([starry_night, scream], mixed.replace(style_blend=(1.0, 0.0)),
                                       weights=random_weights)
    alone = compute_style_targets([starry_night], gram.replace(style_blend=None), weights=random_weights)
    for one, other in zip(first_only.grams, alone.grams, strict=True):
        np.testing.assert_array_equal(one, other)

    result = stylize(cat, [starry_night, scream], mixed, weights=random_weights, style_targets=barycentric)
    assert result.metrics["style_targets"] == "reused" and result.metrics["style_mix"] == "wasserstein"
    assert all(np.isfinite(value) for value in result.metrics["losses"]["final"].values())
    assert result.image.dtype == np.uint8 and max(result.image.shape[:2]) == 32
