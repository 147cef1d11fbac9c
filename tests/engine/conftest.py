"""Fixtures for the engine tests: the sample images (small copies) and the test-only random-weights switch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# The sample pictures inside the repository (examples/), so a bare clone has everything the tests read.
DATA = Path(__file__).resolve().parents[2] / "examples"


def _load(kind: str, name: str, long_side_px: int = 256) -> np.ndarray:
    image = Image.open(DATA / kind / f"{name}.jpg").convert("RGB")
    image.thumbnail((long_side_px, long_side_px))  # smaller inputs: the engine resizes anyway, tests stay fast
    return np.asarray(image)


@pytest.fixture(scope="session")
def cat() -> np.ndarray:
    return _load("content", "chelsea_cat")


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    return _load("content", "astronaut_portrait")


@pytest.fixture(scope="session")
def starry_night() -> np.ndarray:
    return _load("style", "vangogh_starry_night")


@pytest.fixture(scope="session")
def scream() -> np.ndarray:
    return _load("style", "munch_the_scream")


@pytest.fixture
def random_weights():
    """The explicit test-only switch: a ``WeightSource`` that builds backbones with random weights; pass it as
    ``stylize(..., weights=random_weights)`` (the engine reads no environment)."""
    from shared.weights import WeightSource

    return WeightSource(random=True)
