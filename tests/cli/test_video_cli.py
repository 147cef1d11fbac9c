"""``atelier video`` as a user runs it: here in-process with the real engine and real VGG19 weights (a tiny clip),
and its one-line refusals before anything is decoded. Through the service: tests/reliability/video_cases.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from worker.video.io import decode_video
from worker.video.synthetic import encode_test_clip, pan_zoom_clip

from .conftest import run_atelier


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cat = Path(__file__).resolve().parents[2] / "examples" / "content" / "chelsea_cat.jpg"
    frames, _ = pan_zoom_clip(np.asarray(Image.open(cat).convert("RGB")), 6, (32, 48), 1.0, 1.0)
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    path.write_bytes(encode_test_clip(frames, 12, container="mp4", tone_hz=440))
    return path


@pytest.mark.slow
def test_atelier_video_styles_a_clip_here_with_its_audio_and_a_report(clip_path, style_path, tmp_path):
    out, report = tmp_path / "out.mp4", tmp_path / "report.json"
    done = run_atelier("video", clip_path, "--style", style_path, "-o", out, "--size", "48", "--iterations", "2",
                       "--later-iterations", "1", "--segment-frames", "4", "--overlap-frames", "1",
                       "--report", report)
    assert done.returncode == 0, done.stderr
    assert "frame" in done.stderr and f"wrote {out}" in done.stderr  # the bar counts frames
    video = decode_video(str(out))
    assert len(video) == 6 and video.info.has_audio and abs(video.fps - 12) < 0.01
    metrics = json.loads(report.read_text())["metrics"]
    assert metrics["segments"] == 2 and metrics["warping_error"] >= 0  # [0, 4) and [3, 6): one crossfaded seam


@pytest.mark.parametrize(("args", "message"), [
    (["-o", "out.png"], "ending in .mp4"),
    (["-o", "out.mp4", "--style-model", "ab" * 16], "add --api URL"),
    (["-o", "out.mp4", "--overlap-frames", "9", "--segment-frames", "4"], "overlap_frames=9"),
    (["-o", "out.mp4"], "style"),  # optimize without a style image
])
def test_atelier_video_refuses_bad_arguments_in_one_line(clip_path, tmp_path, args, message):
    done = run_atelier("video", clip_path, *[str(tmp_path / a) if a.startswith("out.") else a for a in args],
                       timeout_s=60)
    assert done.returncode != 0
    lines = [line for line in done.stderr.strip().splitlines() if line]
    assert len(lines) == 1 and message in lines[0], done.stderr
