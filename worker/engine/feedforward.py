"""Fast styles: Johnson et al.'s image-transformation network, its file format, and one-pass stylization.

    net = build_network(width=1.0, residual_blocks=5, seed=0)     # a Keras model, RGB 0-255 in and out
    model = FastStyleModel(net, width=1.0, residual_blocks=5, preserve_color="none")
    data = model_to_bytes(model, key=None)                         # bytes the service stores
    model = model_from_bytes(data, key=None)                       # refuses bytes it did not write
    image = stylize_fast(model, content)                           # uint8 (H, W, 3), one forward pass
    out = stylize_batch(model, frames)                             # float32 (N, H, W, 3) 0-255, one pass

The network (Johnson, Alahi & Fei-Fei 2016, "Perceptual losses for real-time style transfer", supplementary
material, table 1), with the departures the literature since has settled on:

- a 9x9 convolution (32 channels), two stride-2 3x3 convolutions (64, 128), ``residual_blocks`` residual blocks of
  two 3x3 convolutions (128), two upsampling stages (64, 32) and a 9x9 convolution to RGB; channel counts are
  multiplied by ``width`` (1.0 is Johnson's 32/64/128).
- **Instance normalisation** (Ulyanov, Vedaldi & Lempitsky 2016, "Instance normalization: the missing ingredient
  for fast stylization") instead of batch normalisation: statistics per image and channel, learned scale and shift
  (Keras' ``GroupNormalization(groups=-1)``, which is exactly that). Johnson's batch norm makes one image's output
  depend on the rest of the batch and on running averages at test time; instance norm gives visibly better
  stylizations and the same function in training and inference.
- **Resize-then-convolve upsampling** (Odena, Dumoulin & Olah 2016, "Deconvolution and checkerboard artifacts"):
  nearest-neighbour 2x upsampling followed by a 3x3 convolution, instead of Johnson's fractionally-strided
  (transposed) convolutions, whose uneven kernel overlap paints a checkerboard into flat regions.
- **Reflection padding before every convolution** (as Ulyanov et al. and the later Johnson-style code do) instead
  of Johnson's one 40-pixel reflection pad of the input plus unpadded residual convolutions: the output has the
  input's size with no border to crop, and edges show no zero-padding halo.
- **Any input size.** The two stride-2 stages need a height and width divisible by 4, so the input is
  reflection-padded at the bottom and right up to the next multiple of 4 and the output cropped back to the input's
  size. The network itself needs a side of at least 5 px; ``stylize_fast`` edge-pads smaller images first.
- **No bias before a normalisation**: instance norm subtracts the per-channel mean, so such a bias is dead weight.
- **Output**: ``127.5 * (tanh(x) + 1)``, i.e. 0-255 (Johnson's "scaled tanh"). A bounded output keeps the loss
  network's input inside the range its ImageNet weights were trained on, so no clipping is needed and no gradient is
  lost to a clip; tanh rather than a sigmoid because it is the same curve (``255 * sigmoid(2x)``) with a gradient of
  1 at the centre, where a fresh network starts. Input is scaled to [-1, 1] inside the model.

File format (written and read only by this module; ``model_to_bytes`` / ``model_from_bytes``): no pickle, no Keras
deserialisation, no zip and no HDF5 from outside. The bytes are

    MAGIC (8 bytes) | header length (uint32, little endian) | header (UTF-8 JSON) | tensors | tag (32 bytes)

The header names the format and version, the kind of file (``model`` or ``train_state``), the architecture
(width, residual blocks), how to apply it (preserve_color), free metadata (training figures), and every tensor
(name, shape, dtype) in payload order. The tensors are raw little-endian arrays. The tag is HMAC-SHA256 of
everything before it under the caller's key, or, without a key, plain SHA-256 (integrity only). Loading checks, in
order: size limits, magic, header JSON and a strict schema (known keys only, bounded numbers), version, kind, tag
(``hmac.compare_digest``), that the payload length is exactly what the header declares, and that the tensor list is
exactly the one our own ``build_network`` produces for that architecture; the network is then rebuilt from our code
and the arrays assigned. A signed file needs the key, and a loader given a key refuses unsigned files, so a
service configured with a key loads only what it wrote itself. Each refusal is an ``EngineError`` with its own code
(see ``REFUSAL_CODES``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
from keras import layers, ops

from shared import params, train_params
from shared.errors import EngineError, ParamError
from worker.engine import color, images

# Johnson's channel counts at width 1.0: the first 9x9 convolution, then each stride-2 stage.
BASE_CHANNELS = (32, 64, 128)
# Architecture bounds live with the training parameters the API validates (shared/train_params.py).
DEFAULT_RESIDUAL_BLOCKS, MIN_WIDTH, MAX_WIDTH, MAX_RESIDUAL_BLOCKS = (
    train_params.DEFAULT_RESIDUAL_BLOCKS, train_params.MIN_WIDTH, train_params.MAX_WIDTH,
    train_params.MAX_RESIDUAL_BLOCKS)
DOWNSAMPLE = 4  # two stride-2 stages
MIN_NET_SIDE_PX = 5  # the first 9x9 convolution reflects 4 px, which needs 5 px after padding to a multiple of 4
MIN_APPLY_SIDE_PX = 16  # stylize_fast edge-pads smaller images up to this
PRESERVE_COLORS = params.PRESERVE_COLORS
OUTPUT_ACTIVATION = "tanh"

# --- file format constants -------------------------------------------------------------------------------------
MAGIC = b"ATLRFS\x00\x01"  # 8 bytes: "Atelier fast style", a NUL so no text file starts with it, a format byte
FORMAT_NAME = "atelier.fast_style"
FORMAT_VERSION = 1
KINDS = ("model", "train_state")
TAG_BYTES = 32
MAX_HEADER_BYTES = 1 << 20  # 1 MiB of JSON: a loss curve of thousands of points fits
MAX_TENSORS = 4096
MAX_FILE_BYTES = 1 << 30  # 1 GiB: a width-4 network with Adam state is well under 200 MB
DTYPES = {"float32": np.dtype("<f4"), "int64": np.dtype("<i8")}
SIGNATURES = ("hmac-sha256", "sha256")
HEADER_KEYS = {"format", "version", "kind", "signature", "architecture", "apply", "meta", "tensors"}
REFUSAL_CODES = {
    "model_format_unknown": "not a file this service wrote (no Atelier magic, not our format name, or another kind)",
    "model_format_version": "our format, a version this code does not read",
    "model_corrupt": "our magic, but the header, lengths, digest or tensor list are wrong",
    "model_signature": "signed with another key, signed when no key was given, or unsigned when a key was given",
}


# --- layers ----------------------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="atelier")
class ReflectionPad2D(layers.Layer):
    """Reflection padding of ``pad`` pixels on every side of an NHWC tensor."""

    def __init__(self, pad: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pad = int(pad)

    def call(self, x):
        p = self.pad
        return ops.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode="reflect")

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        grow = lambda side: None if side is None else side + 2 * self.pad  # noqa: E731
        return (n, grow(h), grow(w), c)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "pad": self.pad}


@keras.saving.register_keras_serializable(package="atelier")
class PadToMultiple(layers.Layer):
    """Reflection-pads the bottom and right of an NHWC tensor up to the next multiple of ``multiple``."""

    def __init__(self, multiple: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.multiple = int(multiple)

    def call(self, x):
        shape = ops.shape(x)
        pad_h = (-shape[1]) % self.multiple
        pad_w = (-shape[2]) % self.multiple
        return ops.pad(x, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]], mode="reflect")

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        up = lambda side: None if side is None else -(-side // self.multiple) * self.multiple  # noqa: E731
        return (n, up(h), up(w), c)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "multiple": self.multiple}


@keras.saving.register_keras_serializable(package="atelier")
class CropToReference(layers.Layer):
    """``[x, reference]`` -> ``x`` cropped to the reference's height and width (top-left kept)."""

    def call(self, inputs):
        x, reference = inputs
        shape = ops.shape(reference)
        return x[:, : shape[1], : shape[2], :]

    def compute_output_shape(self, input_shapes):
        x_shape, ref_shape = input_shapes
        return (x_shape[0], ref_shape[1], ref_shape[2], x_shape[3])


def channels(width: float) -> tuple[int, int, int]:
    """Channel counts of the three stages for a width multiplier (at least 1 each)."""
    return tuple(max(1, round(base * width)) for base in BASE_CHANNELS)  # type: ignore[return-value]


def check_architecture(width: Any, residual_blocks: Any) -> tuple[float, int]:
    """``(width, residual_blocks)`` as numbers in bounds, or ``ParamError`` naming what is allowed."""
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not math.isfinite(width):
        raise ParamError("param_out_of_range", f"width={width!r} is not a number", field="width")
    if not MIN_WIDTH <= width <= MAX_WIDTH:
        raise ParamError(
            "param_out_of_range", f"width={width!r} is not allowed; expected {MIN_WIDTH:g} to {MAX_WIDTH:g}",
            field="width",
        )
    if isinstance(residual_blocks, bool) or not isinstance(residual_blocks, int):
        raise ParamError("param_out_of_range", f"residual_blocks={residual_blocks!r} is not an integer",
                         field="residual_blocks")
    if not 0 <= residual_blocks <= MAX_RESIDUAL_BLOCKS:
        raise ParamError(
            "param_out_of_range",
            f"residual_blocks={residual_blocks!r} is not allowed; expected 0 to {MAX_RESIDUAL_BLOCKS}",
            field="residual_blocks",
        )
    return float(width), int(residual_blocks)


def build_network(width: float = 1.0, residual_blocks: int = DEFAULT_RESIDUAL_BLOCKS, seed: int = 0) -> keras.Model:
    """The transformation network: float RGB 0-255 ``(N, H, W, 3)`` of any size >= 5 px -> RGB 0-255, same size.

    Every layer is named, so weight names (``variable.path``) are the same in every build, which the file format
    relies on. Kernels are Glorot-uniform with seeds derived from ``seed``: equal seeds give equal networks."""
    width, residual_blocks = check_architecture(width, residual_blocks)
    c1, c2, c3 = channels(width)
    seeds = iter(range(seed * 1000, seed * 1000 + 1000))

    def conv(x, filters: int, kernel: int, name: str, stride: int = 1, norm: bool = True, relu: bool = True):
        x = ReflectionPad2D(kernel // 2, name=f"{name}_pad")(x)
        x = layers.Conv2D(
            filters, kernel, strides=stride, padding="valid", use_bias=not norm,
            kernel_initializer=keras.initializers.GlorotUniform(seed=next(seeds)), name=f"{name}_conv",
        )(x)
        if norm:
            x = layers.GroupNormalization(groups=-1, epsilon=1e-5, name=f"{name}_norm")(x)
        if relu:
            x = layers.ReLU(name=f"{name}_relu")(x)
        return x

    image = keras.Input((None, None, 3), name="image")
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name="in_scale")(image)
    padded = PadToMultiple(DOWNSAMPLE, name="pad_to_4")(x)
    x = conv(padded, c1, 9, "c1")
    x = conv(x, c2, 3, "down1", stride=2)
    x = conv(x, c3, 3, "down2", stride=2)
    for i in range(1, residual_blocks + 1):
        # Johnson's residual block (He et al. 2016 as modified by Gross & Wilber): conv-norm-relu-conv-norm + x.
        y = conv(x, c3, 3, f"res{i}_a")
        y = conv(y, c3, 3, f"res{i}_b", relu=False)
        x = layers.Add(name=f"res{i}_add")([x, y])
    for i, filters in ((1, c2), (2, c1)):
        x = layers.UpSampling2D(2, interpolation="nearest", name=f"up{i}_resize")(x)
        x = conv(x, filters, 3, f"up{i}")
    x = conv(x, 3, 9, "out", norm=False, relu=False)
    x = CropToReference(name="crop")([x, image])
    x = layers.Activation(OUTPUT_ACTIVATION, name="out_tanh")(x)
    out = layers.Rescaling(127.5, offset=127.5, name="out_scale")(x)
    return keras.Model(image, out, name=f"johnson_w{width:g}_r{residual_blocks}")


@dataclass
class FastStyleModel:
    """A trained (or fresh) network plus what applying it needs: how it treats colour, and free metadata."""

    net: keras.Model
    width: float
    residual_blocks: int
    preserve_color: str = "none"  # how it was trained: "luminance" models see and make luminance only
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def new(
        cls, width: float = 1.0, residual_blocks: int = DEFAULT_RESIDUAL_BLOCKS, seed: int = 0,
        preserve_color: str = "none",
    ) -> FastStyleModel:
        if preserve_color not in PRESERVE_COLORS:
            raise ParamError("param_out_of_range", f"preserve_color={preserve_color!r}; allowed: "
                             + ", ".join(PRESERVE_COLORS), field="preserve_color")
        width, residual_blocks = check_architecture(width, residual_blocks)
        return cls(build_network(width, residual_blocks, seed), width, residual_blocks, preserve_color)

    def architecture(self) -> dict[str, Any]:
        return {"width": self.width, "residual_blocks": self.residual_blocks, "output": OUTPUT_ACTIVATION}


# --- applying a model ------------------------------------------------------------------------------------------


def stylize_fast(
    model: FastStyleModel, content: np.ndarray, *, preserve_color: str | None = None, size: int | None = None
) -> np.ndarray:
    """One forward pass: ``content`` uint8 RGB ``(H, W, 3)`` -> uint8 RGB of the same size (or long side ``size``).

    ``preserve_color`` (default: the mode the model was trained with): ``luminance`` keeps the content's colours
    exactly (the output's luminance with the content's chroma, YIQ); ``histogram`` moves the output's colour mean and
    covariance onto the content's (a cheap after-the-fact version of Gatys et al. 2017's colour matching: a
    feed-forward network cannot adapt its style to each content's palette before training); ``none`` returns the
    network's colours. A model trained with ``luminance`` always receives the content's luminance, as in training.
    """
    mode = _apply_mode(model, preserve_color)
    content = images.check_image(content, "content")
    rgb = content.astype(np.float32)
    if size is not None:
        rgb = images.resize(content, images.scaled_shape(content.shape, int(size)))
    return images.to_uint8(stylize_batch(model, rgb[None], preserve_color=mode)[0])


def stylize_batch(model: FastStyleModel, batch: np.ndarray, *, preserve_color: str | None = None) -> np.ndarray:
    """``stylize_fast`` on float32 RGB 0-255 ``(N, H, W, 3)`` already at the size wanted, in one forward pass:
    float32 0-255 out (not rounded, so a caller that keeps computing, e.g. the video blend, loses nothing)."""
    mode = _apply_mode(model, preserve_color)
    batch = np.asarray(batch, np.float32)
    network_input = color.luminance_as_rgb(batch) if model.preserve_color == "luminance" else batch
    out = forward(model.net, network_input)
    if mode == "luminance":
        out = color.recombine_luminance(out, batch)  # per pixel, so the whole batch at once
    elif mode == "histogram":  # per image: each frame's own colour statistics
        out = np.stack([color.match_color_histogram(o, rgb) for o, rgb in zip(out, batch, strict=True)])
    return out.astype(np.float32)


def _apply_mode(model: FastStyleModel, preserve_color: str | None) -> str:
    mode = model.preserve_color if preserve_color is None else preserve_color
    if mode not in PRESERVE_COLORS:
        raise ParamError("param_out_of_range", f"preserve_color={mode!r}; allowed: " + ", ".join(PRESERVE_COLORS),
                         field="preserve_color")
    return mode


def forward(net: keras.Model, batch: np.ndarray) -> np.ndarray:
    """The network on float32 RGB 0-255 ``(N, H, W, 3)`` of any size, through Keras' compiled predict function
    (``tf.function`` or ``jax.jit``, traced once per input shape). Images with a side under ``MIN_APPLY_SIDE_PX``
    are edge-padded first and cropped back, so even a 1x1 image works."""
    batch = np.asarray(batch, np.float32)
    height, width = batch.shape[1:3]
    pad_h, pad_w = max(0, MIN_APPLY_SIDE_PX - height), max(0, MIN_APPLY_SIDE_PX - width)
    if pad_h or pad_w:
        batch = np.pad(batch, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    out = ops.convert_to_numpy(net.predict_on_batch(batch))
    return out[:, :height, :width, :].astype(np.float32)


# --- file format -----------------------------------------------------------------------------------------------


def model_to_bytes(model: FastStyleModel, *, key: bytes | None = None) -> bytes:
    """The model as bytes in our format, signed with HMAC-SHA256 under ``key`` (or SHA-256 only without one)."""
    arrays = [(v.path, v.numpy()) for v in model.net.weights]
    return pack("model", arrays, architecture=model.architecture(),
                apply={"preserve_color": model.preserve_color}, meta=model.meta, key=key)


def model_from_bytes(data: bytes, *, key: bytes | None = None) -> FastStyleModel:
    """A model from bytes ``model_to_bytes`` wrote; anything else raises ``EngineError`` (``REFUSAL_CODES``)."""
    header, arrays = unpack(data, "model", key=key)
    model = FastStyleModel.new(**_architecture_args(header), preserve_color=header["apply"]["preserve_color"])
    model.meta = header["meta"]
    assign_weights(model.net.weights, arrays, "model")
    return model


def assign_weights(variables: Sequence[Any], arrays: Sequence[tuple[str, np.ndarray]], what: str) -> None:
    """Assign ``arrays`` (name, array) to ``variables`` after checking that names and shapes match one to one."""
    expected = [(v.path, tuple(v.shape)) for v in variables]
    found = [(name, tuple(array.shape)) for name, array in arrays]
    if expected != found:
        raise EngineError("model_corrupt", f"the {what}'s tensors are not those of the architecture its header names "
                          f"(expected {len(expected)} tensors, found {len(found)})")
    for variable, (_name, array) in zip(variables, arrays, strict=True):
        variable.assign(array)


def _architecture_args(header: Mapping[str, Any]) -> dict[str, Any]:
    arch = header["architecture"]
    try:
        width, blocks = check_architecture(arch["width"], arch["residual_blocks"])
    except ParamError as exc:
        raise EngineError("model_corrupt", f"architecture out of bounds: {exc.message}") from None
    return {"width": width, "residual_blocks": blocks}


def pack(
    kind: str,
    arrays: Sequence[tuple[str, np.ndarray]],
    *,
    architecture: Mapping[str, Any],
    apply: Mapping[str, Any],
    meta: Mapping[str, Any],
    key: bytes | None,
) -> bytes:
    """Our container: magic, header, raw tensors, tag. ``meta`` must be JSON (``allow_nan`` off: it must parse
    anywhere)."""
    tensors, chunks = [], []
    for name, array in arrays:
        array = np.asarray(array)
        dtype = "int64" if np.issubdtype(array.dtype, np.integer) else "float32"
        chunks.append(np.ascontiguousarray(array, DTYPES[dtype]).tobytes())
        tensors.append([name, list(array.shape), dtype])
    header = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "kind": kind,
        "signature": "hmac-sha256" if key else "sha256",
        "architecture": dict(architecture),
        "apply": dict(apply),
        "meta": dict(meta),
        "tensors": tensors,
    }
    header_bytes = json.dumps(header, allow_nan=False, separators=(",", ":")).encode()
    if len(header_bytes) > MAX_HEADER_BYTES:
        raise EngineError("engine_error", f"model header is {len(header_bytes)} bytes; at most {MAX_HEADER_BYTES}")
    body = MAGIC + struct.pack("<I", len(header_bytes)) + header_bytes + b"".join(chunks)
    return body + _tag(body, key)


def _tag(body: bytes, key: bytes | None) -> bytes:
    if key:
        return hmac.new(key, body, hashlib.sha256).digest()
    return hashlib.sha256(body).digest()


def unpack(data: bytes, kind: str, *, key: bytes | None) -> tuple[dict[str, Any], list[tuple[str, np.ndarray]]]:
    """Header and tensors of a file ``pack`` wrote, after every check in the module docstring."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise EngineError("model_format_unknown", f"model data must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > MAX_FILE_BYTES:
        raise EngineError("model_corrupt", f"file is {len(data)} bytes; at most {MAX_FILE_BYTES}")
    if not data.startswith(MAGIC):
        raise EngineError("model_format_unknown", "not an Atelier fast-style file (wrong magic bytes); the service "
                          "loads only files it wrote itself")
    fixed = len(MAGIC) + 4
    if len(data) < fixed + TAG_BYTES:
        raise EngineError("model_corrupt", "file is truncated")
    (header_len,) = struct.unpack("<I", data[len(MAGIC) : fixed])
    if header_len > MAX_HEADER_BYTES or fixed + header_len + TAG_BYTES > len(data):
        raise EngineError("model_corrupt", f"header length {header_len} does not fit the file")
    try:
        header = json.loads(data[fixed : fixed + header_len].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise EngineError("model_corrupt", "header is not JSON") from None
    _check_header(header, kind)

    body, tag = data[:-TAG_BYTES], data[-TAG_BYTES:]
    if header["signature"] == "hmac-sha256" and not key:
        raise EngineError("model_signature", "the file is signed; loading it needs the service's model key")
    if header["signature"] == "sha256" and key:
        raise EngineError("model_signature", "the file is not signed, and this service loads only files signed with "
                          "its model key")
    if not hmac.compare_digest(tag, _tag(body, key)):
        if key:
            raise EngineError("model_signature", "signature does not match: not written by this service, or altered")
        raise EngineError("model_corrupt", "SHA-256 digest does not match: the file is damaged or altered")

    payload = memoryview(body)[fixed + header_len :]
    sizes = [math.prod(shape) * DTYPES[dtype].itemsize for _n, shape, dtype in header["tensors"]]
    if sum(sizes) != len(payload):
        raise EngineError("model_corrupt", f"payload is {len(payload)} bytes; the header declares {sum(sizes)}")
    arrays, offset = [], 0
    for (name, shape, dtype), size in zip(header["tensors"], sizes, strict=True):
        array = np.frombuffer(payload[offset : offset + size], dtype=DTYPES[dtype]).reshape(shape).copy()
        if dtype == "float32" and not np.isfinite(array).all():
            raise EngineError("model_corrupt", f"tensor {name!r} holds NaN or infinite values")
        arrays.append((name, array))
        offset += size
    return header, arrays


def _check_header(header: Any, kind: str) -> None:
    """Strict schema: exactly our keys, our format name, a version we read, the expected kind, bounded tensors."""
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise EngineError("model_format_unknown", "header does not name the Atelier fast-style format")
    if header.get("version") != FORMAT_VERSION:
        raise EngineError("model_format_version", f"format version {header.get('version')!r}; this service reads "
                          f"version {FORMAT_VERSION}")
    if set(header) != HEADER_KEYS:
        raise EngineError("model_corrupt", "header keys are " + ", ".join(sorted(map(str, header)))
                          + "; expected " + ", ".join(sorted(HEADER_KEYS)))
    if header["kind"] != kind:
        raise EngineError("model_format_unknown", f"the file is a {header['kind']!r}, not a {kind!r}")
    if header["signature"] not in SIGNATURES:
        raise EngineError("model_corrupt", f"unknown signature scheme {header['signature']!r}")
    arch, apply = header["architecture"], header["apply"]
    if not isinstance(arch, dict) or set(arch) != {"width", "residual_blocks", "output"}:
        raise EngineError("model_corrupt", "architecture must give width, residual_blocks and output")
    if arch["output"] != OUTPUT_ACTIVATION:
        raise EngineError("model_corrupt", f"output activation {arch['output']!r}; this code builds "
                          f"{OUTPUT_ACTIVATION!r}")
    if not isinstance(apply, dict) or set(apply) != {"preserve_color"} \
            or apply["preserve_color"] not in PRESERVE_COLORS:
        raise EngineError("model_corrupt", "apply must give preserve_color, one of " + ", ".join(PRESERVE_COLORS))
    if not isinstance(header["meta"], dict):
        raise EngineError("model_corrupt", "meta must be an object")
    tensors = header["tensors"]
    if not isinstance(tensors, list) or len(tensors) > MAX_TENSORS:
        raise EngineError("model_corrupt", f"tensors must be a list of at most {MAX_TENSORS}")
    total = 0
    for entry in tensors:
        ok = (
            isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str) and len(entry[0]) <= 256
            and isinstance(entry[1], list) and len(entry[1]) <= 8
            and all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 1 << 28 for d in entry[1])
            and entry[2] in DTYPES
        )
        if not ok:
            raise EngineError("model_corrupt", f"bad tensor entry {str(entry)[:80]}")
        total += math.prod(entry[1]) * DTYPES[entry[2]].itemsize
        if total > MAX_FILE_BYTES:
            raise EngineError("model_corrupt", "tensors declare more bytes than any file we write")
