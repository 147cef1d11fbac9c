"""`atelier stylize` end to end: the real console entry point, the real VGG19 ImageNet weights, a tiny image."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.cli.conftest import run_atelier

pytestmark = pytest.mark.slow

REPORT_KEYS = ("backbone", "weights", "precision", "size_px", "iterations", "seconds", "seconds_per_iteration",
               "total_variation", "losses")
LOSS_KEYS = ("content", "style", "tv", "total")


def test_stylize_writes_image_report_previews_and_shows_progress(
        tmp_path: Path, content_path: Path, style_path: Path) -> None:
    out = tmp_path / "out" / "cat.png"
    report = tmp_path / "run.json"
    previews = tmp_path / "previews"
    result = run_atelier(
        "stylize", content_path, style_path, "-o", out, "--size", "48", "--iterations", "6",
        "--save-every", "3", "--preview-dir", previews, "--report", report, "--seed", "3",
        env={"ATELIER_PRESERVE_COLOR": "luminance"},  # an environment twin reaches the engine too
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr

    with Image.open(out) as image:
        assert image.format == "PNG" and image.mode == "RGB"
        assert max(image.size) == 48
        with Image.open(content_path) as source:  # aspect ratio kept (to rounding)
            assert abs(image.size[0] / image.size[1] - source.size[0] / source.size[1]) < 0.05

    data = json.loads(report.read_text())
    for key in REPORT_KEYS:
        assert key in data, key
    for moment in ("initial", "final"):
        for key in LOSS_KEYS:
            assert isinstance(data["losses"][moment][key], float), (moment, key)
    assert data["backbone"] == "vgg19"
    assert "imagenet" in data["weights"].lower()
    assert data["size_px"] == [image.size[1], image.size[0]]
    assert data["iterations"] == 6
    assert data["params"]["preserve_color"] == "luminance" and data["params"]["seed"] == 3
    assert data["losses"]["final"]["total"] < data["losses"]["initial"]["total"]
    assert data["seconds_per_iteration"] > 0 and data["total_variation"] > 0

    # --save-every 3 of 6: iteration 3 is a preview; iteration 6 is the output itself.
    assert sorted(p.name for p in previews.iterdir()) == ["cat_3.png"]
    with Image.open(previews / "cat_3.png") as preview:
        assert preview.size == image.size

    # tqdm's bar on stderr reached the end
    assert "6/6" in result.stderr
    assert f"wrote {out}" in result.stderr


def test_unknown_layer_fails_with_one_line_listing_valid_layers(
        tmp_path: Path, content_path: Path, style_path: Path) -> None:
    out = tmp_path / "out.png"
    result = run_atelier("stylize", content_path, style_path, "-o", out, "--size", "32", "--iterations", "1",
                         "--style-layers", "block1_conv1,block9_conv9")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert lines[-1].startswith("Error: ") and "block9_conv9" in lines[-1] and "block5_conv4" in lines[-1]
    assert not out.exists()


def test_init_image_starts_from_that_picture_at_one_scale(tmp_path: Path, content_path: Path,
                                                         style_path: Path) -> None:
    # A noise start stands in for "an earlier result": one iteration from it stays near it (upscaled), while a run
    # without --init-image starts from the content and stays near that.
    start = tmp_path / "start.png"
    noise = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    Image.fromarray(noise).save(start)
    runs = {}
    for name, extra in (("refined", ["--init-image", start]), ("plain", [])):
        out, report = tmp_path / f"{name}.png", tmp_path / f"{name}.json"
        result = run_atelier("stylize", content_path, style_path, "-o", out, "--size", "160", "--iterations", "1",
                             "--report", report, *extra)
        assert result.returncode == 0, result.stderr[-2000:]
        runs[name] = (np.asarray(Image.open(out).convert("RGB"), np.float64), json.loads(report.read_text()))
    refined, refined_report = runs["refined"]
    plain, plain_report = runs["plain"]
    upscaled = np.asarray(Image.fromarray(noise).resize((refined.shape[1], refined.shape[0]), Image.BICUBIC),
                          np.float64)
    assert np.abs(refined - upscaled).mean() < 0.5 * np.abs(plain - upscaled).mean()
    assert refined_report["inputs"]["init_image"] == str(start) and "init_image" not in plain_report["inputs"]
    assert "scales" not in refined_report  # one scale, though 160 px would otherwise climb from 128
    assert [s["size_px"] for s in plain_report["scales"]] == [128, 160]
