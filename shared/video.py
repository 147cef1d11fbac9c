"""Probing uploaded videos (PyAV), shared by the API, the worker and the CLI: the numbers the door checks.

``probe_video(source, ...)`` answers, cheaply and without decoding more than one frame: container, codec, width,
height, frame rate, frame count, duration, audio, byte size. It refuses what is not a video we accept and what is
broken, and applies the limits the caller passes. No TensorFlow, no OpenCV: the API imports this module
(it needs ``av``, the PyAV wheel, which bundles FFmpeg).

What we accept, and why that way:

- Containers are recognised by their **own signature, before FFmpeg sees the bytes**, and the matching demuxer is
  forced (``format=``). FFmpeg's probing would otherwise pick any of its ~300 demuxers, including ones that open
  other files or URLs named inside the upload (HLS and concat playlists) and image demuxers that happily read a
  PNG as a one-frame "video". Accepted: ISO base media (MP4, MOV; FFmpeg's ``mov`` demuxer, which leaves external
  data references off by default), EBML (WebM, and Matroska which is the same demuxer) and GIF.
- Video codecs are a short allow-list of what cameras, phones and browsers produce; decoders are attack surface.
- Frame count and duration are **measured** by demuxing every packet of the video stream (reading, not decoding),
  not taken from the header, which a hostile or broken file can get wrong: a header may declare one second and
  carry an hour. Demuxing stops as soon as a limit is passed.
- The first frame is decoded, so a file whose header parses but whose pictures do not is refused here, and its
  decoded size (not only the declared one) is checked against the pixel limit.

Errors (``shared.errors``; the message names the value and the limit):

- ``VideoError`` (415, an ``ImageError``): ``unsupported_media_type`` for empty input, not a container we accept
  (random bytes, a PNG renamed .mp4), no video stream, a codec outside ``ALLOWED_VIDEO_CODECS``;
  ``corrupt_video`` for a recognised container that is broken or truncated (as images use ``corrupt_image``).
- ``TooLarge`` (413) ``video_too_large``: more bytes than ``max_bytes``, or a frame of more than ``max_pixels``.
- ``ParamError`` (422) ``video_too_long`` (seconds over ``max_duration_s``), ``video_too_many_frames`` (frames
  over ``max_frames``). 413 is for what is too big to take in at all; duration and frames are limits on the work
  asked for, parameters of the job in effect, as the engine's size bounds are 422.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any, BinaryIO

from shared.errors import ImageError, ParamError, TooLarge

VideoSource = bytes | bytearray | memoryview | str | os.PathLike


class VideoError(ImageError):
    """An upload is not a video we accept, or is broken (415). An ``ImageError``, so the API maps it the same way."""

    default_code = "unsupported_media_type"


# Decoders we let run on uploads: H.264/H.265 (cameras, phones), VP8/VP9/AV1 (WebM, browsers), MPEG-4 part 2
# (old cameras), ProRes and Motion JPEG (editing, some cameras), GIF.
ALLOWED_VIDEO_CODECS: tuple[str, ...] = ("h264", "hevc", "vp8", "vp9", "av1", "mpeg4", "prores", "mjpeg", "gif")
# Containers, by the name we report; the value is the FFmpeg demuxer we force for it.
DEMUXERS: dict[str, str] = {"mp4": "mov", "mov": "mov", "webm": "matroska", "matroska": "matroska", "gif": "gif"}
ACCEPTED = "MP4/MOV/WebM/GIF"
CONTENT_TYPES = {"mp4": "video/mp4", "mov": "video/quicktime", "webm": "video/webm", "matroska": "video/x-matroska",
                 "gif": "image/gif"}

# Top-level ISO base media boxes a file may start with (ftyp in anything modern; old QuickTime files start with
# moov/mdat/wide/free/skip).
_BMFF_FIRST_BOXES = (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
# Signatures of things people upload by mistake, so the refusal can say what the file is.
_OTHER_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"BM", "a BMP image"),
                     (b"%PDF", "a PDF document"), (b"PK\x03\x04", "a ZIP archive"), (b"ID3", "an MP3 file"),
                     (b"#EXTM3U", "an M3U/HLS playlist"), (b"ffconcat", "an FFmpeg concat script"))


@dataclass(frozen=True)
class VideoInfo:
    """What the door needs to know about an accepted video. Sizes are as displayed (rotation applied)."""

    container: str  # "mp4" | "mov" | "webm" | "matroska" | "gif"
    video_codec: str  # FFmpeg decoder name, one of ALLOWED_VIDEO_CODECS
    width: int
    height: int
    fps: float  # average frame rate (the rate we encode the result at)
    frame_count: int  # packets of the video stream, counted
    duration_s: float  # from the first frame's timestamp to the end of the last one, measured
    has_audio: bool
    audio_codec: str | None
    rotation: int  # degrees counterclockwise the display matrix asks for (0, 90, 180, -90)
    bytes: int

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.container]

    @property
    def pixels(self) -> int:
        return self.width * self.height

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sniff_container(head: bytes) -> str | None:
    """The container ``head`` (the first bytes of a file, 64 are enough) starts like, or None."""
    if len(head) >= 8 and head[4:8] in _BMFF_FIRST_BOXES:
        # The major brand 'qt  ' marks QuickTime; anything else in ISO base media we call mp4 (same demuxer).
        return "mov" if head[4:8] != b"ftyp" or head[8:12] == b"qt  " else "mp4"
    if head.startswith(_EBML_MAGIC):
        # The EBML header names its DocType near the start: "webm" or "matroska".
        return "webm" if b"webm" in head[:64] else "matroska"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    return None


def probe_video(source: VideoSource, *, max_bytes: int | None = None, max_pixels: int | None = None,
                max_duration_s: float | None = None, max_frames: int | None = None,
                field: str = "video") -> VideoInfo:
    """Check ``source`` (bytes or a path) and describe it, or raise (module docstring). Limits left None are not
    applied. Reads the file once (packets, not pictures) and decodes one frame."""
    size = _byte_size(source)
    if size == 0:
        raise VideoError("unsupported_media_type", f"{field} is empty (0 bytes); expected an {ACCEPTED} video",
                         field=field)
    if max_bytes is not None and size > max_bytes:
        raise TooLarge("video_too_large", f"{field} is {size} bytes; allowed: at most {max_bytes} bytes", field=field)
    with open_video(source, field=field) as (container, kind):
        stream = _video_stream(container, kind, field)
        codec = stream.codec_context.name
        declared_w, declared_h = stream.codec_context.width, stream.codec_context.height
        _check_pixels(declared_w, declared_h, max_pixels, field, "declares")
        count, duration, first = _scan(container, stream, kind, field, max_frames=max_frames,
                                       max_duration_s=max_duration_s)
        _check_pixels(first.width, first.height, max_pixels, field, "has")
        rotation = _rotation(first)
        fps = _average_fps(stream, count, duration)
        audio = container.streams.audio[0] if container.streams.audio else None
        width, height = (first.height, first.width) if rotation in (90, -90) else (first.width, first.height)
        return VideoInfo(container=kind, video_codec=codec, width=width, height=height, fps=fps, frame_count=count,
                         duration_s=duration, has_audio=audio is not None,
                         audio_codec=audio.codec_context.name if audio is not None else None, rotation=rotation,
                         bytes=size)


@contextmanager
def open_video(source: VideoSource, *, field: str = "video") -> Iterator[tuple[Any, str]]:
    """Open ``source`` with the demuxer its signature names (never FFmpeg's own guess): yields (container, kind).
    For the worker's decoder too, so both refuse the same files the same way."""
    import av  # here, not at module level: importing shared.video must not need the video extra until it is used

    kind = _sniff_source(source, field)
    handle: BinaryIO | str = io.BytesIO(bytes(source)) if isinstance(source, bytes | bytearray | memoryview) \
        else os.fspath(source)
    try:
        container = av.open(handle, mode="r", format=DEMUXERS[kind])
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise VideoError("corrupt_video", f"{field} starts like {_a(kind)} file but its header is broken or "
                         f"truncated ({_why(exc)})", field=field) from None
    try:
        yield container, kind
    finally:
        container.close()


def rotation_of(frame: Any) -> int:
    """Display rotation of a decoded PyAV frame in degrees counterclockwise, snapped to a multiple of 90."""
    return _rotation(frame)


# -- internals ---------------------------------------------------------------------------------------------------


def _byte_size(source: VideoSource) -> int:
    if isinstance(source, bytes | bytearray | memoryview):
        return len(source)
    try:
        return os.path.getsize(source)
    except OSError as exc:
        raise VideoError("unsupported_media_type", f"cannot read {os.fspath(source)!r} ({exc.strerror})") from None


def _sniff_source(source: VideoSource, field: str) -> str:
    if isinstance(source, bytes | bytearray | memoryview):
        head = bytes(source[:64])
    else:
        with open(source, "rb") as handle:
            head = handle.read(64)
    kind = sniff_container(head)
    if kind == "gif" and _last_byte(source) != 0x3B:
        # Every GIF ends with the trailer byte ';' (GIF89a spec, section 27); FFmpeg decodes a cut-off one silently.
        raise VideoError("corrupt_video", f"{field} is a GIF file without its trailer (truncated file?)", field=field)
    if kind is None:
        what = next((name for magic, name in _OTHER_SIGNATURES if head.startswith(magic)), "not a recognised video")
        raise VideoError("unsupported_media_type", f"{field} is {what}; expected an {ACCEPTED} video", field=field)
    return kind


def _last_byte(source: VideoSource) -> int | None:
    if isinstance(source, bytes | bytearray | memoryview):
        return source[-1] if len(source) else None
    with open(source, "rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1)[0]


def _video_stream(container: Any, kind: str, field: str) -> Any:
    if not container.streams.video:
        raise VideoError("unsupported_media_type", f"{field} is {_a(kind)} file without a video stream",
                         field=field)
    stream = container.streams.video[0]
    codec = stream.codec_context.name if stream.codec_context is not None else None
    if codec not in ALLOWED_VIDEO_CODECS:
        raise VideoError("unsupported_media_type", f"{field} is {codec or 'an unknown'} video; allowed codecs: "
                         f"{', '.join(ALLOWED_VIDEO_CODECS)}", field=field)
    return stream


def _check_pixels(width: int, height: int, max_pixels: int | None, field: str, verb: str) -> None:
    if max_pixels is not None and width * height > max_pixels:
        raise TooLarge("video_too_large", f"{field} {verb} frames of {width}x{height} = {width * height} pixels; "
                       f"allowed: at most {max_pixels} pixels per frame", field=field)


def _scan(container: Any, stream: Any, kind: str, field: str, *, max_frames: int | None,
          max_duration_s: float | None) -> tuple[int, float, Any]:
    """One pass over the video packets from the start of the file: count them, measure the span of their
    timestamps, and feed the first ones to the decoder until it gives the first frame (H.264 with B-frames may
    need several packets before it gives any). Returns (count, duration_s, first frame)."""
    import av

    time_base = stream.time_base or Fraction(1, 1)
    count, start, end, first = 0, None, None, None
    try:
        for packet in container.demux(stream):
            if packet.size == 0:  # the empty packet PyAV yields at the end of the stream
                continue
            count += 1
            pts = packet.pts if packet.pts is not None else packet.dts
            if pts is not None:
                begin = float(pts * time_base)
                finish = float((pts + max(packet.duration or 0, 0)) * time_base)
                start = begin if start is None else min(start, begin)
                end = finish if end is None else max(end, finish)
            if max_frames is not None and count > max_frames:
                raise ParamError("video_too_many_frames", f"{field} has more than {max_frames} frames; allowed: at "
                                 f"most {max_frames} frames", field=field)
            if max_duration_s is not None and start is not None and end - start > max_duration_s:
                raise ParamError("video_too_long", f"{field} lasts at least {end - start:.2f} s; allowed: at most "
                                 f"{max_duration_s:g} s", field=field)
            if first is None:
                first = _decode_packet(stream, packet, kind, field)
        if first is None:  # a decoder that holds frames back until the end: drain it
            first = _decode_packet(stream, None, kind, field)
    except av.FFmpegError as exc:
        raise VideoError("corrupt_video", f"{field} is {_a(kind)} file that breaks off after {count} frames "
                         f"({_why(exc)})", field=field) from None
    declared = stream.frames or 0
    if declared and count < declared:
        # The index (MP4's sample table) promised more samples than the file holds: truncated.
        raise VideoError("corrupt_video", f"{field} declares {declared} frames but only {count} are present "
                         "(truncated file?)", field=field)
    stated = _stated_track_seconds(stream) if kind in ("webm", "matroska") else None
    if stated is not None and start is not None:
        # FFmpeg's Matroska muxer, and most others, tag each track with its DURATION (streaming writers such as
        # browsers' MediaRecorder leave it out); a video track that ends well before it was cut short. Tolerance:
        # two frames (timestamps are rounded to milliseconds) or 50 ms. The video track's own figure, not the
        # file's, because a longer audio track is legitimate.
        if end < stated - max(2 * (end - start) / max(count, 1), 0.05):
            raise VideoError("corrupt_video", f"{field} states {stated:.2f} s of video but its frames end at "
                             f"{end:.2f} s (truncated file?)", field=field)
    if count == 0 or first is None:
        raise VideoError("corrupt_video", f"{field} is {_a(kind)} file with no decodable frame", field=field)
    duration = 0.0 if start is None else max(end - start, 0.0)
    return count, duration, first


def _stated_track_seconds(stream: Any) -> float | None:
    """A Matroska track's DURATION tag ("HH:MM:SS.nnnnnnnnn") in seconds, or None."""
    text = (stream.metadata or {}).get("DURATION") or (stream.metadata or {}).get("duration")
    try:
        hours, minutes, seconds = str(text).split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except (TypeError, ValueError):
        return None


def _decode_packet(stream: Any, packet: Any, kind: str, field: str) -> Any:
    import av

    try:
        frames = stream.codec_context.decode(packet)
    except (av.FFmpegError, ValueError) as exc:
        raise VideoError("corrupt_video", f"{field} is {_a(kind)} file whose first frame does not decode "
                         f"({_why(exc)})", field=field) from None
    return frames[0] if frames else None


def _average_fps(stream: Any, count: int, duration: float) -> float:
    """The stream's average rate when it states one we believe, else frames over measured duration."""
    rate = stream.average_rate or stream.guessed_rate
    if rate and 0 < float(rate) <= 1000:
        return float(rate)
    if duration > 0:
        return count / duration
    return 25.0  # a single frame without timing: any rate shows it; 25 is FFmpeg's own default


def _rotation(frame: Any) -> int:
    try:
        degrees = float(getattr(frame, "rotation", 0) or 0)
    except (TypeError, ValueError):
        return 0
    quarter = round(degrees / 90.0) % 4
    return (0, 90, 180, -90)[quarter]


def _why(exc: BaseException) -> str:
    """FFmpeg's own words for a failure, without PyAV's errno and file name decorations."""
    text = getattr(exc, "strerror", None) or str(exc)
    text = str(text).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _a(kind: str) -> str:
    """'an MP4 file', 'a GIF file', 'a WebM file', for messages."""
    name = {"webm": "WebM", "matroska": "Matroska"}.get(kind, kind.upper())
    return f"{'an' if name[0] in 'AEFHILMNORSX' else 'a'} {name}"
