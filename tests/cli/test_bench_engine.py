"""bench/engine.py runs at a tiny size and prints parseable JSON rows with the keys the docs and checks read."""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import ROOT

pytestmark = pytest.mark.slow

ROW_KEYS = ("backbone", "size_px", "iterations", "precision", "seconds_per_iteration", "floor_seconds_per_iteration",
            "overhead_ratio", "total_variation", "weights", "content_loss", "style_loss", "seconds",
            "final_loss_evaluated_f32", "peak_rss_mib")


def run_bench(*args: str, env: dict[str, str] | None = None) -> list[dict]:
    full_env = {key: value for key, value in os.environ.items() if key != "ATELIER_TEST_RANDOM_WEIGHTS"}
    full_env.update(env or {})
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "engine.py"), "--json", *args], cwd=ROOT,
                            env=full_env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert lines and all(line.startswith("{") for line in lines), result.stdout  # nothing but JSON rows on stdout
    return [json.loads(line) for line in lines]


def test_vgg19_row_has_the_keys_and_sane_values(content_path: Path, style_path: Path) -> None:
    rows = run_bench("--size", "32", "--iterations", "2", "--rounds", "2", "--backbones", "vgg19",
                     "--precision", "float32", "--content", str(content_path), "--style", str(style_path))
    assert len(rows) == 1
    row = rows[0]
    for key in ROW_KEYS:
        assert key in row, key
    assert row["backbone"] == "vgg19" and "imagenet" in row["weights"] and row["random_weights"] is False
    assert max(row["size_px"]) == 32 and row["iterations"] == 2 and row["precision"] == "float32"
    assert len(row["rounds"]) == 2
    assert row["seconds_per_iteration"] > 0 and row["floor_seconds_per_iteration"] > 0
    paired = [r["seconds_per_iteration"] / r["floor_seconds_per_iteration"] for r in row["rounds"]]
    assert math.isclose(row["overhead_ratio"], statistics.median(paired))  # each round's ratio, then the median
    assert row["total_variation"] > 0 and row["content_loss"] >= 0 and row["style_loss"] > 0
    # The float32 yardstick of a float32 run scores the saved (clipped, rounded) image: close to the engine's own
    # final loss, and below the initial loss.
    assert row["final_loss_evaluated_f32"] == pytest.approx(row["total_loss"], rel=0.05)
    assert row["final_loss_evaluated_f32"] < row["initial_total_loss"]


def test_missing_official_weights_fall_back_to_random_and_say_so(tmp_path: Path, content_path: Path,
                                                                  style_path: Path) -> None:
    empty = {"ATELIER_WEIGHTS_DIR": str(tmp_path), "KERAS_HOME": str(tmp_path)}
    rows = run_bench("--size", "32", "--iterations", "1", "--rounds", "1", "--backbones", "xception", "--no-floor",
                     "--content", str(content_path), "--style", str(style_path), env=empty)
    assert rows[0]["backbone"] == "xception"
    assert rows[0]["random_weights"] is True and rows[0]["weights"] == "random (test only)"
    assert rows[0]["floor_seconds_per_iteration"] is None and rows[0]["overhead_ratio"] is None
