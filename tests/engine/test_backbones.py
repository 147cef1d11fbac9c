"""Xception and EfficientNetB7: build and run two iterations (random weights: the official files are not
obtainable here), and a clear error when their weights file is missing."""

from __future__ import annotations

import numpy as np
import pytest

from shared.errors import WeightsMissing
from shared.params import StyleParams


@pytest.mark.slow
def test_xception_builds_and_runs_two_iterations_with_random_weights(random_weights, cat, starry_night):
    from worker.engine import stylize
    from worker.engine.backbones import DEFAULT_LAYERS

    result = stylize(cat, [starry_night], StyleParams(size=32, iterations=2, backbone="xception"),
                     weights=random_weights)
    metrics = result.metrics
    assert metrics["weights"] == "random (test only)"
    assert metrics["backbone"] == "xception" and metrics["iterations_run"] == 2
    assert list(metrics["style_layers"]) == [name for name, _w in DEFAULT_LAYERS["xception"]["style"]]
    assert np.isfinite(metrics["losses"]["final"]["total"])
    assert max(result.image.shape[:2]) == 32


@pytest.mark.slow
def test_efficientnetb7_builds_and_runs_two_iterations_with_random_weights(random_weights, cat, starry_night):
    """EfficientNetB7 has 813 layers: building it takes ~10 s here and tracing the gradient to its default
    deepest layer (block5a, ~400 layers) about a minute on 2 cores. So the defaults are checked by name on the
    built network, and the two iterations run through its first two stages."""
    from worker.engine import stylize
    from worker.engine.backbones import DEFAULT_LAYERS, get_backbone

    backbone, _cached = get_backbone("efficientnetb7", "max", "float32", random_weights)
    defaults = [name for kind in ("content", "style") for name, _w in DEFAULT_LAYERS["efficientnetb7"][kind]]
    assert set(defaults) <= set(backbone.layer_names)
    params = StyleParams.from_mapping(
        {
            "size": 32,
            "iterations": 2,
            "backbone": "efficientnetb7",
            "content_layers": ["block2a_expand_activation"],
            "style_layers": ["stem_activation", "block2a_expand_activation"],
        }
    )
    result = stylize(cat, [starry_night], params, weights=random_weights)
    metrics = result.metrics
    assert metrics["weights"] == "random (test only)" and metrics["backbone_cached"] is True
    assert metrics["iterations_run"] == 2 and np.isfinite(metrics["losses"]["final"]["total"])
    assert max(result.image.shape[:2]) == 32


@pytest.mark.slow
@pytest.mark.parametrize(
    ("backbone", "filename"),
    [
        ("xception", "xception_weights_tf_dim_ordering_tf_kernels_notop.h5"),
        ("efficientnetb7", "efficientnetb7_notop.h5"),
    ],
)
def test_missing_official_weights_name_the_file_and_the_place(backbone, filename, tmp_path, cat):
    from shared.weights import WeightSource
    from worker.engine import stylize

    source = WeightSource(weights_dir=str(tmp_path / "weights"), keras_models_dir=str(tmp_path / "keras" / "models"))
    with pytest.raises(WeightsMissing) as caught:
        stylize(cat, [cat], StyleParams(size=32, iterations=1, backbone=backbone), weights=source)
    assert filename in caught.value.message
    assert "ATELIER_WEIGHTS_DIR" in caught.value.message and str(tmp_path / "weights") in caught.value.message


@pytest.mark.slow
def test_bfloat16_clone_keeps_weights_and_derived_state():
    """The bfloat16 copy of a network computes what the float32 one does (EfficientNet's Normalization layer
    derives its mean and variance from its variables: a plain weight copy is not enough)."""
    import keras

    from worker.engine.backbones import _with_policy

    inputs = keras.Input((None, None, 3))
    norm = keras.layers.Normalization(axis=-1)
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(norm(inputs))
    model = keras.Model(inputs, x)
    norm.adapt(np.random.default_rng(0).normal([10.0, 20.0, 30.0], [1.0, 2.0, 3.0], (64, 4, 4, 3)))
    clone = _with_policy(model, "mixed_bfloat16")
    assert clone.get_layer("conv").dtype_policy.name == "mixed_bfloat16"
    image = np.random.default_rng(1).normal([10.0, 20.0, 30.0], [1.0, 2.0, 3.0], (1, 5, 5, 3)).astype(np.float32)
    expected = np.asarray(model(image))
    got = np.asarray(keras.ops.cast(clone(image), "float32"))
    np.testing.assert_allclose(got, expected, atol=0.05 * np.abs(expected).max())


def test_official_weights_are_found_in_the_weights_dir_then_the_keras_cache(tmp_path):
    from shared.weights import OFFICIAL_FILES, WeightSource, official_weights_path, weights_present

    weights_dir, keras_home = tmp_path / "weights", tmp_path / "keras"
    (keras_home / "models").mkdir(parents=True)
    weights_dir.mkdir()
    source = WeightSource(weights_dir=str(weights_dir), keras_models_dir=str(keras_home / "models"))
    filename = OFFICIAL_FILES["xception"]
    assert not weights_present("xception", source)
    (keras_home / "models" / filename).write_bytes(b"h5")
    assert official_weights_path("xception", source) == keras_home / "models" / filename
    (weights_dir / filename).write_bytes(b"h5")
    assert official_weights_path("xception", source) == weights_dir / filename
    assert weights_present("xception", source) and not weights_present("efficientnetb7", source)


def test_the_worker_builds_its_weight_source_from_the_settings_object(tmp_path):
    """The engine reads no environment; the worker turns its settings (and Keras' KERAS_HOME) into a WeightSource,
    and the test-only switch is read there, by the caller."""
    from shared.settings import Settings
    from worker.weights_config import weight_source

    settings = Settings.from_env({"ATELIER_WEIGHTS_DIR": str(tmp_path / "w"), "ATELIER_CACHE_DIR": str(tmp_path / "c")})
    source = weight_source(settings, {"KERAS_HOME": str(tmp_path / "k")})
    assert source.weights_dir == str(tmp_path / "w") and source.cache_dir == str(tmp_path / "c")
    assert source.keras_models_dir == str(tmp_path / "k" / "models") and source.random is False
    assert weight_source(settings, {"ATELIER_TEST_RANDOM_WEIGHTS": "1"}).random is True
