"""stylize() end to end with the real VGG19 ImageNet weights and the sample images (32-64 px, a few iterations)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from shared.errors import ImageError, ParamError
from shared.params import StyleParams
from worker.engine import color

pytestmark = pytest.mark.slow

SIZE_PX = 64


def _out_shape(image: np.ndarray, size_px: int) -> tuple[int, int, int]:
    """Expected output shape: long side ``size_px``, aspect ratio kept (the sample content is landscape)."""
    height, width = image.shape[:2]
    assert width > height
    return round(height * size_px / width), size_px, 3


def _params(**changes) -> StyleParams:
    base = {"size": SIZE_PX, "iterations": 4, "progress_every": 2}
    base.update(changes)
    return StyleParams.from_mapping(base)


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_total_loss_falls_by_half_within_20_iterations(cat, starry_night, optimizer):
    from worker.engine import stylize

    result = stylize(cat, [starry_night], _params(iterations=20, optimizer=optimizer))
    metrics = result.metrics
    initial, final = metrics["losses"]["initial"]["total"], metrics["losses"]["final"]["total"]
    assert final < 0.5 * initial, f"{optimizer}: loss fell only to {final / initial:.2f} of initial"
    assert "imagenet" in metrics["weights"]
    assert metrics["iterations_run"] == 20 and not result.cancelled
    assert result.image.dtype == np.uint8 and result.image.shape == _out_shape(cat, SIZE_PX)
    assert metrics["size_px"] == list(_out_shape(cat, SIZE_PX)[:2])
    json.dumps(metrics)  # JSON-serialisable as promised
    for stage in ("initial", "final"):
        losses = metrics["losses"][stage]
        assert losses["total"] == pytest.approx(losses["content"] + losses["style"] + losses["tv"], rel=1e-5)
    assert metrics["total_variation"] > 0 and metrics["seconds_per_iteration"] > 0


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(cat, starry_night):
    from worker.engine import stylize

    params = _params(size=48, iterations=3, init="noise", seed=7)
    first = stylize(cat, [starry_night], params).image
    again = stylize(cat, [starry_night], params).image
    other = stylize(cat, [starry_night], params.replace(seed=8)).image
    assert first.tobytes() == again.tobytes()
    assert first.tobytes() != other.tobytes()


def test_progress_every_n_iterations_and_at_the_end_with_a_lazy_preview(cat, starry_night):
    from worker.engine import Progress, stylize

    seen: list[Progress] = []
    result = stylize(cat, [starry_night], _params(iterations=5, progress_every=2), seen.append)
    assert [p.iteration for p in seen] == [2, 4, 5]
    assert all(p.iterations == 5 for p in seen)
    assert set(seen[0].losses) == {"content", "style", "tv", "total"}
    assert seen[-1].elapsed_s >= seen[0].elapsed_s > 0
    preview = seen[-1].preview()
    assert preview.dtype == np.uint8 and preview.shape == result.image.shape


def test_callback_cancels_within_the_interval(cat, starry_night):
    from worker.engine import stylize

    calls = []

    def cancel(progress):
        calls.append(progress.iteration)
        return True

    result = stylize(cat, [starry_night], _params(iterations=50, progress_every=3), cancel)
    assert result.cancelled and result.metrics["cancelled"]
    assert result.metrics["iterations_run"] == 3
    assert calls == [3]
    assert result.image.shape == _out_shape(cat, SIZE_PX)


def test_early_stop_reports_where_it_stopped(cat, starry_night):
    from worker.engine import stylize

    # A tolerance no real run meets (90% improvement over 2 iterations): it must stop right after the window.
    result = stylize(cat, [starry_night], _params(iterations=30, early_stop_tol=0.9, early_stop_window=2))
    assert result.metrics["stopped_early_at"] == 3
    assert result.metrics["iterations_run"] == 3


def _chroma(image: np.ndarray) -> np.ndarray:
    return color.rgb_to_yiq(image.astype(np.float32))[..., 1:]


def test_luminance_preservation_keeps_the_content_chroma(cat, starry_night):
    from worker.engine import stylize
    from worker.engine.images import resize

    params = _params(size=48, iterations=6)
    kept = stylize(cat, [starry_night], params.replace(preserve_color="luminance")).image
    plain = stylize(cat, [starry_night], params).image
    content_chroma = _chroma(resize(cat, kept.shape[:2]))
    kept_error = np.abs(_chroma(kept) - content_chroma).mean()
    plain_error = np.abs(_chroma(plain) - content_chroma).mean()
    assert kept_error < 1.5  # rounding to uint8 and clipping only
    assert plain_error > 3 * kept_error  # without preservation the style's colours come in


def test_histogram_mode_and_style_init_run(cat, starry_night):
    from worker.engine import stylize

    result = stylize(cat, [starry_night], _params(preserve_color="histogram", init="style", iterations=4))
    assert result.image.shape == _out_shape(cat, SIZE_PX)
    assert result.metrics["losses"]["final"]["total"] < result.metrics["losses"]["initial"]["total"]


def test_style_blend_weights_blend_the_gram_targets(cat, starry_night, scream):
    from worker.engine import stylize

    params = _params(size=32, iterations=3)
    single = stylize(cat, [starry_night], params).image
    blend_first = stylize(cat, [starry_night, scream], params.replace(style_blend=(1.0, 0.0))).image
    blend_second = stylize(cat, [starry_night, scream], params.replace(style_blend=(0.0, 1.0))).image
    assert blend_first.tobytes() == single.tobytes()  # weight 0 removes the second style exactly
    assert blend_second.tobytes() != single.tobytes()


def test_precomputed_style_targets_are_reused_and_survive_bytes(cat, starry_night):
    from worker.engine import StyleTargets, compute_style_targets, stylize

    params = _params(size=32, iterations=3)
    targets = StyleTargets.from_bytes(compute_style_targets([starry_night], params).to_bytes())
    fresh = stylize(cat, [starry_night], params)
    reused = stylize(cat, [starry_night], params, style_targets=targets)
    assert fresh.metrics["style_targets"] == "computed"
    assert reused.metrics["style_targets"] == "reused"
    assert reused.image.tobytes() == fresh.image.tobytes()
    # Targets made for another size are not silently applied.
    other = stylize(cat, [starry_night], params.replace(size=40), style_targets=targets)
    assert other.metrics["style_targets"] == "computed"


def test_second_job_of_the_same_size_does_not_retrace(cat, astronaut, starry_night, scream):
    from worker.engine import backend_tf, stylize
    from worker.engine.images import resize

    params = _params(size=40, iterations=3)
    stylize(cat, [starry_night], params)
    before = backend_tf.tracing_counts()
    # Another content of the same shape and another style: same graph.
    other_content = resize(astronaut, cat.shape[:2]).astype(np.uint8)
    result = stylize(other_content, [scream], params.replace(content_weight=2.0, style_weight=3.0))
    assert backend_tf.tracing_counts()["step"] == before["step"]
    assert result.metrics["trace_seconds"] == 0.0
    assert result.metrics["backbone_cached"] is True
    assert result.metrics["iterations_run"] == 3


def test_average_pooling_is_a_different_network(cat, starry_night):
    from worker.engine import stylize

    params = _params(size=32, iterations=2)
    max_pool = stylize(cat, [starry_night], params)
    avg_pool = stylize(cat, [starry_night], params.replace(pooling="avg"))
    assert "imagenet" in avg_pool.metrics["weights"]
    assert max_pool.metrics["losses"]["initial"] != avg_pool.metrics["losses"]["initial"]


def test_user_layers_and_weights_are_used(cat, starry_night):
    from worker.engine import stylize

    params = _params(
        size=32, iterations=2, style_layers={"block1_conv1": 3.0, "block2_conv1": 1.0}, content_layers=["block3_conv2"]
    )
    metrics = stylize(cat, [starry_night], params).metrics
    assert metrics["style_layers"] == {"block1_conv1": 0.75, "block2_conv1": 0.25}
    assert metrics["content_layers"] == {"block3_conv2": 1.0}


def test_unknown_layer_is_rejected_with_the_valid_names(cat, starry_night):
    from worker.engine import stylize

    with pytest.raises(ParamError) as caught:
        stylize(cat, [starry_night], _params(style_layers=["block9_conv1"]))
    assert caught.value.code == "unknown_layer" and caught.value.field == "style_layers"
    assert "'block9_conv1'" in caught.value.message
    assert "block1_conv1" in caught.value.message and "block5_conv4" in caught.value.message


def test_bad_inputs_are_rejected_with_what_is_allowed(cat, starry_night):
    from worker.engine import stylize

    with pytest.raises(ParamError, match="2 weights for 1 style images"):
        stylize(cat, [starry_night], _params(style_blend=[1, 2]))
    with pytest.raises(ImageError, match=r"RGB uint8 array of shape \(H, W, 3\)"):
        stylize(cat.astype(np.float32), [starry_night], _params())
    with pytest.raises(ParamError, match="allowed: 1 to 8"):
        stylize(cat, [], _params())
    with pytest.raises(ParamError, match="one of vgg19, xception, efficientnetb7"):
        _params(backbone="resnet")


def test_bfloat16_runs_and_is_recorded(cat, starry_night):
    from worker.engine import resolve_precision, stylize
    from worker.engine.backend_tf import bfloat16_is_fast

    result = stylize(cat, [starry_night], _params(size=32, iterations=2, precision="bfloat16"))
    assert result.metrics["precision"] == "bfloat16"
    assert np.isfinite(result.metrics["losses"]["final"]["total"])
    assert resolve_precision("auto") == ("bfloat16" if bfloat16_is_fast() else "float32")


def test_floor_step_and_evaluate_losses(cat, starry_night):
    from worker.engine import evaluate_losses, floor_step_fn, stylize

    params = _params(size=32, iterations=3)
    gradient = floor_step_fn(params, (20, 32))()
    assert gradient.shape == (20, 32, 3) and np.abs(gradient).sum() > 0
    on_content = floor_step_fn(params, (20, 32), cat)()
    assert on_content.shape == (20, 32, 3) and not np.allclose(on_content, gradient)  # a different input
    result = stylize(cat, [starry_night], params)
    scored = evaluate_losses(result.image, cat, [starry_night], params)
    # The output is the best evaluated image rounded to uint8: its loss is close to the reported final loss.
    assert scored["total"] == pytest.approx(result.metrics["losses"]["final"]["total"], rel=0.05)
