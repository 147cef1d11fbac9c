"""Training fast-style networks with the real VGG19 ImageNet weights: tiny networks, 32 px, a few steps.

Three trainings serve every test (each costs a graph trace of a few seconds on 2 cores): ``full`` runs STEPS
steps with a checkpoint halfway; ``half`` is the same training cancelled by its progress callback at the halfway
step; ``resumed`` continues ``half``'s final state to STEPS. Same seed and inputs, so ``half`` must reproduce the
``full`` checkpoint bit for bit (determinism for a seed) and ``resumed`` the ``full`` result (resume).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from shared.errors import EngineError, ParamError

pytestmark = pytest.mark.slow

STEPS = 16
HALF = STEPS // 2
PARAMS = {
    "size": 32, "steps": STEPS, "batch_size": 2, "width": 0.125, "residual_blocks": 1, "learning_rate": 1e-2,
    "progress_every": 4, "checkpoint_every": HALF, "seed": 11,
}


def _params(**changes):
    from worker.engine.trainer import TrainParams

    return TrainParams(**{**PARAMS, **changes})


@pytest.fixture(scope="module")
def inputs(cat, astronaut, starry_night):
    return [starry_night], [cat, astronaut]


@pytest.fixture(scope="module")
def full(inputs):
    from worker.engine.trainer import train

    styles, contents = inputs
    reports, checkpoints = [], []
    result = train(styles, contents, _params(), reports.append, on_checkpoint=checkpoints.append)
    return result, reports, checkpoints


@pytest.fixture(scope="module")
def half(inputs):
    from worker.engine.trainer import train

    styles, contents = inputs
    seen = []

    def on_progress(progress):
        seen.append((progress.iteration, progress.iterations, progress.preview()))
        return progress.iteration >= HALF  # ask to stop, as the worker's ProgressReporter does on cancel

    return train(styles, contents, _params(), on_progress), seen


@pytest.fixture(scope="module")
def resumed(inputs, half):
    from worker.engine.trainer import TrainState, train

    styles, contents = inputs
    result, _seen = half
    state = TrainState.from_bytes(result.state.to_bytes(key=b"k"), key=b"k")  # through the stored form
    reports = []
    return train(styles, contents, _params(), reports.append, resume=state), reports


def _weights(state) -> list[np.ndarray]:
    return [array for _name, array in state.weights]


def test_training_loss_falls(full):
    result, reports, _checkpoints = full
    history = result.metrics["history"]
    assert [h["step"] for h in history] == [4, 8, 12, 16]
    first, last = history[0]["total"], history[-1]["total"]
    assert last < 0.6 * first, f"loss fell only from {first:.3f} to {last:.3f}"
    assert result.metrics["steps_run"] == STEPS and not result.cancelled
    assert "imagenet" in result.metrics["weights"]
    for h in history:  # the reported terms are the weighted ones, summing to the total as in Gatys jobs
        assert h["total"] == pytest.approx(h["content"] + h["style"] + h["tv"], rel=1e-5)
    json.dumps(result.metrics)
    json.dumps(result.model.meta)


def test_progress_matches_the_engines_contract(full):
    from worker.progress import progress_snapshot

    _result, reports, _checkpoints = full
    assert [r.iteration for r in reports] == [4, 8, 12, 16]
    assert all(r.iterations == STEPS for r in reports)
    assert all(set(r.losses) == {"content", "style", "tv", "total"} for r in reports)
    assert [r.elapsed_s for r in reports] == sorted(r.elapsed_s for r in reports)
    snapshot = progress_snapshot(reports[-1])  # what the worker writes into the record
    assert snapshot["percent"] == 100.0 and snapshot["iteration"] == STEPS


def test_trained_output_differs_from_its_input(full, cat):
    from worker.engine.feedforward import stylize_fast

    result, _reports, _checkpoints = full
    content = cat[::4, ::4]
    out = stylize_fast(result.model, content)
    assert out.shape == content.shape
    assert np.abs(out.astype(float) - content.astype(float)).mean() > 10


def test_any_input_size_after_training(full):
    from worker.engine.feedforward import stylize_fast

    result, _reports, _checkpoints = full
    odd = np.random.default_rng(0).integers(0, 256, size=(37, 50, 3), dtype=np.uint8)
    assert stylize_fast(result.model, odd).shape == (37, 50, 3)


def test_save_then_load_gives_identical_outputs(full, cat):
    from worker.engine.feedforward import model_from_bytes, model_to_bytes, stylize_fast

    result, _reports, _checkpoints = full
    loaded = model_from_bytes(model_to_bytes(result.model, key=b"k"), key=b"k")
    assert loaded.meta["trained_steps"] == STEPS
    assert stylize_fast(loaded, cat).tobytes() == stylize_fast(result.model, cat).tobytes()


def test_checkpoint_every_n_steps_not_after_the_last(full):
    _result, _reports, checkpoints = full
    assert [c.step for c in checkpoints] == [HALF]


def test_cancel_via_the_callback_stops_at_once(half):
    result, seen = half
    assert result.cancelled and result.metrics["cancelled"]
    assert result.state.step == HALF and result.metrics["steps_run"] == HALF
    assert [(step, total) for step, total, _preview in seen] == [(4, STEPS), (8, STEPS)]
    preview = seen[-1][2]
    assert preview.dtype == np.uint8 and preview.ndim == 3 and max(preview.shape[:2]) == PARAMS["size"]


def test_same_seed_gives_identical_weights(full, half):
    """The cancelled run stopped where the full run checkpointed: every weight, Adam moment and RNG state equal."""
    _result, _reports, checkpoints = full
    result, _seen = half
    assert all(np.array_equal(a, b) for a, b in zip(_weights(checkpoints[0]), _weights(result.state), strict=True))
    assert all(np.array_equal(a, b) for (_n, a), (_m, b) in zip(checkpoints[0].optimizer, result.state.optimizer,
                                                                strict=True))
    assert checkpoints[0].rng == result.state.rng


def test_resume_continues_the_step_count_and_matches_an_uninterrupted_run(full, resumed, cat):
    from worker.engine.feedforward import stylize_fast

    full_result, _reports, _checkpoints = full
    result, reports = resumed
    assert result.metrics["resumed_from"] == HALF and result.metrics["steps_run"] == STEPS - HALF
    assert [r.iteration for r in reports] == [12, 16]
    assert [h["step"] for h in result.metrics["history"]] == [4, 8, 12, 16]  # the curve continues
    assert reports[0].elapsed_s > result.metrics["history"][1]["elapsed_s"]  # elapsed includes the first run
    # Bit for bit on one machine and backend (deterministic CPU kernels, the same batches from the restored RNG).
    assert all(np.array_equal(a, b) for a, b in zip(_weights(full_result.state), _weights(result.state), strict=True))
    assert stylize_fast(result.model, cat).tobytes() == stylize_fast(full_result.model, cat).tobytes()


def test_a_checkpoint_of_another_training_is_refused(inputs, half):
    from worker.engine.trainer import train

    styles, contents = inputs
    result, _seen = half
    with pytest.raises(EngineError) as err:
        train(styles, contents, _params(width=0.25), resume=result.state)
    assert err.value.code == "bad_checkpoint" and "width" in err.value.message
    with pytest.raises(EngineError) as err:
        train(styles, contents[:1], _params(), resume=result.state)
    assert err.value.code == "bad_checkpoint" and "contents" in err.value.message


def test_a_training_state_is_not_a_model(half):
    from worker.engine.feedforward import model_from_bytes
    from worker.engine.trainer import TrainState

    result, _seen = half
    with pytest.raises(EngineError) as err:
        model_from_bytes(result.state.to_bytes())
    assert err.value.code == "model_format_unknown"
    with pytest.raises(EngineError) as err:
        TrainState.from_bytes(b"PK\x03\x04 a zip, say")
    assert err.value.code == "model_format_unknown"


def test_bad_params_are_param_errors():
    from worker.engine.trainer import TrainParams

    for changes in ({"steps": 0}, {"width": 100.0}, {"size": 8}, {"batch_size": 2.5}, {"preserve_color": "sepia"},
                    {"style_blend": [0, 0]}):
        with pytest.raises(ParamError):
            TrainParams(**changes)


def test_luminance_training_keeps_the_contents_colours(inputs, cat):
    from worker.engine import color
    from worker.engine.feedforward import model_from_bytes, model_to_bytes, stylize_fast
    from worker.engine.trainer import train

    styles, contents = inputs
    result = train(styles, contents, _params(steps=2, checkpoint_every=0, preserve_color="luminance"))
    model = model_from_bytes(model_to_bytes(result.model))
    assert model.preserve_color == "luminance"
    content = cat[::4, ::4]
    out = stylize_fast(model, content)
    chroma = lambda image: color.rgb_to_yiq(image.astype(np.float32))[..., 1:]  # noqa: E731
    assert np.median(np.abs(chroma(out) - chroma(content))) < 1.0
