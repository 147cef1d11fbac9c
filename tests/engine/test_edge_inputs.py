"""Inputs that used to be accepted and then fail on the worker: very thin or very small images, tiny styles after
style_scale, and flat (one-colour) images that made the relative losses meaningless. Each either runs to a finite
result or is exactly what shared/geometry.py refuses. Real VGG19 ImageNet weights, 16-64 px, 2-3 iterations."""

from __future__ import annotations

import numpy as np
import pytest

from shared.errors import EngineError, ParamError
from shared.geometry import check_job
from shared.params import StyleParams

pytestmark = pytest.mark.slow


def _finite(result) -> bool:
    losses = result.metrics["losses"]
    return all(np.isfinite(v) for stage in ("initial", "final") for v in losses[stage].values())


def _noise(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


def test_very_thin_content_is_padded_and_cropped_back(starry_night):
    from worker.engine import stylize

    result = stylize(_noise((300, 3)), [starry_night], StyleParams(size=64, iterations=2))
    assert result.image.shape == (64, 1, 3) and _finite(result)
    assert result.metrics["padded_to_px"] == [64, 16] and result.metrics["size_px"] == [64, 1]


def test_thin_content_with_shallow_layers_still_gets_two_pixels_for_total_variation(starry_night):
    """Only block1 layers: the network would take 1 px, but the TV loss of a one-pixel-wide image is a mean over
    nothing (NaN). The engine pads to 2."""
    from worker.engine import stylize

    params = StyleParams.from_mapping({"size": 32, "iterations": 2, "content_layers": ["block1_conv2"],
                                       "style_layers": ["block1_conv1"]})
    result = stylize(_noise((2, 200)), [starry_night], params)
    assert result.image.shape == (1, 32, 3) and result.metrics["padded_to_px"] == [2, 32] and _finite(result)


def test_smallest_size_runs(cat, starry_night):
    from worker.engine import stylize

    result = stylize(cat, [starry_night], StyleParams(size=16, iterations=2))
    assert max(result.image.shape[:2]) == 16 and _finite(result)


def test_tiny_style_after_style_scale_runs(cat, starry_night):
    from worker.engine import stylize

    result = stylize(cat, [starry_night[:, :40]], StyleParams(size=48, iterations=2, style_scale=0.1))
    assert _finite(result)


def test_what_the_door_refuses_is_exactly_what_the_engine_refuses(cat, starry_night):
    from worker.engine import stylize

    params = StyleParams.from_mapping({"size": 16, "iterations": 2, "style_layers": ["block5_pool"]})
    with pytest.raises(ParamError) as door:
        check_job(params, cat.shape[:2], [starry_night.shape[:2]])
    with pytest.raises(ParamError) as engine:
        stylize(cat, [starry_night], params)
    assert (engine.value.code, engine.value.message) == (door.value.code, door.value.message) and (
        door.value.code == "image_too_small")
    # One step up (size 32) is enough for block5_pool: it runs.
    assert _finite(stylize(cat, [starry_night], params.replace(size=32)))


@pytest.mark.parametrize("colour", [(124, 117, 104), (0, 0, 0), (128, 128, 128)], ids=["imagenet-mean", "black",
                                                                                       "grey"])
def test_flat_style_gives_a_finite_bounded_loss(cat, colour):
    """A one-colour style has almost no feature energy; dividing by its mean square gave a style loss of 1.8e8 for
    the ImageNet-mean colour (the painting: about 10). With the floor on the normaliser it stays below 1e5."""
    from worker.engine import stylize

    style = np.full((48, 64, 3), colour, np.uint8)
    result = stylize(cat, [style], StyleParams(size=32, iterations=3))
    assert _finite(result) and result.metrics["losses"]["initial"]["style"] < 1e5
    assert result.metrics["losses"]["final"]["total"] < result.metrics["losses"]["initial"]["total"]


def test_flat_content_and_black_images_give_finite_results(starry_night):
    from worker.engine import stylize

    flat = np.full((48, 64, 3), (124, 117, 104), np.uint8)
    for content, styles, extra in [(flat, [starry_night], {"init": "noise"}), (np.zeros_like(flat), [flat], {}),
                                   (flat, [flat], {"preserve_color": "luminance"})]:
        result = stylize(content, styles, StyleParams(size=32, iterations=2, **extra))
        assert _finite(result) and result.metrics["losses"]["initial"]["total"] < 1e5, extra
        assert result.image.dtype == np.uint8


def test_a_loss_that_is_never_finite_is_a_clear_engine_error(cat, starry_night, monkeypatch):
    """Not reachable from valid inputs any more; if it ever is, the job fails with a stable code, never a NaN image."""
    from worker.engine import engine

    real = engine._objective

    def poisoned(job, grams):
        objective = real(job, grams)

        def evaluate(image):
            terms, gradient = objective(image)
            return np.full_like(terms, np.nan), gradient

        evaluate.traced_on_first_call = False
        return evaluate

    monkeypatch.setattr(engine, "_objective", poisoned)
    with pytest.raises(EngineError) as caught:
        engine.stylize(cat, [starry_night], StyleParams(size=32, iterations=2))
    assert caught.value.code == "non_finite_loss" and "content" in caught.value.message
