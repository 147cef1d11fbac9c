"""bench/fast.py runs end to end at a tiny size (32 px, seconds of training) and writes the records the docs read.
Slow: TensorFlow and the real VGG19 weights, about a minute on two cores. It checks behaviour, not speed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "ATELIER_TEST_RANDOM_WEIGHTS"}
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "fast.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_train_then_all_writes_model_curve_breakeven_quality_and_sheets(tmp_path):
    out, sheets = tmp_path / "fast", tmp_path / "sheets"
    train = run("train", "--style", "vangogh_starry_night.jpg", "--minutes", "0.1", "--size", "32",
                "--progress-every", "2", "--out", str(out))
    assert train["stopped_by_budget"] and train["steps_run"] >= 2
    assert (out / "vangogh_starry_night_w0.5.atfs").is_file()
    record = json.loads((out / "vangogh_starry_night_w0.5.train.json").read_text())
    assert [p["step"] for p in record["curve"]] == sorted(p["step"] for p in record["curve"])
    assert {"step", "elapsed_s", "content", "style", "tv", "total"} <= set(record["curve"][0])

    report = run("all", "--sizes", "32", "--widths", "0.5", "--rounds", "1", "--gatys-iterations", "1",
                 "--size", "32", "--pairs", "chelsea_cat.jpg", "--out", str(out), "--sheets", str(sheets),
                 "--json-out", str(tmp_path / "all.json"))
    row = report["apply"]["rows"][0]
    # at 32 px the default ladder is one rung (min_size 128 is above the size): the default job is 100 iterations
    assert row["gatys"]["default_scales_px"] == [32] and row["gatys"]["default_iterations"] == [100]
    gatys = row["gatys"]
    expected_s = gatys["setup_seconds"] + 100 * gatys["seconds_per_iteration"]
    assert gatys["job_seconds_extrapolated"] == pytest.approx(expected_s)
    assert row["fast"][0]["speedup_vs_gatys_job"] > 0
    even = report["breakeven"][0]
    assert even["break_even_batch"] is None or even["break_even_batch"] >= 1
    methods = {r["method"] for r in report["quality"]["rows"]}
    assert methods == {"content (as output)", "fast", "gatys"}
    assert (sheets / "chelsea_cat__vangogh_starry_night_32_fast.png").is_file()
    assert json.loads((tmp_path / "all.json").read_text())["kind"] == "all"
