"""Decoding clips to frames and encoding frames to H.264 MP4 (PyAV), for the worker and the local CLI.

    clip = decode_video(source, max_side=None, fps_cap=None, max_frames=None)   # DecodedVideo
    data = encode_mp4(frames, fps, audio_from=source, start_s=clip.start_s)     # bytes (or written to ``out``)
    png = poster_png(frames)                                                    # bytes

- ``source`` is bytes or a path. Every decode goes through ``shared.video.open_video``, so the worker refuses the
  same files the door does, with the same ``VideoError`` codes; pass the door's limits to ``probe_video`` first.
- Frames are uint8 RGB ``(N, H, W, 3)``, rotated as the file's display matrix asks (phones store portrait video as
  landscape pictures plus a rotation), with timestamps in seconds from the first frame.
- Output: H.264 (libx264, bundled in the PyAV wheel) in MP4, 4:2:0 for players and browsers, ``+faststart`` so
  playback starts before the download ends, constant frame rate at the input's average rate. A variable-rate
  input (GIFs often are) comes out at its average rate: frame count and duration are kept, per-frame timing
  is not.
- Audio is copied packet for packet (remuxed, no quality loss) when its codec can live in MP4 (AAC, MP3, Opus,
  FLAC, ALAC, AC-3); otherwise (Vorbis from WebM, PCM from MOV) it is re-encoded to AAC. Packets are shifted by the
  first video frame's time so sound and picture stay together, and those past the last video frame are dropped.
  No audio track is invented for a silent input.
- 4:2:0 needs even width and height: an odd one is padded by repeating the last row or column (one pixel).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, BinaryIO

import av
import cv2
import numpy as np

from shared.images import encode_png
from shared.video import VideoError, VideoInfo, VideoSource, open_video, probe_video, rotation_of

# Audio codecs FFmpeg's MP4 muxer takes as they are; anything else is re-encoded to AAC.
MP4_AUDIO_CODECS = frozenset({"aac", "mp3", "opus", "flac", "alac", "ac3", "eac3"})
# libx264 constant-rate factor: 18 is visually lossless for stylized frames (x264's default is 23); "medium" preset.
DEFAULT_CRF = 18
DEFAULT_PRESET = "medium"


@dataclass(frozen=True)
class DecodedVideo:
    """A decoded clip: frames, their times, the rate to encode the result at, and the probe's description."""

    frames: np.ndarray  # uint8 (N, H, W, 3) RGB
    timestamps: np.ndarray  # float64 (N,) seconds from the first kept frame
    fps: float  # rate of the kept frames (the input's average rate, or fps_cap when it dropped frames)
    start_s: float  # presentation time of the first kept frame in the file (for aligning the audio)
    info: VideoInfo

    def __len__(self) -> int:
        return len(self.frames)


def decode_video(source: VideoSource, *, max_side: int | None = None, fps_cap: float | None = None,
                 max_frames: int | None = None, field: str = "video") -> DecodedVideo:
    """All frames of ``source`` (after ``fps_cap`` and ``max_frames``), resized so the long side is at most
    ``max_side`` (area filter; never enlarged). Raises ``VideoError`` for what ``probe_video`` refuses and for a
    file that breaks off or changes size mid-stream."""
    info = probe_video(source, field=field)
    times, frames = [], []
    for t, rgb in iter_frames(source, max_side=max_side, fps_cap=fps_cap, field=field):
        times.append(t)
        frames.append(rgb)
        if max_frames is not None and len(frames) >= max_frames:
            break
    stack = np.stack(frames)
    start = times[0]
    rate = info.fps if fps_cap is None or info.fps <= fps_cap else float(fps_cap)
    return DecodedVideo(frames=stack, timestamps=np.asarray(times) - start, fps=rate, start_s=start, info=info)


def iter_frames(source: VideoSource, *, max_side: int | None = None, fps_cap: float | None = None,
                field: str = "video") -> Iterator[tuple[float, np.ndarray]]:
    """Stream ``(timestamp_s, rgb)`` pairs, one frame in memory at a time. ``fps_cap`` keeps a frame only when at
    least ``1 / fps_cap`` seconds have passed since the last kept one (a 30 fps clip capped at 10 keeps every
    third frame)."""
    if fps_cap is not None and fps_cap <= 0:
        raise ValueError(f"fps_cap must be positive, got {fps_cap}")
    with open_video(source, field=field) as (container, kind):
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame and slice threads inside FFmpeg's decoder
        size, next_slot, time_base = None, None, stream.time_base or Fraction(1, 1)
        count = 0
        try:
            for frame in container.decode(stream):
                t = float(frame.pts * time_base) if frame.pts is not None else count / float(stream.average_rate or 25)
                count += 1
                if next_slot is not None and t < next_slot - 1e-6:
                    continue
                if fps_cap is not None:
                    next_slot = (t if next_slot is None else next_slot) + 1.0 / fps_cap
                if size is None:
                    size = (frame.width, frame.height)
                elif (frame.width, frame.height) != size:
                    raise VideoError("corrupt_video", f"{field} changes frame size mid-stream ({size[0]}x{size[1]} "
                                     f"to {frame.width}x{frame.height}) at {t:.2f} s", field=field)
                rgb = rotate_display(frame.to_ndarray(format="rgb24"), rotation_of(frame))
                yield t, _shrink(rgb, max_side)
        except av.FFmpegError as exc:
            raise VideoError("corrupt_video", f"{field} stops decoding after {count} frames "
                             f"({type(exc).__name__}: {getattr(exc, 'strerror', None) or exc})", field=field) from None


def rotate_display(rgb: np.ndarray, degrees: int) -> np.ndarray:
    """Apply a display rotation of ``degrees`` counterclockwise (PyAV's ``frame.rotation`` convention; FFmpeg's
    command line auto-rotates the same way: -90 is a quarter turn clockwise)."""
    quarter = round(degrees / 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, k=quarter)) if quarter else rgb


def encode_mp4(frames: np.ndarray, fps: float | Fraction, *, audio_from: VideoSource | None = None,
               start_s: float = 0.0, out: str | os.PathLike | BinaryIO | None = None, crf: int = DEFAULT_CRF,
               preset: str = DEFAULT_PRESET) -> bytes | None:
    """H.264 MP4 of ``frames`` (uint8 (N, H, W, 3)) at ``fps``, with the first audio track of ``audio_from`` (the
    original upload) when it has one, starting at ``start_s`` in that file (``DecodedVideo.start_s``) and cut at the
    end of the video. Returns the bytes, or writes to ``out`` (path or binary file) and returns None."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"encode_mp4 needs uint8 frames (N, H, W, 3) with N >= 1, got {frames.dtype} {frames.shape}")
    rate = _rate(fps)
    if out is None or not isinstance(out, str | os.PathLike):
        # +faststart moves the index to the front by reopening the file by name once it is written, so it cannot
        # write to memory: go through a private temporary file and hand back its bytes.
        with tempfile.TemporaryDirectory(prefix="atelier-mp4-") as scratch:
            path = os.path.join(scratch, "out.mp4")
            encode_mp4(frames, rate, audio_from=audio_from, start_s=start_s, out=path, crf=crf, preset=preset)
            with open(path, "rb") as handle:
                data = handle.read()
        if out is None:
            return data
        out.write(data)
        return None
    target = os.fspath(out)
    height, width = frames.shape[1] + frames.shape[1] % 2, frames.shape[2] + frames.shape[2] % 2
    end_s = len(frames) / float(rate)
    with av.open(target, mode="w", format="mp4", options={"movflags": "+faststart"}) as output:
        video = output.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"crf": str(crf), "preset": preset}
        # One time base tick per frame: frame i is shown at i / fps exactly.
        video.codec_context.time_base = 1 / rate
        audio: list[tuple[float, Any]] = []
        if audio_from is not None:
            with open_video(audio_from) as (source, _kind):
                if source.streams.audio:
                    audio = _audio_packets(source, source.streams.audio[0], output, start_s=start_s, end_s=end_s)
        # Interleave by time as we go (each audio packet after the video frame it accompanies), so the muxer never
        # holds the whole video waiting for audio.
        pending = iter(audio)
        next_audio = next(pending, None)
        for index, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(_even(rgb), format="rgb24")
            frame.pts = index
            frame.time_base = 1 / rate
            output.mux(video.encode(frame))
            while next_audio is not None and next_audio[0] <= (index + 1) / rate:
                output.mux(next_audio[1])
                next_audio = next(pending, None)
        output.mux(video.encode(None))
        while next_audio is not None:
            output.mux(next_audio[1])
            next_audio = next(pending, None)
    return None


def poster_png(frames: np.ndarray, index: int | None = None) -> bytes:
    """PNG of one frame of ``frames`` (N, H, W, 3), or of a single (H, W, 3) frame. Default: the middle frame, which
    shows the style better than a first frame that is often a fade-in or a title."""
    frames = np.asarray(frames)
    if frames.ndim == 3:
        return encode_png(frames)
    return encode_png(frames[len(frames) // 2 if index is None else index])


# -- internals ---------------------------------------------------------------------------------------------------


def _rate(fps: float | Fraction) -> Fraction:
    if float(fps) <= 0 or float(fps) > 1000:
        raise ValueError(f"fps must be within (0, 1000], got {fps}")
    # 29.97 and friends: the NTSC rates are 30000/1001 etc.; limit_denominator(1001) recovers them from floats.
    return Fraction(fps).limit_denominator(1001)


def _even(rgb: np.ndarray) -> np.ndarray:
    pad_y, pad_x = rgb.shape[0] % 2, rgb.shape[1] % 2
    if pad_y or pad_x:
        rgb = np.pad(rgb, ((0, pad_y), (0, pad_x), (0, 0)), mode="edge")
    return np.ascontiguousarray(rgb)


def _shrink(rgb: np.ndarray, max_side: int | None) -> np.ndarray:
    if max_side is None or max(rgb.shape[:2]) <= max_side:
        return rgb
    scale = max_side / max(rgb.shape[:2])
    size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _audio_packets(container: Any, audio_in: Any, output: Any, *, start_s: float,
                   end_s: float) -> list[tuple[float, Any]]:
    """The audio of ``container`` between ``start_s`` and ``start_s + end_s``, shifted to start at 0, as packets of a
    new stream of ``output``, each with its time in seconds: the source's own packets when MP4 takes its codec,
    else AAC re-encoded from them. Audio is small next to video (AAC at 128 kb/s is 1 MB a minute), so holding
    it in memory is fine."""
    ctx = audio_in.codec_context
    remux = ctx.name in MP4_AUDIO_CODECS
    if remux:
        audio_out = output.add_stream_from_template(audio_in)
    else:
        audio_out = output.add_stream("aac", rate=ctx.sample_rate, layout=ctx.layout.name if ctx.layout else "stereo")
    time_base = audio_in.time_base
    shift = int(round(start_s / time_base))
    stop = int(round((start_s + end_s) / time_base))
    packets: list[Any] = []
    samples = 0
    resampler = None if remux else av.AudioResampler(format=audio_out.codec_context.format.name,
                                                     layout=audio_out.codec_context.layout.name,
                                                     rate=audio_out.codec_context.sample_rate)
    for packet in container.demux(audio_in):
        if packet.size == 0 or packet.pts is None:
            continue
        if packet.pts >= stop:
            break
        # Before the first kept video frame: dropped. (Not when we start at 0: AAC's priming packet has a negative
        # time stamp and the decoder needs it.)
        if shift > 0 and packet.pts + (packet.duration or 0) <= shift:
            continue
        if remux:
            packet.pts -= shift
            if packet.dts is not None:
                packet.dts -= shift
            packet.stream = audio_out
            packets.append(packet)
            continue
        for decoded in ctx.decode(packet):
            decoded.pts = None  # renumbered below, from 0
            for piece in resampler.resample(decoded):
                samples = _encode_audio(audio_out, piece, samples, packets)
    if not remux:
        for piece in resampler.resample(None):
            samples = _encode_audio(audio_out, piece, samples, packets)
        packets.extend(audio_out.encode(None))
    return [(float(p.pts * p.time_base) if p.pts is not None and p.time_base else 0.0, p) for p in packets]


def _encode_audio(stream: Any, piece: Any, samples: int, packets: list[Any]) -> int:
    """Encode one resampled audio frame, numbered by samples since the start; returns the new sample count."""
    rate = stream.codec_context.sample_rate
    piece.pts, piece.time_base = samples, Fraction(1, rate)
    packets.extend(stream.encode(piece))
    return samples + piece.samples
