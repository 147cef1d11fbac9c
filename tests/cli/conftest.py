"""Fixtures for the CLI and bench tests: sample images and a runner for the real console entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from services.cli.options import env_name
from shared.params import PARAM_SPECS

ROOT = Path(__file__).resolve().parents[2]
# Sample photographs and paintings with licenses: the repo's examples/ (copies), else the shared developer images.
_SAMPLE_DIRS = (ROOT / "examples", ROOT.parent / "shared" / "data" / "images")


def _sample(kind: str, name: str) -> Path | None:
    for directory in _SAMPLE_DIRS:
        path = directory / kind / name
        if path.is_file():
            return path
    return None


@pytest.fixture
def content_path(tmp_path: Path) -> Path:
    """A real photograph when one is available; otherwise a synthetic one (shapes on a gradient)."""
    found = _sample("content", "chelsea_cat.jpg")
    if found is not None:
        return found
    y, x = np.mgrid[0:96, 0:128]
    rgb = np.stack([x * 2, y * 2, 255 - x], axis=-1).astype(np.uint8)
    rgb[30:60, 40:90] = (250, 250, 30)
    path = tmp_path / "content.png"
    Image.fromarray(rgb).save(path)
    return path


@pytest.fixture
def style_path(tmp_path: Path) -> Path:
    found = _sample("style", "vangogh_starry_night.jpg")
    if found is not None:
        return found
    y, x = np.mgrid[0:80, 0:80]
    stripes = ((x + y) // 6 % 2).astype(np.uint8)
    rgb = np.stack([stripes * 220, 40 + stripes * 100, 200 - stripes * 150], axis=-1).astype(np.uint8)
    path = tmp_path / "style.png"
    Image.fromarray(rgb).save(path)
    return path


def run_atelier(*args: str | os.PathLike[str], env: dict[str, str] | None = None,
                timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the ``atelier`` CLI in a fresh process (as a user would), capturing stdout and stderr."""
    # Parameter twins set in the developer's shell must not change what a test runs, and these tests use the real
    # ImageNet weights, so the test-only random-weights switch is dropped too.
    dropped = {env_name(spec.name) for spec in PARAM_SPECS} | {"ATELIER_TEST_RANDOM_WEIGHTS"}
    full_env = {key: value for key, value in os.environ.items() if key not in dropped}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "services.cli.main", *map(str, args)], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout_s)
