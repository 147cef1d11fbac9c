"""Test clips with known motion, rendered from one still picture (no video ships with the repository).

``pan_zoom_clip`` moves a virtual camera across a photo: each frame is an affine resampling of the picture, so the
motion between consecutive frames is known exactly. With ``c`` the frame centre ``((W-1)/2, (H-1)/2)`` in pixel
coordinates (pixel centres at integers, the convention of ``cv2.remap`` and ``cv2.warpAffine``), the scene point
seen at pixel ``p`` of frame ``k`` is seen at

    p' = c + zoom * (p - c) + d          in frame k + 1,    d = (dx, dy)

so the forward flow is the affine field ``u(p) = (zoom - 1)(p - c) + d``, the same for every pair, and the backward
flow (frame k+1 to frame k) is ``b(p') = (p' - c - d) / zoom - (p' - c)``. ``dx > 0`` means the picture moves right
in the frame (the camera pans left); ``zoom > 1`` magnifies (the camera moves in), so content leaves at the borders
and no new content enters: in a zoom-in only the borders are occluded.

Frame k samples the picture at ``s_k(p) = a + (p - c) / z_k + t_k`` with ``z_k = zoom**k`` and
``t_{k+1} = t_k - d / z_{k+1}``; substituting gives the rule above. The picture is first resized (area filter, so
no aliasing) so that one picture pixel is one frame pixel at frame 0 and the whole camera path lies inside it.

``moving_patch_clip`` slides a square cut from one place of the picture over the static rest: a motion boundary and
real occlusion/disocclusion, for testing the consistency mask. ``encode_test_clip`` writes frames to MP4/MOV/WebM
(with an optional sine tone as an audio track) or GIF, for the decode and audio pass-through tests.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction

import cv2
import numpy as np


def pan_zoom_clip(image: np.ndarray, frames: int, size: tuple[int, int] | int, dx_px_per_frame: float = 1.0,
                  zoom_per_frame: float = 1.0, *, dy_px_per_frame: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Render ``frames`` frames of ``size`` (``(height, width)``, or one int for a square) panning by
    ``(dx, dy)`` pixels and zooming by ``zoom_per_frame`` per frame across ``image`` (uint8 RGB).

    Returns ``(clip, true_flow)``: uint8 ``(frames, H, W, 3)`` and float32 ``(frames - 1, H, W, 2)``, the forward
    flow from frame k to frame k+1 as (x, y) displacements in pixels (identical for every k)."""
    if frames < 1:
        raise ValueError(f"frames must be at least 1, got {frames}")
    if not 0.5 <= zoom_per_frame <= 2.0:
        raise ValueError(f"zoom_per_frame must be within [0.5, 2], got {zoom_per_frame}")
    height, width = (size, size) if isinstance(size, int) else size
    image = _rgb(image)
    d = np.array([dx_px_per_frame, dy_px_per_frame], dtype=np.float64)
    centre = np.array([(width - 1) / 2.0, (height - 1) / 2.0])

    # Camera path in "frame-0 pixels": offsets t_k and scales 1/z_k, then the picture extent it needs.
    offsets = [np.zeros(2)]
    for k in range(1, frames):
        offsets.append(offsets[-1] - d / zoom_per_frame**k)
    scales = [zoom_per_frame**-k for k in range(frames)]
    half = np.array([width / 2.0, height / 2.0])
    low = np.min([t - half * s for t, s in zip(offsets, scales, strict=True)], axis=0)
    high = np.max([t + half * s for t, s in zip(offsets, scales, strict=True)], axis=0)
    need = high - low + 4.0  # a two-pixel margin for bilinear taps at the edge
    work, origin = _fit(image, need)
    # a: where the picture point seen at the frame centre at k = 0 lies, so the path is centred in `work`.
    anchor = origin - low + 2.0

    clip = np.empty((frames, height, width, 3), dtype=np.uint8)
    for k in range(frames):
        s, t = scales[k], offsets[k]
        # dst(p) = work(M p): M = [s I | a + t - s c], WARP_INVERSE_MAP because M maps frame to picture.
        matrix = np.array([[s, 0.0, anchor[0] + t[0] - s * centre[0]],
                           [0.0, s, anchor[1] + t[1] - s * centre[1]]])
        clip[k] = cv2.warpAffine(work, matrix, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                 borderMode=cv2.BORDER_REFLECT_101)
    flow = pan_zoom_flow((height, width), dx_px_per_frame, zoom_per_frame, dy_px_per_frame=dy_px_per_frame)
    return clip, np.broadcast_to(flow, (max(frames - 1, 0), height, width, 2)).copy()


def pan_zoom_flow(size: tuple[int, int], dx_px_per_frame: float, zoom_per_frame: float, *,
                  dy_px_per_frame: float = 0.0, backward: bool = False) -> np.ndarray:
    """The exact flow of ``pan_zoom_clip`` between consecutive frames, float32 ``(H, W, 2)``: forward (frame k to
    k+1) by default, backward (frame k+1 to k) with ``backward=True``."""
    height, width = size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    rel = np.stack([xs - (width - 1) / 2.0, ys - (height - 1) / 2.0], axis=-1)
    d = np.array([dx_px_per_frame, dy_px_per_frame])
    if backward:
        flow = (rel - d) / zoom_per_frame - rel
    else:
        flow = (zoom_per_frame - 1.0) * rel + d
    return flow.astype(np.float32)


@dataclass(frozen=True)
class PatchClip:
    """``moving_patch_clip``'s output: the frames, the exact forward and backward flows between consecutive frames
    and, per pair, where frame k's pixel is hidden in frame k+1 (``occluded``, in frame k) and where frame k+1's
    pixel was hidden in frame k (``disoccluded``, in frame k+1)."""

    frames: np.ndarray  # uint8 (N, H, W, 3)
    forward: np.ndarray  # float32 (N-1, H, W, 2)
    backward: np.ndarray  # float32 (N-1, H, W, 2)
    occluded: np.ndarray  # bool (N-1, H, W)
    disoccluded: np.ndarray  # bool (N-1, H, W)


def moving_patch_clip(image: np.ndarray, frames: int, size: int, patch: int, velocity: tuple[int, int]) -> PatchClip:
    """A ``patch`` x ``patch`` square cut from the opposite corner of ``image`` slides by ``velocity`` (integer
    (vx, vy) pixels per frame) over the static rest of the picture, starting near the top left."""
    base = cv2.resize(_rgb(image), (size, size), interpolation=cv2.INTER_AREA)
    texture = base[size - patch:, size - patch:][:, ::-1].copy()  # mirrored, so it differs from what it covers
    vx, vy = velocity
    clip = np.empty((frames, size, size, 3), dtype=np.uint8)
    inside = np.zeros((frames, size, size), dtype=bool)
    for k in range(frames):
        x0, y0 = 2 + k * vx, 2 + k * vy
        if not (0 <= x0 and x0 + patch <= size and 0 <= y0 and y0 + patch <= size):
            raise ValueError(f"the patch leaves the {size}px frame at frame {k}; use fewer frames or a lower velocity")
        clip[k] = base
        clip[k, y0:y0 + patch, x0:x0 + patch] = texture
        inside[k, y0:y0 + patch, x0:x0 + patch] = True
    forward = np.zeros((frames - 1, size, size, 2), dtype=np.float32)
    backward = np.zeros_like(forward)
    forward[inside[:-1]] = (vx, vy)
    backward[inside[1:]] = (-vx, -vy)
    # Background of frame k that the patch covers in frame k+1; background of frame k+1 the patch covered in k.
    occluded = ~inside[:-1] & inside[1:]
    disoccluded = ~inside[1:] & inside[:-1]
    return PatchClip(clip, forward, backward, occluded, disoccluded)


def encode_test_clip(frames: np.ndarray, fps: float | Fraction, *, container: str = "mp4",
                     tone_hz: float | None = None, sample_rate: int = 48_000, audio_codec: str | None = None) -> bytes:
    """Bytes of a small clip of ``frames`` (uint8 (N, H, W, 3), even H and W for the 4:2:0 codecs) at ``fps``.

    ``container``: "mp4" or "mov" (H.264 + AAC), "webm" (VP9 + Opus) or "gif" (Pillow's encoder; no audio).
    ``tone_hz``: add a sine audio track of that pitch lasting as long as the video, to test the pass-through;
    ``audio_codec`` overrides the container's usual one (e.g. "pcm_s16le" in MOV, which MP4 cannot carry as is)."""
    frames = np.asarray(frames)
    if container == "gif":
        if tone_hz is not None:
            raise ValueError("a GIF has no audio track")
        return _gif(frames, fps)
    import av

    codecs = {"mp4": ("libx264", "aac"), "mov": ("libx264", "aac"), "webm": ("libvpx-vp9", "libopus")}
    if container not in codecs:
        raise ValueError(f"container must be one of mp4, mov, webm, gif; got {container!r}")
    video_codec, usual_audio = codecs[container]
    audio_codec = audio_codec or usual_audio
    rate = Fraction(fps).limit_denominator(1001)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container) as out:
        video = out.add_stream(video_codec, rate=rate)
        video.width, video.height = frames.shape[2], frames.shape[1]
        video.pix_fmt = "yuv420p"
        # Test clips should survive the codec nearly unchanged: a low CRF (near-lossless) for H.264 and VP9.
        video.options = {"crf": "12"} if video_codec == "libx264" else {"crf": "12", "b": "0", "deadline": "realtime"}
        audio = None
        if tone_hz is not None:
            audio_rate = 48_000 if audio_codec == "libopus" else sample_rate  # Opus runs at 48 kHz only
            audio = out.add_stream(audio_codec, rate=audio_rate, layout="mono")
        for index, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = index
            frame.time_base = 1 / rate
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if audio is not None:
            _sine(out, audio, tone_hz, seconds=len(frames) / float(rate))
    return buffer.getvalue()


def _sine(out, stream, tone_hz: float, *, seconds: float) -> None:
    import av

    rate = stream.codec_context.sample_rate
    total = int(round(seconds * rate))
    chunk = stream.codec_context.frame_size or 1024
    t = np.arange(total) / rate
    wave = (0.3 * np.sin(2 * np.pi * tone_hz * t)).astype(np.float32)
    fmt = stream.codec_context.format.name  # fltp for AAC, s16 for libopus and PCM
    if chunk <= 1:  # PCM encoders take frames of any size
        chunk = 1024
    if fmt.startswith("s16"):
        wave = np.round(wave * 32767).astype(np.int16)
    for start in range(0, total, chunk):
        piece = wave[start:start + chunk]
        if len(piece) < chunk:
            piece = np.pad(piece, (0, chunk - len(piece)))
        frame = av.AudioFrame.from_ndarray(piece[None, :], format=fmt, layout="mono")
        frame.sample_rate = rate
        frame.pts = start
        frame.time_base = Fraction(1, rate)
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


def _gif(frames: np.ndarray, fps: float | Fraction) -> bytes:
    from PIL import Image

    # GIF delays are in hundredths of a second; Pillow takes milliseconds and rounds to the nearest 10.
    delay_ms = int(round(1000.0 / float(fps)))
    images = [Image.fromarray(np.ascontiguousarray(rgb)) for rgb in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=delay_ms, loop=0)
    return buffer.getvalue()


def _rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected uint8 RGB (H, W, 3), got {image.dtype} {image.shape}")
    return image


def _fit(image: np.ndarray, need: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Resize ``image`` (keeping its aspect) so that it covers ``need`` = (width, height) pixels; returns the resized
    picture and the top-left corner of a centred ``need`` box in it."""
    h, w = image.shape[:2]
    scale = max(need[0] / w, need[1] / h)
    new_w, new_h = int(np.ceil(w * scale)), int(np.ceil(h * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    work = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    origin = np.array([(new_w - need[0]) / 2.0, (new_h - need[1]) / 2.0])
    return work, origin
