"""The built-in training set for fast-style networks: the photos in ``data/training/`` as arrays.

Used when a user trains a style without giving training images, and as test data. The photos come from packages
of PyPI and Debian, each with its licence recorded in ``data/training/SOURCES.md`` (built by
``bench/make_training_set.py``). Reading files is the service's job: the engine takes the arrays this returns and
never sees a path.

The folder is found next to the sources (``<repository>/data/training``), which is right for a checkout and for the
editable install the project uses; when that is missing (an installed wheel does not carry ``data/``), a
``data/training`` under the current directory is tried, as ``atelier demo`` does for ``examples/``. The package
folder is tried first, unlike ``demo``, so that a current directory with an unrelated ``data/`` cannot shadow it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

TRAINING_SUFFIXES = (".jpg", ".jpeg", ".png")
_RELATIVE_DIR = Path("data") / "training"


def builtin_training_dir() -> Path:
    """The folder of the built-in training photos; ``FileNotFoundError`` naming the places looked in when absent."""
    candidates = (Path(__file__).resolve().parents[1] / _RELATIVE_DIR, Path.cwd() / _RELATIVE_DIR)
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        "the built-in training set was not found in " + " or ".join(str(c) for c in candidates)
        + " (it ships in the repository's data/training/; install from a checkout)"
    )


def builtin_training_paths() -> list[Path]:
    """The photos of the built-in training set, sorted by file name (a stable order)."""
    directory = builtin_training_dir()
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in TRAINING_SUFFIXES)


def builtin_training_images(max_side_px: int | None = None) -> list[np.ndarray]:
    """Every built-in training photo as an RGB ``uint8`` array of shape (height, width, 3), in file-name order.

    ``max_side_px`` caps the long side (the photos are 384 px on the long side): larger photos are scaled down
    with Lanczos, keeping the aspect ratio; smaller ones are returned as they are, never enlarged. ``None`` keeps
    every photo at its stored size."""
    if max_side_px is not None and max_side_px < 1:
        raise ValueError(f"max_side_px must be at least 1, got {max_side_px}")
    images = []
    for path in builtin_training_paths():
        with Image.open(path) as opened:
            image = opened.convert("RGB")
        if max_side_px is not None and max(image.size) > max_side_px:
            scale = max_side_px / max(image.size)
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            image = image.resize(size, Image.Resampling.LANCZOS)
        images.append(np.array(image, dtype=np.uint8))
    return images
