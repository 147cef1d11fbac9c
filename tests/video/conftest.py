"""Test clips for the video tests, rendered once per session from the repository's own picture (no video ships
with the repository): a 16-frame pan and zoom across the cat at 64x80, encoded to each container we accept."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from worker.video.synthetic import encode_test_clip, pan_zoom_clip

CAT = Path(__file__).resolve().parents[2] / "examples" / "content" / "chelsea_cat.jpg"
FRAMES, FPS, SIZE = 16, 24, (64, 80)


@dataclass(frozen=True)
class ClipSpec:
    frames: int = FRAMES
    fps: int = FPS
    size: tuple[int, int] = SIZE  # (height, width)


@pytest.fixture(scope="session")
def spec() -> ClipSpec:
    """What the session's test clips are: the tests compare the files' numbers with these."""
    return ClipSpec()


@pytest.fixture(scope="session")
def pan_frames() -> np.ndarray:
    image = np.asarray(Image.open(CAT).convert("RGB"))
    frames, _flow = pan_zoom_clip(image, FRAMES, SIZE, 1.5, 1.01, dy_px_per_frame=-0.5)
    return frames


@pytest.fixture(scope="session")
def mp4_with_audio(pan_frames: np.ndarray) -> bytes:
    return encode_test_clip(pan_frames, FPS, container="mp4", tone_hz=440)


@pytest.fixture(scope="session")
def mp4_silent(pan_frames: np.ndarray) -> bytes:
    return encode_test_clip(pan_frames, FPS, container="mp4")


@pytest.fixture(scope="session")
def webm_with_audio(pan_frames: np.ndarray) -> bytes:
    return encode_test_clip(pan_frames, FPS, container="webm", tone_hz=440)


@pytest.fixture(scope="session")
def mov_with_pcm(pan_frames: np.ndarray) -> bytes:
    # PCM audio: MP4 cannot carry it as it is, so encode_mp4 has to re-encode it to AAC.
    return encode_test_clip(pan_frames, FPS, container="mov", tone_hz=440, audio_codec="pcm_s16le")


@pytest.fixture(scope="session")
def gif_clip(pan_frames: np.ndarray) -> bytes:
    # GIF delays are whole hundredths of a second: 25 fps (4 cs) is exact, 24 fps is not.
    return encode_test_clip(pan_frames, 25, container="gif")
