"""The engine on Keras' JAX backend, with the real VGG19 weights: it runs without TensorFlow, optimises, does not
recompile per job, and its loss and gradient match the TensorFlow backend's.

Keras fixes its backend per process when first imported and this process runs TensorFlow, so the JAX side runs
once in a subprocess (``engine_on_jax.py``, ``KERAS_BACKEND=jax``) and the tests read its report.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from engine_on_jax import PARAMS, ROOT, fixed_image, objective_at

pytestmark = pytest.mark.slow

HELPER = Path(__file__).with_name("engine_on_jax.py")
LOSS_RTOL = 1e-3  # float32 on both sides; convolutions differ only in summation order (oneDNN against XLA)
MIN_GRADIENT_COSINE = 0.999


def _env(keras_backend: str) -> dict[str, str]:
    env = dict(os.environ, KERAS_BACKEND=keras_backend, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("ATELIER_TEST_RANDOM_WEIGHTS", None)  # the real ImageNet weights, whatever the caller set
    return env


@pytest.fixture(scope="module")
def jax_run(tmp_path_factory, cat, starry_night) -> tuple[dict, np.ndarray, Path]:
    """The helper's report, its gradient at the fixed image, and the folder holding the inputs."""
    workdir = tmp_path_factory.mktemp("jax")
    np.save(workdir / "content.npy", cat)
    np.save(workdir / "style.npy", starry_night)
    np.save(workdir / "image.npy", fixed_image(cat, PARAMS["size"]))
    done = subprocess.run(
        [sys.executable, str(HELPER), str(workdir)],
        env=_env("jax"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((workdir / "report.json").read_text())
    return report, np.load(workdir / "gradient.npy"), workdir


def test_engine_on_jax_imports_no_tensorflow(jax_run):
    report, _gradient, _workdir = jax_run
    assert report["keras_backend"] == "jax"
    assert report["backend_module"] == "worker.engine.backend_jax"
    assert report["tensorflow_imported"] is False


def test_stylize_on_jax_with_imagenet_weights_lowers_the_loss(jax_run):
    report, _gradient, _workdir = jax_run
    metrics = report["first"]
    assert "imagenet" in metrics["weights"]
    assert metrics["iterations_run"] == PARAMS["iterations"]
    initial, final = metrics["losses"]["initial"], metrics["losses"]["final"]
    assert all(math.isfinite(value) for value in [*initial.values(), *final.values()])
    assert final["total"] < initial["total"]
    assert final["total"] == pytest.approx(final["content"] + final["style"] + final["tv"], rel=1e-5)


def test_second_job_of_the_same_size_on_jax_does_not_recompile(jax_run):
    report, _gradient, _workdir = jax_run
    assert report["first"]["trace_seconds"] > 0  # the first job compiled inside its first evaluation
    assert report["traces_after_second"] == report["traces_before_second"]
    assert report["second"]["trace_seconds"] == 0.0
    assert report["second"]["backbone_cached"] is True


def test_jax_objective_matches_tensorflow(jax_run, cat, starry_night):
    import keras

    from shared.params import StyleParams

    if keras.backend.backend() != "tensorflow":
        pytest.skip("the comparison needs this process on the TensorFlow backend")
    report, jax_gradient, workdir = jax_run
    image = np.load(workdir / "image.npy")  # the very image the JAX side was evaluated at
    tf_losses, tf_gradient = objective_at(image, cat, starry_night, StyleParams.from_mapping(PARAMS))
    np.testing.assert_allclose(report["objective_losses"], tf_losses, rtol=LOSS_RTOL)
    assert jax_gradient.shape == tf_gradient.shape and jax_gradient.dtype == np.float32
    cosine = float(np.vdot(jax_gradient, tf_gradient) / (np.linalg.norm(jax_gradient) * np.linalg.norm(tf_gradient)))
    assert cosine > MIN_GRADIENT_COSINE, f"gradients point {cosine:.6f} apart"


def test_an_unsupported_keras_backend_is_refused_with_the_allowed_ones():
    done = subprocess.run(
        [sys.executable, "-c", "import worker.engine"],
        env=_env("numpy"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "EngineError" in done.stderr and "'numpy'" in done.stderr
    assert "KERAS_BACKEND to one of: tensorflow, jax" in done.stderr


def test_optimize_video_mode_runs_on_jax_with_one_trace(jax_run):
    """Ruder's temporal term (worker/engine/video.py) on JAX: the warped target and mask are arguments of the one
    compiled step, so the frames after the first do not recompile, and the term is reported."""
    report, _gradient, _workdir = jax_run
    video = report["video"]
    assert video["frames"][0] == 3
    assert [frame["traced"] for frame in video["per_frame"][1:]] == [False, False]
    assert all(math.isfinite(frame["losses"]["temporal"]) for frame in video["per_frame"])
    assert video["per_frame"][1]["losses"]["temporal"] > 0
    assert math.isfinite(video["warping_error"])
