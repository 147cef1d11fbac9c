"""The engine's ``WeightSource`` built from the settings object: the one place the worker side turns configuration
into where weights are looked for (the engine itself reads no environment).

- ``settings.weights_dir`` (``ATELIER_WEIGHTS_DIR``): the official Keras files, looked at first.
- The Keras cache, ``$KERAS_HOME/models`` (``~/.keras/models``), looked at second: ``KERAS_HOME`` is Keras' own
  variable, read here because Keras cannot be asked without importing it (and TensorFlow with it) in a worker's
  main process, which must never initialise TensorFlow before it forks.
- ``settings.cache_dir`` (``ATELIER_CACHE_DIR``, default ``~/.cache/atelier``): the converted VGG19 file.
- ``ATELIER_TEST_RANDOM_WEIGHTS=1``: the test-only switch (random weights for every backbone). It is read here, by
  the caller, and handed to the engine as ``WeightSource.random``; it is deliberately not a setting.

Pure Python (no TensorFlow): the worker's main process imports it to advertise its capabilities.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from shared.settings import Settings
from shared.weights import WeightSource

RANDOM_WEIGHTS_ENV = "ATELIER_TEST_RANDOM_WEIGHTS"


def random_weights_requested(environ: Mapping[str, str] | None = None) -> bool:
    environ = os.environ if environ is None else environ
    return environ.get(RANDOM_WEIGHTS_ENV, "") == "1"


def weight_source(settings: Settings, environ: Mapping[str, str] | None = None) -> WeightSource:
    """Where this process's engine finds weights, from ``settings`` (and Keras' ``KERAS_HOME``)."""
    environ = os.environ if environ is None else environ
    keras_home = Path(environ.get("KERAS_HOME") or Path.home() / ".keras")
    cache_dir = settings.cache_dir or str(Path.home() / ".cache" / "atelier")
    return WeightSource(
        weights_dir=settings.weights_dir,
        keras_models_dir=str(keras_home / "models"),
        cache_dir=cache_dir,
        random=random_weights_requested(environ),
    )
