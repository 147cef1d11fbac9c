"""Fixtures for the CLI and bench tests: sample images and a runner for the real console entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.cli.options import TRAIN_ENV_PREFIX, env_name
from shared.params import PARAM_SPECS
from shared.train_params import TRAIN_PARAM_SPECS

ROOT = Path(__file__).resolve().parents[2]
# Sample photographs and paintings with licenses, inside the repository (examples/LICENSES.md).
EXAMPLES = ROOT / "examples"


@pytest.fixture
def content_path() -> Path:
    return EXAMPLES / "content" / "chelsea_cat.jpg"


@pytest.fixture
def style_path() -> Path:
    return EXAMPLES / "style" / "vangogh_starry_night.jpg"


def run_atelier(*args: str | os.PathLike[str], env: dict[str, str] | None = None,
                timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the ``atelier`` CLI in a fresh process (as a user would), capturing stdout and stderr."""
    # Parameter twins set in the developer's shell must not change what a test runs, and these tests use the real
    # ImageNet weights, so the test-only random-weights switch is dropped too.
    dropped = ({env_name(spec.name) for spec in PARAM_SPECS}
               | {env_name(spec.name, TRAIN_ENV_PREFIX) for spec in TRAIN_PARAM_SPECS}
               | {"ATELIER_TEST_RANDOM_WEIGHTS", "ATELIER_MODEL_SIGNING_KEY"})
    full_env = {key: value for key, value in os.environ.items() if key not in dropped}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "services.cli.main", *map(str, args)], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout_s)
