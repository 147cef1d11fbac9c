"""Xception and EfficientNetB7: build and run two iterations (random weights: the official files are not
obtainable here), and a clear error when their weights file is missing."""

from __future__ import annotations

import numpy as np
import pytest

from shared.errors import WeightsMissing
from shared.params import StyleParams

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("backbone", ["xception", "efficientnetb7"])
def test_backbone_builds_and_runs_two_iterations_with_random_weights(backbone, random_weights, cat, starry_night):
    from worker.engine import stylize
    from worker.engine.backbones import DEFAULT_LAYERS

    result = stylize(cat, [starry_night], StyleParams(size=32, iterations=2, backbone=backbone))
    metrics = result.metrics
    assert metrics["weights"] == "random (test only)"
    assert metrics["backbone"] == backbone and metrics["iterations_run"] == 2
    assert list(metrics["style_layers"]) == [name for name, _w in DEFAULT_LAYERS[backbone]["style"]]
    assert np.isfinite(metrics["losses"]["final"]["total"])
    assert max(result.image.shape[:2]) == 32


@pytest.mark.parametrize(
    ("backbone", "filename"),
    [
        ("xception", "xception_weights_tf_dim_ordering_tf_kernels_notop.h5"),
        ("efficientnetb7", "efficientnetb7_notop.h5"),
    ],
)
def test_missing_official_weights_name_the_file_and_the_place(backbone, filename, tmp_path, monkeypatch, cat):
    from worker.engine import stylize

    monkeypatch.delenv("ATELIER_TEST_RANDOM_WEIGHTS", raising=False)
    monkeypatch.setenv("ATELIER_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    with pytest.raises(WeightsMissing) as caught:
        stylize(cat, [cat], StyleParams(size=32, iterations=1, backbone=backbone))
    assert filename in caught.value.message
    assert "ATELIER_WEIGHTS_DIR" in caught.value.message and str(tmp_path / "weights") in caught.value.message
