"""worker/video/synthetic.py and bench/make_test_clip.py: the test clips' motion is what they say it is."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shared.video import probe_video
from worker.video.synthetic import moving_patch_clip, pan_zoom_clip, pan_zoom_flow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return np.asarray(Image.open(ROOT / "examples" / "content" / "astronaut_portrait.jpg").convert("RGB"))


def test_a_whole_pixel_pan_shifts_the_frame_exactly(astronaut: np.ndarray) -> None:
    frames, flow = pan_zoom_clip(astronaut, 6, (40, 56), 3.0, 1.0, dy_px_per_frame=-2.0)
    assert frames.shape == (6, 40, 56, 3) and frames.dtype == np.uint8 and flow.shape == (5, 40, 56, 2)
    np.testing.assert_array_equal(flow[..., 0], 3.0)
    np.testing.assert_array_equal(flow[..., 1], -2.0)
    for k in range(5):
        # The point at (x, y) in frame k is at (x + 3, y - 2) in frame k+1: the same samples, not just close.
        np.testing.assert_array_equal(frames[k + 1][:-2, 3:], frames[k][2:, :-3])
    assert np.abs(frames[1].astype(int) - frames[0]).mean() > 5  # it does move


def test_zoom_flow_is_affine_about_the_centre_and_backward_inverts_it() -> None:
    size, zoom, d = (33, 45), 1.03, np.array([0.7, -0.4])
    forward = pan_zoom_flow(size, d[0], zoom, dy_px_per_frame=d[1])
    backward = pan_zoom_flow(size, d[0], zoom, dy_px_per_frame=d[1], backward=True)
    centre = np.array([(45 - 1) / 2, (33 - 1) / 2])
    np.testing.assert_allclose(forward[16, 22], d, atol=1e-6)  # the centre moves by the pan only
    np.testing.assert_allclose(forward[0, 0], (zoom - 1) * (np.zeros(2) - centre) + d, atol=1e-5)
    # Going forward from p then backward from p' returns to p.
    ys, xs = np.mgrid[0:33, 0:45]
    p = np.stack([xs, ys], axis=-1).astype(np.float64)
    p_next = p + forward
    back_at_next = (p_next - centre - d) / zoom - (p_next - centre)
    np.testing.assert_allclose(p_next + back_at_next, p, atol=1e-4)
    assert backward.dtype == np.float32


def test_the_zoomed_clip_follows_its_flow(astronaut: np.ndarray) -> None:
    frames, flow = pan_zoom_clip(astronaut, 3, (64, 64), 0.5, 1.04)
    # Sample frame 1 where the flow says frame 0's pixels went: close to frame 0 (two bilinear resamplings).
    import cv2

    ys, xs = np.mgrid[0:64, 0:64].astype(np.float32)
    back = cv2.remap(frames[1], xs + flow[0, ..., 0], ys + flow[0, ..., 1], cv2.INTER_LINEAR)
    inner = (slice(6, -6), slice(6, -6))
    assert np.abs(back[inner].astype(int) - frames[0][inner]).mean() < 3
    assert np.abs(frames[1][inner].astype(int) - frames[0][inner]).mean() > 6


def test_moving_patch_ground_truth(astronaut: np.ndarray) -> None:
    clip = moving_patch_clip(astronaut, 4, 48, 12, (2, 1))
    assert clip.frames.shape == (4, 48, 48, 3) and clip.forward.shape == (3, 48, 48, 2)
    # The patch moves by (2, 1): 12 x 12 pixels of frame k+1 are the patch, 2*12 + 1*12 - 2 of them were background.
    assert clip.occluded[0].sum() == clip.disoccluded[0].sum() == 12 * 12 - 10 * 11
    np.testing.assert_array_equal(clip.frames[1][3:15, 4:16], clip.frames[0][2:14, 2:14])
    with pytest.raises(ValueError, match="leaves"):
        moving_patch_clip(astronaut, 40, 48, 12, (2, 1))


def test_bad_arguments(astronaut: np.ndarray) -> None:
    with pytest.raises(ValueError, match="uint8 RGB"):
        pan_zoom_clip(astronaut.astype(np.float32), 2, 32)
    with pytest.raises(ValueError, match="zoom"):
        pan_zoom_clip(astronaut, 2, 32, zoom_per_frame=3.0)


def test_make_test_clip_writes_a_clip_its_flow_and_parameters(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", ["make_test_clip.py", "--size", "64x48", "--frames", "8", "--tone", "330",
                                      "--gif", "--out", str(tmp_path)])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(ROOT / "bench" / "make_test_clip.py"), run_name="__main__")
    assert done.value.code == 0
    info = probe_video(tmp_path / "chelsea_cat_pan.mp4")
    assert (info.width, info.height, info.frame_count, info.fps, info.has_audio) == (64, 48, 8, 24.0, True)
    assert probe_video(tmp_path / "chelsea_cat_pan.gif").frame_count == 8
    flow = np.load(tmp_path / "chelsea_cat_pan_flow.npy")
    np.testing.assert_allclose(flow, pan_zoom_flow((48, 64), 1.5, 1.005, dy_px_per_frame=-0.5))
    assert json.loads((tmp_path / "chelsea_cat_pan.json").read_text())["zoom_per_frame"] == 1.005
