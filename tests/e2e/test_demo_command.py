"""``atelier demo`` (what ``make demo`` runs), shrunk to one tiny picture: it starts the stack, sends the example
through the HTTP API, writes the result to out/, prints timings, stops everything and exits 0."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from .conftest import CONTENT, STYLE

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_demo_stylizes_the_examples_through_the_service(tmp_path):
    examples = tmp_path / "examples"
    (examples / "content").mkdir(parents=True)
    (examples / "style").mkdir()
    shutil.copy(CONTENT, examples / "content")
    shutil.copy(STYLE, examples / "style")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATELIER_")}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "atelier"), "demo", "--size", "32", "--iterations", "3",
         "--examples", str(examples), "--out", str(tmp_path / "out"), "--var-dir", str(tmp_path / "var")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    out = tmp_path / "out" / f"{CONTENT.stem}__{STYLE.stem}.png"
    assert max(Image.open(out).size) == 32
    assert "succeeded" in result.stdout and "demo finished" in result.stdout
    assert "stopping the stack" in result.stdout
