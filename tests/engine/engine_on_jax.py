"""The JAX side of tests/engine/test_backend_jax.py, run as a script in a fresh process with ``KERAS_BACKEND=jax``
(Keras fixes its backend when it is first imported, and the test process runs TensorFlow).

    KERAS_BACKEND=jax python tests/engine/engine_on_jax.py WORKDIR

WORKDIR holds ``content.npy``, ``style.npy`` (uint8 RGB) and ``image.npy`` (float32, the output shape of
``PARAMS``); the script stylizes twice, evaluates the objective at ``image`` and writes ``report.json`` and
``gradient.npy`` there. ``fixed_image`` and ``objective_at`` are shared with the test so both backends get the
very same inputs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
# Small and short (2 cores, shared machine); float32 on both sides so the backends are compared like for like.
PARAMS = {"size": 40, "iterations": 3, "progress_every": 3, "precision": "float32"}
NOISE_STD = 20.0  # 0-255 units: the fixed image is the content plus visible noise, so every loss term is non-zero


def fixed_image(content: np.ndarray, size_px: int) -> np.ndarray:
    """float32 content at the output size plus seeded noise: a point where content, style and TV all have a
    gradient."""
    from worker.engine import images

    resized = images.resize(content, images.scaled_shape(content.shape, size_px))
    noise = np.random.default_rng(0).normal(0.0, NOISE_STD, size=resized.shape)
    return np.clip(resized + noise, 0, 255).astype(np.float32)


def objective_at(image: np.ndarray, content: np.ndarray, style: np.ndarray, params) -> tuple[np.ndarray, np.ndarray]:
    """The engine's own objective for (content, style, params) evaluated at ``image``: ``(losses[4], gradient)``.
    Uses the engine's internals on purpose: this is exactly what ``stylize`` optimises."""
    from worker.engine import engine

    job = engine._prepare(content, [style], params)
    return engine._objective(job, engine._style_grams(job))(image)


def video_on_jax(content: np.ndarray, style: np.ndarray, params) -> dict:
    """The optimize video mode (worker/engine/video.py) on 3 frames of a 2 px pan: its temporal step traces once."""
    from worker.engine.video import stylize_frames

    frames = np.stack([np.ascontiguousarray(np.roll(content, 2 * k, axis=1)) for k in range(3)])
    result = stylize_frames(frames, [style], params, temporal_weight=1.0, later_iterations=3)
    return {"frames": list(result.frames.shape), "per_frame": result.metrics["per_frame"],
            "warping_error": result.metrics["warping_error"]}


def main(workdir: Path) -> None:
    import keras

    from shared.params import StyleParams
    from worker.engine import engine, stylize

    content, style, image = (np.load(workdir / f"{name}.npy") for name in ("content", "style", "image"))
    params = StyleParams.from_mapping(PARAMS)
    first = stylize(content, [style], params)
    traces_before = engine.backend.tracing_counts()
    # Another content of the same shape and other loss weights: the compiled programs must serve it unchanged.
    second = stylize(np.ascontiguousarray(content[:, ::-1]), [style], params.replace(content_weight=2.0))
    traces_after = engine.backend.tracing_counts()
    losses, gradient = objective_at(image, content, style, params)
    video = video_on_jax(content, style, params)
    np.save(workdir / "gradient.npy", gradient)
    report = {
        "keras_backend": keras.backend.backend(),
        "backend_module": engine.backend.__name__,
        "first": first.metrics,
        "second": second.metrics,
        "traces_before_second": traces_before,
        "traces_after_second": traces_after,
        "objective_losses": losses.tolist(),
        "tensorflow_imported": "tensorflow" in sys.modules,
        "video": video,
    }
    (workdir / "report.json").write_text(json.dumps(report))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))  # run as a script: make `shared` and `worker` importable from the checkout
    main(Path(sys.argv[1]))
