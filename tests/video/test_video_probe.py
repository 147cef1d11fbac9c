"""shared/video.py: the probe the API uses at the door. Its numbers on real files of every accepted container, and
its refusals: not a video, broken, truncated, over a limit, each with a stable code and a message naming the value
and the limit."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from fractions import Fraction

import av
import numpy as np
import pytest

from shared.errors import ImageError, ParamError, TooLarge
from shared.images import encode_png
from shared.video import VideoError, probe_video, sniff_container
from worker.video.io import encode_mp4

FRAMES, FPS, SIZE = 16, 24, (64, 80)  # the session's clips (conftest.ClipSpec); checked below


def test_probe_mp4_with_audio(mp4_with_audio: bytes, spec) -> None:
    assert (spec.frames, spec.fps, spec.size) == (FRAMES, FPS, SIZE)
    info = probe_video(mp4_with_audio)
    assert (info.container, info.video_codec, info.width, info.height) == ("mp4", "h264", SIZE[1], SIZE[0])
    assert info.fps == pytest.approx(FPS)
    assert info.frame_count == FRAMES
    assert info.duration_s == pytest.approx(FRAMES / FPS, abs=1e-3)
    assert info.has_audio and info.audio_codec == "aac"
    assert info.bytes == len(mp4_with_audio) and info.rotation == 0
    assert info.content_type == "video/mp4" and info.to_dict()["frame_count"] == FRAMES


def test_probe_silent_mp4_has_no_audio(mp4_silent: bytes) -> None:
    info = probe_video(mp4_silent)
    assert not info.has_audio and info.audio_codec is None and info.frame_count == FRAMES


@pytest.mark.parametrize(("fixture", "container", "codec", "fps", "audio"), [
    ("webm_with_audio", "webm", "vp9", FPS, "opus"),
    ("mov_with_pcm", "mov", "h264", FPS, "pcm_s16le"),
    ("gif_clip", "gif", "gif", 25, None),
])
def test_probe_other_containers(request: pytest.FixtureRequest, fixture: str, container: str, codec: str, fps: float,
                                audio: str | None) -> None:
    info = probe_video(request.getfixturevalue(fixture))
    assert (info.container, info.video_codec, info.audio_codec) == (container, codec, audio)
    assert info.frame_count == FRAMES and info.fps == pytest.approx(fps)
    # WebM stores milliseconds: 16 frames at 24 fps is 0.667 s, rounded per frame.
    assert info.duration_s == pytest.approx(FRAMES / fps, abs=2e-3)


def test_probe_a_path_like_bytes(tmp_path, mp4_with_audio: bytes) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(mp4_with_audio)
    assert probe_video(path) == probe_video(mp4_with_audio) == probe_video(str(path))


def test_probe_imports_neither_tensorflow_nor_opencv() -> None:
    """The API imports shared.video: probing must stay cheap (PyAV only)."""
    code = ("import sys, shared.video; "
            "print(','.join(m for m in ('tensorflow', 'keras', 'cv2', 'worker') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == ""


# -- refusals: 415 -------------------------------------------------------------------------------------------------


def _refused(data, code: str, *words: str) -> VideoError:
    with pytest.raises(VideoError) as caught:
        probe_video(data)
    error = caught.value
    assert isinstance(error, ImageError) and error.http_status == 415
    assert error.code == code, error.message
    for word in words:
        assert word in error.message, error.message
    return error


def test_random_bytes_are_not_a_video() -> None:
    _refused(np.random.default_rng(0).bytes(4096), "unsupported_media_type", "not a recognised video", "MP4")


def test_empty_upload() -> None:
    _refused(b"", "unsupported_media_type", "empty")


def test_png_renamed_mp4_is_refused_as_an_image(tmp_path) -> None:
    path = tmp_path / "holiday.mp4"
    path.write_bytes(encode_png(np.zeros((16, 16, 3), np.uint8)))
    _refused(path, "unsupported_media_type", "PNG image")


def test_playlists_never_reach_ffmpeg() -> None:
    """An HLS playlist or concat script would make FFmpeg open the files it names: refused by signature."""
    _refused(b"#EXTM3U\n#EXT-X-VERSION:3\n#EXTINF:1,\nfile:///etc/passwd\n", "unsupported_media_type", "playlist")
    _refused(b"ffconcat version 1.0\nfile '/etc/passwd'\n", "unsupported_media_type", "concat")


def test_truncated_mp4_index_at_the_end(mp4_silent: bytes) -> None:
    # Our test clips keep the MP4 index (moov) at the end: half a file has no index at all.
    _refused(mp4_silent[: len(mp4_silent) // 2], "corrupt_video", "MP4", "truncated")


def test_truncated_mp4_index_at_the_front(pan_frames: np.ndarray) -> None:
    # encode_mp4 writes +faststart (moov first): a cut file opens, but holds fewer samples than its index says.
    whole = encode_mp4(pan_frames, FPS)
    assert whole[4:8] == b"ftyp" and whole.find(b"moov") < whole.find(b"mdat")
    error = _refused(whole[: int(len(whole) * 0.6)], "corrupt_video")
    assert "frames" in error.message or "decode" in error.message


def test_mp4_with_garbage_pictures(mp4_silent: bytes) -> None:
    start = mp4_silent.find(b"mdat") + 8
    broken = mp4_silent[:start] + np.random.default_rng(1).bytes(3000) + mp4_silent[start + 3000:]
    _refused(broken, "corrupt_video", "decode")


def test_truncated_webm_and_gif(webm_with_audio: bytes, gif_clip: bytes) -> None:
    _refused(webm_with_audio[: len(webm_with_audio) // 2], "corrupt_video", "truncated")
    _refused(gif_clip[: len(gif_clip) // 3], "corrupt_video", "trailer")


def test_audio_only_mp4_has_no_video_stream() -> None:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as out:
        stream = out.add_stream("aac", rate=48_000, layout="mono")
        for start in range(0, 48_000, 1024):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = 48_000, start, Fraction(1, 48_000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    _refused(buffer.getvalue(), "unsupported_media_type", "without a video stream")


def test_sniff_container() -> None:
    assert sniff_container(b"\x00\x00\x00\x20ftypisom") == "mp4"
    assert sniff_container(b"\x00\x00\x00\x14ftypqt  ") == "mov"
    assert sniff_container(b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01B\x82\x84webm") == "webm"
    assert sniff_container(b"GIF89a....") == "gif"
    assert sniff_container(b"\x89PNG\r\n\x1a\n") is None and sniff_container(b"") is None


# -- limits: 413 and 422 -------------------------------------------------------------------------------------------


def test_byte_limit(mp4_silent: bytes) -> None:
    with pytest.raises(TooLarge) as caught:
        probe_video(mp4_silent, max_bytes=1000)
    assert caught.value.code == "video_too_large" and caught.value.http_status == 413
    assert f"{len(mp4_silent)} bytes" in caught.value.message and "at most 1000 bytes" in caught.value.message


def test_pixel_limit(mp4_silent: bytes) -> None:
    with pytest.raises(TooLarge) as caught:
        probe_video(mp4_silent, max_pixels=4000)
    assert caught.value.code == "video_too_large"
    assert "80x64 = 5120 pixels" in caught.value.message and "at most 4000 pixels" in caught.value.message


def test_frame_limit(mp4_silent: bytes) -> None:
    with pytest.raises(ParamError) as caught:
        probe_video(mp4_silent, max_frames=10)
    assert caught.value.code == "video_too_many_frames" and caught.value.http_status == 422
    assert "more than 10 frames" in caught.value.message


def test_duration_limit(mp4_silent: bytes) -> None:
    with pytest.raises(ParamError) as caught:
        probe_video(mp4_silent, max_duration_s=0.25)
    assert caught.value.code == "video_too_long" and caught.value.http_status == 422
    assert "at most 0.25 s" in caught.value.message


def test_limits_at_the_value_pass(mp4_silent: bytes) -> None:
    info = probe_video(mp4_silent, max_bytes=len(mp4_silent), max_pixels=80 * 64, max_frames=FRAMES,
                       max_duration_s=FRAMES / FPS)
    assert info.frame_count == FRAMES


def test_unreadable_path(tmp_path) -> None:
    with pytest.raises(VideoError):
        probe_video(os.fspath(tmp_path / "missing.mp4"))
