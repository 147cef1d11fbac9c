"""bench/texture.py, quality_time.py, resolution.py, chart.py and cpu_settings.py (issue 13): they run end to
end on the repository's sample pair with the real VGG19 at a tiny size and write what the docs read; the chart
draws from a results file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"  # the tests read no images outside the repository


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "ATELIER_TEST_RANDOM_WEIGHTS"}
    done = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _results(runs: dict[str, list[tuple[float, float]]]) -> dict:
    return {"records": [{"content": "chelsea_cat.jpg", "style": "vangogh_starry_night.jpg", "size": 64,
                         "reference": "single",
                         "runs": {name: {"curve": [{"seconds": x, "score": y} for x, y in points]}
                                  for name, points in runs.items()}}]}


def test_the_chart_draws_every_curve_in_its_own_colour(tmp_path):
    results = tmp_path / "r.json"
    results.write_text(json.dumps(_results({"single": [(0, 3.0), (10, 1.5), (20, 1.0)],
                                            "c2f": [(0, 2.5), (5, 1.2), (9, 0.9)]})))
    done = run("quality_time.py", "--chart", str(results), "--chart-dir", str(tmp_path / "charts"))
    path = tmp_path / "charts" / "chelsea_cat__vangogh_starry_night_64.png"
    assert done.stdout.strip() == str(path)
    pixels = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3)
    for colour in ((31, 119, 180), (214, 39, 40)):  # bench/chart.py's first two series colours
        assert np.sum(np.all(pixels == colour, axis=1)) > 50


@pytest.mark.slow  # real VGG19, a few iterations at 48 px
def test_quality_time_scores_checkpoints_against_the_reference(tmp_path):
    out = tmp_path / "qt.json"
    run("quality_time.py", "--size", "48", "--every", "1", "--pairs", "1", "--image-dir", str(EXAMPLES),
        "--run", 'single={"min_size": 4096, "iterations": 4}',
        "--run", 'c2f={"min_size": 24, "scale_iterations": 2, "iterations": 2}', "--json-out", str(out),
        "--out-dir", str(tmp_path / "png"))
    assert sorted(p.name for p in (tmp_path / "png").glob("*.png")) == [
        "chelsea_cat__vangogh_starry_night_48_c2f.png", "chelsea_cat__vangogh_starry_night_48_single.png"]
    record = json.loads(out.read_text())["records"][0]
    single, c2f = record["runs"]["single"], record["runs"]["c2f"]
    assert single["final_score"] == pytest.approx(1.0, abs=1e-3)  # the reference scores 1 against itself
    assert [s["size_px"] for s in c2f["scales"]] == [24, 34, 48]
    for run_record in (single, c2f):
        seconds = [p["seconds"] for p in run_record["curve"]]
        assert seconds == sorted(seconds) and len(seconds) >= 3
        assert all(np.isfinite(p["score"]) and 0 <= p["ssim"] <= 1 for p in run_record["curve"])
    # The score is the mean of the four ratios to the reference's last checkpoint (SSIM as 1 - ssim).
    ref, first = single["curve"][-1], c2f["curve"][0]
    ratios = [first[k] / ref[k] for k in ("color_swd", "gram_random", "gabor")] + [(1 - first["ssim"]) /
                                                                                   (1 - ref["ssim"])]
    assert first["score"] == pytest.approx(np.mean(ratios), abs=1e-3)
    reached = c2f["reaches_reference_s"]
    assert reached is None or reached <= c2f["seconds"]


@pytest.mark.slow
def test_texture_scores_each_variant_with_the_signed_gabor_bias(tmp_path):
    out = tmp_path / "t.json"
    run("texture.py", "--size", "48", "--iterations", "3", "--pairs", "1", "--image-dir", str(EXAMPLES),
        "--variant", 'smooth={"tv_weight": 1}', "--variant", 'notv={"tv_weight": 0}',
        "--out-dir", str(tmp_path / "png"), "--json-out", str(out))
    report = json.loads(out.read_text())
    assert [r["variant"] for r in report["records"]] == ["smooth", "notv"]
    assert set(report["summary"]) == {"smooth", "notv"}
    assert report["summary"]["smooth"]["gabor_bias"] < report["summary"]["notv"]["gabor_bias"]  # TV smooths
    assert len(list((tmp_path / "png").glob("*.png"))) == 2


@pytest.mark.slow
def test_cpu_settings_times_each_variant_in_its_own_process(tmp_path):
    out = tmp_path / "cpu.json"
    run("cpu_settings.py", "--size", "32", "--passes", "1", "--rounds", "2", "--variants", "default,bfloat16",
        "--json-out", str(out))
    report = json.loads(out.read_text())
    assert set(report["seconds"]) == {"default", "bfloat16"}
    assert all(len(values) == 2 for values in report["rounds"].values())
    assert all(0 < seconds < 60 for seconds in report["seconds"].values())
    assert report["ratio_to_torch"] is None  # no --torch-python given


def test_resolution_runs_each_size_and_reports_the_band_and_the_agreement(tmp_path):
    out = tmp_path / "r.json"
    run("resolution.py", "--sizes", "48,32", "--params", '{"iterations": 3, "min_size": 24}', "--pairs", "1",
        "--image-dir", str(EXAMPLES), "--out-dir", str(tmp_path / "png"), "--sheet-dir", str(tmp_path / "sheets"),
        "--json-out", str(out))
    report = json.loads(out.read_text())
    small, large = report["records"]
    assert (small["size"], large["size"]) == (32, 48)  # smallest first: the reference of vs_smallest
    assert small["scales_px"] == [24, 32] and large["scales_px"] == [24, 34, 48]  # the same params, its own ladder
    assert small["vs_smallest"]["ssim"] == pytest.approx(1.0) and small["vs_smallest"]["color_swd"] < 1e-9
    assert 0 < large["vs_smallest"]["ssim"] < 1 and large["vs_smallest"]["color_swd"] > 0
    band = report["summary"]["chelsea_cat.jpg x vangogh_starry_night.jpg"]["gabor"]
    assert band["min"] == min(small["gabor"], large["gabor"]) and band["spread"] == pytest.approx(
        abs(small["gabor"] - large["gabor"]))
    assert large["at_smallest"]["gabor"] != large["gabor"] and small["at_smallest"]["gabor"] == small["gabor"]
    assert len(list((tmp_path / "png").glob("*.png"))) == 2
    assert Image.open(tmp_path / "sheets" / "chelsea_cat__vangogh_starry_night_resolution.png").height > 32
    # --rescore recomputes the same scores from the PNGs (deterministic evaluator)
    before = json.loads(out.read_text())
    (tmp_path / "png" / "chelsea_cat__vangogh_starry_night_48.png").unlink()  # a missing PNG must fail loudly
    with pytest.raises(AssertionError):
        run("resolution.py", "--rescore", "--image-dir", str(EXAMPLES), "--out-dir", str(tmp_path / "png"),
            "--json-out", str(out))
    assert json.loads(out.read_text()) == before
