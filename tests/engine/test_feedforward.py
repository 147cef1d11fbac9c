"""The fast-style network and its file format: any input size, deterministic builds, and a loader that refuses every
file the service did not write (no training here: see test_trainer.py)."""

from __future__ import annotations

import io
import json
import struct

import numpy as np
import pytest

from shared.errors import EngineError, ParamError

pytestmark = pytest.mark.slow

KEY = b"service-model-key"


@pytest.fixture(scope="module")
def model():
    from worker.engine.feedforward import FastStyleModel

    return FastStyleModel.new(width=0.125, residual_blocks=1, seed=3)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(37, 50, 3), dtype=np.uint8)


def test_johnson_width_one_has_johnsons_channels_and_size():
    from worker.engine import feedforward

    assert feedforward.channels(1.0) == (32, 64, 128)
    assert feedforward.channels(0.25) == (8, 16, 32)
    net = feedforward.build_network(1.0, 5)
    # Johnson's network has about 1.7M parameters (convolution biases before instance norm dropped here).
    assert 1.6e6 < net.count_params() < 1.8e6
    names = [layer.name for layer in net.layers]
    assert not any("transpose" in name for name in names)  # resize-then-convolve upsampling
    assert sum("_norm" in name for name in names) == 2 + 2 + 2 * 5 + 1  # instance norm after every inner conv


@pytest.mark.parametrize("shape", [(37, 50), (1, 1), (5, 7), (64, 48), (17, 3)])
def test_any_input_size_gives_the_same_size_in_0_255(model, shape):
    from worker.engine.feedforward import stylize_fast

    content = np.random.default_rng(1).integers(0, 256, size=(*shape, 3), dtype=np.uint8)
    out = stylize_fast(model, content)
    assert out.dtype == np.uint8 and out.shape == (*shape, 3)


def test_network_itself_pads_to_a_multiple_of_4_and_crops_back(model):
    from keras import ops

    x = np.random.default_rng(2).uniform(0, 255, size=(2, 37, 50, 3)).astype(np.float32)
    y = ops.convert_to_numpy(model.net(x))
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 255


def test_size_resizes_the_long_side(model, image):
    from worker.engine.feedforward import stylize_fast

    assert stylize_fast(model, image, size=25).shape == (18, 25, 3)


def test_equal_seeds_build_equal_networks_and_other_seeds_do_not(image):
    from worker.engine.feedforward import FastStyleModel, stylize_fast

    a, b, c = (FastStyleModel.new(0.125, 1, seed=s) for s in (5, 5, 6))
    assert stylize_fast(a, image).tobytes() == stylize_fast(b, image).tobytes()
    assert stylize_fast(a, image).tobytes() != stylize_fast(c, image).tobytes()


def test_preserve_color_luminance_keeps_the_contents_chroma(model, image):
    from worker.engine import color
    from worker.engine.feedforward import stylize_fast

    out = stylize_fast(model, image, preserve_color="luminance")
    chroma_out = color.rgb_to_yiq(out.astype(np.float32))[..., 1:]
    chroma_in = color.rgb_to_yiq(image.astype(np.float32))[..., 1:]
    # Equal up to uint8 rounding and the clip to 0-255 of colours the YIQ recombination pushes out of gamut.
    assert np.median(np.abs(chroma_out - chroma_in)) < 1.0
    with pytest.raises(ParamError):
        stylize_fast(model, image, preserve_color="sepia")


def test_bad_architecture_is_a_param_error():
    from worker.engine.feedforward import FastStyleModel

    with pytest.raises(ParamError) as err:
        FastStyleModel.new(width=10.0)
    assert err.value.field == "width"
    with pytest.raises(ParamError):
        FastStyleModel.new(residual_blocks=-1)


# --- the file format ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, KEY])
def test_save_then_load_gives_identical_outputs(model, image, key):
    from worker.engine.feedforward import model_from_bytes, model_to_bytes, stylize_fast

    model.meta = {"note": "test"}
    data = model_to_bytes(model, key=key)
    loaded = model_from_bytes(data, key=key)
    assert (loaded.width, loaded.residual_blocks, loaded.preserve_color) == (0.125, 1, "none")
    assert loaded.meta == {"note": "test"}
    assert stylize_fast(loaded, image).tobytes() == stylize_fast(model, image).tobytes()


def _refusal(data, key=None) -> str:
    from worker.engine.feedforward import model_from_bytes

    with pytest.raises(EngineError) as err:
        model_from_bytes(data, key=key)
    return err.value.code


def _split(data: bytes) -> tuple[dict, bytes]:
    """(header, tensor payload) of a file we wrote, for forging variants of it."""
    from worker.engine.feedforward import MAGIC, TAG_BYTES

    (length,) = struct.unpack("<I", data[len(MAGIC) : len(MAGIC) + 4])
    start = len(MAGIC) + 4
    return json.loads(data[start : start + length]), data[start + length : -TAG_BYTES]


def _forge(header: dict, payload: bytes) -> bytes:
    """A file with a correct SHA-256 tag around any header: what an attacker without the key can make."""
    import hashlib

    from worker.engine.feedforward import MAGIC

    head = json.dumps(header).encode()
    body = MAGIC + struct.pack("<I", len(head)) + head + payload
    return body + hashlib.sha256(body).digest()


def test_garbage_and_foreign_files_are_refused(model, tmp_path):

    assert _refusal(b"") == "model_format_unknown"
    assert _refusal(np.random.default_rng(0).bytes(4096)) == "model_format_unknown"
    assert _refusal("not bytes") == "model_format_unknown"
    # A weights archive of the very same network, in numpy's format: not ours, refused.
    buffer = io.BytesIO()
    np.savez(buffer, *[v.numpy() for v in model.net.weights])
    assert _refusal(buffer.getvalue()) == "model_format_unknown"
    # A Keras .keras file of the same network: refused too (we never hand outside bytes to Keras' loader).
    path = tmp_path / "net.keras"
    model.net.save(path)
    assert _refusal(path.read_bytes()) == "model_format_unknown"


def test_damaged_and_forged_files_are_refused(model):
    from worker.engine.feedforward import model_to_bytes

    data = model_to_bytes(model)
    assert _refusal(data[:-1]) == "model_corrupt"  # truncated
    assert _refusal(data[:20]) == "model_corrupt"
    flipped = bytearray(data)
    flipped[-100] ^= 1  # one bit of a weight
    assert _refusal(bytes(flipped)) == "model_corrupt"

    header, payload = _split(data)
    newer = dict(header, version=2)
    assert _refusal(_forge(newer, payload)) == "model_format_version"
    extra = dict(header, code="__import__('os')")
    assert _refusal(_forge(extra, payload)) == "model_corrupt"
    wider = dict(header, architecture=dict(header["architecture"], width=0.25))  # tensors no longer match
    assert _refusal(_forge(wider, payload)) == "model_corrupt"
    huge = dict(header, architecture=dict(header["architecture"], residual_blocks=10**6))
    assert _refusal(_forge(huge, payload)) == "model_corrupt"
    short = dict(header, tensors=header["tensors"][:-1])  # payload longer than declared
    assert _refusal(_forge(short, payload)) == "model_corrupt"
    other_format = dict(header, format="keras")
    assert _refusal(_forge(other_format, payload)) == "model_format_unknown"


def test_unchanged_forged_sha256_file_loads_without_key_but_never_with_one(model):
    """Without a key the tag is integrity only (anyone can recompute SHA-256); with a key only our HMAC passes."""
    from worker.engine.feedforward import model_from_bytes, model_to_bytes

    data = model_to_bytes(model)
    header, payload = _split(data)
    model_from_bytes(_forge(header, payload))  # loads: same header, same tensors
    assert _refusal(_forge(header, payload), key=KEY) == "model_signature"
    signed_header = dict(header, signature="hmac-sha256")
    assert _refusal(_forge(signed_header, payload), key=KEY) == "model_signature"


def test_keys_must_match(model):
    from worker.engine.feedforward import model_to_bytes

    signed = model_to_bytes(model, key=KEY)
    assert _refusal(signed, key=b"another key") == "model_signature"
    assert _refusal(signed, key=None) == "model_signature"
    assert _refusal(model_to_bytes(model), key=KEY) == "model_signature"


def test_nan_weights_are_refused(model):
    from worker.engine.feedforward import model_to_bytes

    header, payload = _split(model_to_bytes(model))
    nan = np.frombuffer(payload, "<f4").copy()
    nan[0] = np.nan
    assert _refusal(_forge(header, nan.tobytes())) == "model_corrupt"
