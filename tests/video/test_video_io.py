"""worker/video/io.py: decode every accepted container to RGB frames with times, encode H.264 MP4 at the input's
rate with the audio carried through (copied when MP4 takes its codec, re-encoded to AAC when not, never invented),
and the poster frame."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from shared.images import load_rgb
from shared.video import VideoError, probe_video
from worker.video.io import decode_video, encode_mp4, iter_frames, poster_png, rotate_display


def _audio_seconds(data: bytes) -> tuple[str, float, float] | None:
    """(codec, seconds of decoded samples, peak amplitude) of the first audio track, or None."""
    with av.open(io.BytesIO(data)) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        samples = [frame.to_ndarray() for frame in container.decode(stream)]
        wave = np.concatenate([s.reshape(-1) for s in samples]).astype(np.float64)
        if np.issubdtype(samples[0].dtype, np.integer):
            wave /= 32768.0
        channels = stream.codec_context.channels or 1
        return stream.codec_context.name, wave.size / channels / stream.codec_context.sample_rate, np.abs(wave).max()


def test_round_trip_keeps_frames_rate_and_audio(mp4_with_audio: bytes, pan_frames: np.ndarray, spec) -> None:
    clip = decode_video(mp4_with_audio)
    assert clip.frames.shape == (spec.frames, *spec.size, 3) and clip.frames.dtype == np.uint8
    assert clip.fps == pytest.approx(spec.fps) and clip.start_s == 0
    np.testing.assert_allclose(clip.timestamps, np.arange(spec.frames) / spec.fps, atol=1e-6)
    # libx264 at CRF 12 on a 64x80 clip: a few grey levels of error.
    assert np.abs(clip.frames.astype(int) - pan_frames).mean() < 4

    out = encode_mp4(clip.frames, clip.fps, audio_from=mp4_with_audio, start_s=clip.start_s)
    info = probe_video(out)
    assert (info.container, info.video_codec, info.frame_count) == ("mp4", "h264", spec.frames)
    assert info.fps == pytest.approx(spec.fps) and info.has_audio and info.audio_codec == "aac"
    codec, seconds, peak = _audio_seconds(out)
    # Copied packets: the tone is there, as long as the video (within one AAC frame of 1024 samples, 21 ms).
    assert seconds == pytest.approx(spec.frames / spec.fps, abs=0.03) and peak > 0.2
    again = decode_video(out)
    assert np.abs(again.frames.astype(int) - clip.frames).mean() < 4


def test_no_audio_is_invented(mp4_silent: bytes) -> None:
    clip = decode_video(mp4_silent)
    out = encode_mp4(clip.frames, clip.fps, audio_from=mp4_silent)
    assert not probe_video(out).has_audio and _audio_seconds(out) is None
    assert _audio_seconds(encode_mp4(clip.frames, clip.fps)) is None


def test_webm_opus_is_copied_and_mov_pcm_is_reencoded(webm_with_audio: bytes, mov_with_pcm: bytes, spec) -> None:
    for source, codec in ((webm_with_audio, "opus"), (mov_with_pcm, "aac")):
        clip = decode_video(source)
        assert len(clip) == spec.frames and clip.fps == pytest.approx(spec.fps)
        out = encode_mp4(clip.frames, clip.fps, audio_from=source, start_s=clip.start_s)
        name, seconds, peak = _audio_seconds(out)
        assert name == codec and seconds == pytest.approx(spec.frames / spec.fps, abs=0.05) and peak > 0.2


def test_gif_in(gif_clip: bytes, pan_frames: np.ndarray, spec) -> None:
    clip = decode_video(gif_clip)
    assert clip.frames.shape == (spec.frames, *spec.size, 3) and clip.fps == pytest.approx(25)
    np.testing.assert_allclose(np.diff(clip.timestamps), 0.04, atol=1e-6)
    # GIF is 256 colours per frame: close to the source, not equal.
    assert np.abs(clip.frames.astype(int) - pan_frames).mean() < 8
    info = probe_video(encode_mp4(clip.frames, clip.fps, audio_from=gif_clip))
    assert info.frame_count == spec.frames and info.fps == pytest.approx(25) and not info.has_audio


def test_fps_cap_keeps_every_other_frame_and_the_audio_span(mp4_with_audio: bytes, spec) -> None:
    clip = decode_video(mp4_with_audio, fps_cap=spec.fps / 2)
    assert len(clip) == spec.frames // 2 and clip.fps == pytest.approx(spec.fps / 2)
    np.testing.assert_allclose(clip.timestamps, np.arange(spec.frames // 2) * 2 / spec.fps, atol=1e-6)
    out = encode_mp4(clip.frames, clip.fps, audio_from=mp4_with_audio)
    info = probe_video(out)
    assert info.duration_s == pytest.approx(spec.frames / spec.fps, abs=1e-3)
    assert _audio_seconds(out)[1] == pytest.approx(info.duration_s, abs=0.03)


def test_a_later_segment_takes_its_own_stretch_of_audio(mp4_with_audio: bytes, spec) -> None:
    clip = decode_video(mp4_with_audio)
    tail = clip.frames[8:]
    out = encode_mp4(tail, clip.fps, audio_from=mp4_with_audio, start_s=clip.start_s + clip.timestamps[8])
    assert _audio_seconds(out)[1] == pytest.approx(len(tail) / spec.fps, abs=0.03)


def test_max_side_and_max_frames(mp4_silent: bytes) -> None:
    clip = decode_video(mp4_silent, max_side=40, max_frames=5)
    assert clip.frames.shape == (5, 32, 40, 3)
    assert next(iter_frames(mp4_silent, max_side=1000))[1].shape == (64, 80, 3)  # never enlarged


def test_odd_sizes_are_padded_to_even(pan_frames: np.ndarray) -> None:
    odd = np.ascontiguousarray(pan_frames[:4, :63, :79])
    clip = decode_video(encode_mp4(odd, 10))
    assert clip.frames.shape == (4, 64, 80, 3)
    assert np.abs(clip.frames[:, :63, :79].astype(int) - odd).mean() < 4


def test_encode_to_a_path_and_a_file(tmp_path, pan_frames: np.ndarray) -> None:
    path = tmp_path / "out.mp4"
    assert encode_mp4(pan_frames[:3], 12, out=path) is None
    assert probe_video(path).frame_count == 3
    handle = io.BytesIO()
    assert encode_mp4(pan_frames[:3], 12, out=handle) is None
    assert probe_video(handle.getvalue()).fps == pytest.approx(12)


def test_poster_is_a_png_of_the_middle_frame(pan_frames: np.ndarray) -> None:
    np.testing.assert_array_equal(load_rgb(poster_png(pan_frames)), pan_frames[len(pan_frames) // 2])
    np.testing.assert_array_equal(load_rgb(poster_png(pan_frames, index=0)), pan_frames[0])
    np.testing.assert_array_equal(load_rgb(poster_png(pan_frames[3])), pan_frames[3])


def test_rotation_convention() -> None:
    """-90 (a portrait phone clip) is a quarter turn clockwise: the top-left pixel ends at the top right."""
    image = np.zeros((2, 3, 3), np.uint8)
    image[0, 0] = 255
    turned = rotate_display(image, -90)
    assert turned.shape == (3, 2, 3) and turned[0, 1, 0] == 255
    assert rotate_display(image, 90)[2, 0, 0] == 255 and rotate_display(image, 0) is image
    assert rotate_display(image, 180)[1, 2, 0] == 255


def test_decoder_refuses_what_the_probe_refuses(mp4_silent: bytes) -> None:
    with pytest.raises(VideoError) as caught:
        decode_video(mp4_silent[: len(mp4_silent) // 2])
    assert caught.value.code == "corrupt_video"
    with pytest.raises(VideoError):
        list(iter_frames(b"not a video at all"))


def test_encode_refuses_bad_frames() -> None:
    with pytest.raises(ValueError, match="uint8"):
        encode_mp4(np.zeros((2, 8, 8, 3), np.float32), 10)
    with pytest.raises(ValueError, match="fps"):
        encode_mp4(np.zeros((2, 8, 8, 3), np.uint8), 0)
