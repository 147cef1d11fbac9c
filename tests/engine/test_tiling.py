"""Exact tiling (worker/engine/tiling.py): the tiled loss and gradient equal the untiled ones up to float rounding,
on random-weight VGG19 at small sizes; a halo one stride too small does not; the receptive fields come out of the
Keras layers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from shared.params import StyleParams
from worker.engine import backbones, engine, tiling

# Two pools' worth of VGG19 (deepest block3_conv1, total stride 4, halo 16): six tiles at 64x96, one with a true
# interior window, and each pass is cheap.
SHALLOW = {"content_layers": {"block2_conv2": 1.0},
           "style_layers": {"block1_conv1": 1.0, "block2_conv1": 1.0, "block3_conv1": 1.0}}


def _objectives(content, style, random_weights, params, core_px, halo_px=None):
    """The untiled objective's (losses, gradient) and the tiled one's (targets, scales and all computed in tiles) of
    the same job at the same image, and the tiled plan."""
    job = engine._prepare(content, [style], params, random_weights)
    image = np.random.default_rng(1).uniform(0, 255, job.content_input.shape).astype(np.float32)
    untiled = _untiled(job, image)
    tiler = tiling.Tiler.for_network(job.backbone.model, job.layer_order, 0, core_px=core_px)
    if halo_px is not None:
        tiler = dataclasses.replace(tiler, halo_px=halo_px)
    tiled_job = dataclasses.replace(job, tiler=tiler)
    tiled = engine._objective(tiled_job, engine._style_grams(tiled_job))
    assert isinstance(tiled, tiling.TiledObjective)
    return untiled, tiled(image), tiled.plan


_UNTILED: dict[tuple, tuple] = {}


def _untiled(job, image):
    """The untiled result, computed once per job shape and layers (two tests compare against the same one)."""
    key = (image.shape, job.layer_order)
    if key not in _UNTILED:
        _UNTILED[key] = engine._objective(job, engine._style_grams(job))(image)
    return _UNTILED[key]


def _relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(a))


def test_vgg19_receptive_fields_from_the_layers(random_weights):
    backbone, _cached = backbones.get_backbone("vgg19", "max", "float32", random_weights)
    reach = tiling.network_reach(backbone.model, ("block1_conv1", "block3_conv1", "block5_conv1"))
    assert reach["block1_conv1"] == tiling.Reach(3, 1)
    assert reach["block3_conv1"] == tiling.Reach(24, 4)
    assert reach["block5_conv1"] == tiling.Reach(156, 16)  # the default style layers' deepest
    assert reach["block5_conv1"].reach_px == 77 + 16


def test_tiled_loss_and_gradient_equal_untiled(cat, starry_night, random_weights):
    params = StyleParams(size=96, style_scale=0.5, **SHALLOW)
    (losses, grad), (tiled_losses, tiled_grad), plan = _objectives(cat, starry_night, random_weights, params, 32)
    assert plan.halo_px == 16 and len(plan.tiles) == 6  # 64x96: 2 rows x 3 columns of 32 px cores
    np.testing.assert_allclose(tiled_losses, losses, rtol=2e-5)
    assert _relative_error(grad, tiled_grad) < 1e-5
    # No seams: the largest difference anywhere (core edges included) is rounding against the gradient's scale.
    assert np.max(np.abs(grad - tiled_grad)) < 1e-4 * np.max(np.abs(grad))


def test_default_layers_through_four_pools_with_an_odd_width(cat, starry_night, random_weights):
    # 32x250 px (not a multiple of the stride 16), two tiles of 128 px cores with the default layers' 96 px halo;
    # the style at half size runs in one tile.
    wide = np.ascontiguousarray(np.resize(cat, (32, 250, 3)))
    (losses, grad), (tiled_losses, tiled_grad), plan = _objectives(
        wide, starry_night, random_weights, StyleParams(size=250, style_scale=0.5), 128)
    assert (plan.stride_px, plan.halo_px, len(plan.tiles)) == (16, 96, 2)
    np.testing.assert_allclose(tiled_losses, losses, rtol=2e-5)
    assert _relative_error(grad, tiled_grad) < 1e-5


def test_a_halo_below_the_reach_is_not_exact(cat, starry_night, random_weights):
    params = StyleParams(size=96, style_scale=0.5, **SHALLOW)
    (_losses, grad), (_tiled, tiled_grad), _plan = _objectives(cat, starry_night, random_weights, params, 32, 4)
    assert _relative_error(grad, tiled_grad) > 1e-3


def test_tiler_tiles_only_past_the_budget():
    tiler = tiling.Tiler(budget_bytes=tiling.pass_bytes((512, 512)), stride_px=16, halo_px=96, strides=(1, 16))
    assert tiler.plan((512, 512)) is None
    plan = tiler.plan((2048, 1524))
    assert plan is not None and plan.core_px == 512 - 2 * 96 and plan.core_px % 16 == 0
    covered = sum((t.core[1] - t.core[0]) * (t.core[3] - t.core[2]) for t in plan.tiles)
    assert covered == 2048 * 1524  # the cores partition the image


def test_tv_gradient_matches_keras():
    from keras import ops

    from worker.engine import losses

    image = np.random.default_rng(2).uniform(0, 255, (7, 9, 3)).astype(np.float32)
    value, grad = tiling.tv_loss_and_grad(image)
    assert value == pytest.approx(float(ops.convert_to_numpy(losses.total_variation_loss(image))), rel=1e-5)
    eps, (y, x, c) = 1e-2, (3, 4, 1)
    bumped = image.copy()
    bumped[y, x, c] += eps
    numeric = (tiling.tv_loss_and_grad(bumped)[0] - value) / eps
    assert grad[y, x, c] == pytest.approx(numeric, rel=1e-2)


def test_stylize_tiles_past_its_memory_budget_and_says_so(cat, starry_night, random_weights):
    params = StyleParams(size=64, iterations=2)
    result = engine.stylize(cat, [starry_night], params, weights=random_weights, memory_budget_bytes=1)
    assert result.image.shape == (42, 64, 3)
    assert result.metrics["tiling"] == {"tiles": 1, "tile_px": 64, "halo_px": 96, "stride_px": 16}
    assert result.metrics["memory_budget_bytes"] == 1
    roomy = engine.stylize(cat, [starry_night], params, weights=random_weights, memory_budget_bytes=2**40)
    assert roomy.metrics["tiling"] is None
    # One tile holding the whole image is the untiled computation: the same losses.
    assert result.metrics["losses"]["final"]["total"] == pytest.approx(roomy.metrics["losses"]["final"]["total"],
                                                                        rel=1e-4)
