"""Render a test clip with known motion from one of the repository's own pictures (no video ships here).

A virtual camera pans and zooms across ``examples/content/<picture>.jpg`` (``worker.video.synthetic.pan_zoom_clip``),
so the true optical flow between consecutive frames is known exactly; it is written beside the clip. Used by the
video benchmark and by hand; the tests render their own, smaller clips in memory.

    .venv/bin/python bench/make_test_clip.py                                  # cat, 48 frames, 256x144, 24 fps
    .venv/bin/python bench/make_test_clip.py --size 96x64 --frames 24 --tone 440 --gif --out /tmp/clip
    .venv/bin/python bench/make_test_clip.py --time-flow                      # also: DIS seconds per frame

Writes ``<out>/<picture>_pan.mp4`` (H.264, plus an AAC sine tone with ``--tone HZ`` to test the audio
pass-through), ``<out>/<picture>_pan_flow.npy`` (float32 (H, W, 2), the forward flow, the same for every pair:
``u(p) = (zoom - 1)(p - c) + (dx, dy)``), ``<out>/<picture>_pan.json`` (the parameters) and, with ``--gif``, a GIF.
``--time-flow`` runs DIS (medium) on the frames and prints milliseconds per flow field and the mean endpoint error
against the true flow (8 px in from the borders). Options: ``--picture``, ``--frames``, ``--size WxH``, ``--fps``,
``--dx``, ``--dy``, ``--zoom``, ``--out`` (default ``bench/results/video``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: the repository's packages first

from worker.video.synthetic import encode_test_clip, pan_zoom_clip  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--picture", default="chelsea_cat", help="a name from examples/content (without .jpg)")
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--size", default="256x144", help="WIDTHxHEIGHT, even numbers (4:2:0 video)")
    parser.add_argument("--fps", type=float, default=24.0)
    parser.add_argument("--dx", type=float, default=1.5, help="content motion in px per frame (+ = right)")
    parser.add_argument("--dy", type=float, default=-0.5, help="content motion in px per frame (+ = down)")
    parser.add_argument("--zoom", type=float, default=1.005, help="magnification per frame (> 1: moving in)")
    parser.add_argument("--tone", type=float, default=None, metavar="HZ", help="add a sine audio track")
    parser.add_argument("--gif", action="store_true", help="also write an animated GIF")
    parser.add_argument("--time-flow", action="store_true", help="time DIS on the frames and check its error")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "video")
    args = parser.parse_args(argv)

    source = ROOT / "examples" / "content" / f"{args.picture}.jpg"
    if not source.is_file():
        names = sorted(p.stem for p in (ROOT / "examples" / "content").glob("*.jpg"))
        parser.error(f"no picture {args.picture!r}; valid: {', '.join(names)}")
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        parser.error(f"--size must be WIDTHxHEIGHT, got {args.size!r}")
    if width % 2 or height % 2:
        parser.error(f"--size needs even numbers for 4:2:0 video, got {width}x{height}")

    image = np.asarray(Image.open(source).convert("RGB"))
    frames, flow = pan_zoom_clip(image, args.frames, (height, width), args.dx, args.zoom, dy_px_per_frame=args.dy)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"{args.picture}_pan"
    stem.with_suffix(".mp4").write_bytes(encode_test_clip(frames, args.fps, container="mp4", tone_hz=args.tone))
    np.save(stem.with_name(stem.name + "_flow.npy"), flow[0] if len(flow) else np.zeros((height, width, 2)))
    meta = {"picture": source.name, "frames": args.frames, "width": width, "height": height, "fps": args.fps,
            "dx_px_per_frame": args.dx, "dy_px_per_frame": args.dy, "zoom_per_frame": args.zoom,
            "tone_hz": args.tone}
    if args.gif:
        stem.with_suffix(".gif").write_bytes(encode_test_clip(frames, args.fps, container="gif"))
    if args.time_flow:
        meta["dis_medium"] = time_flow(frames, flow)
    stem.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps({"written": str(stem.with_suffix(".mp4")), **meta}))
    return 0


def time_flow(frames: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Milliseconds per DIS flow field (medium, warm instance; median over the pairs) and the mean endpoint error
    against the true flow, 8 px in from the borders."""
    from worker.engine.flow import FlowEstimator, consistency_mask, endpoint_error

    estimator = FlowEstimator("medium")
    estimator(frames[0], frames[1])  # first call sizes DIS's buffers
    times, errors, mask_times = [], [], []
    for k in range(len(frames) - 1):
        start = time.perf_counter()
        forward = estimator(frames[k], frames[k + 1])
        times.append(time.perf_counter() - start)
        backward = estimator(frames[k + 1], frames[k])
        start = time.perf_counter()
        consistency_mask(backward, forward)
        mask_times.append(time.perf_counter() - start)
        errors.append(endpoint_error(forward, truth[k], border=8))
    return {"ms_per_flow": round(1000 * float(np.median(times)), 2),
            "ms_per_mask": round(1000 * float(np.median(mask_times)), 2),
            "mean_epe_px": round(float(np.mean(errors)), 4), "max_epe_px": round(float(np.max(errors)), 4)}


if __name__ == "__main__":
    raise SystemExit(main())
