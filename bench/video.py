"""Video benchmark (issue 12's targets), one subcommand per measurement, side by side in one process.

    python bench/video.py optimize [--size 256 --frames 16 --iterations 30]   # temporal vs independent, 256 px
    python bench/video.py tune [--weights 0,0.03,0.1,0.3,1,3] [--content PATH]  # temporal_weight sweep, check clip
    python bench/video.py workers [--size 96 --frames 16 --segment-frames 8]  # 1 vs 2 workers through the service
    python bench/video.py fast --model M.atfs [--blends 0,0.3,0.5 --finetune-steps 20]  # bench/video_fast.py

Subcommands
- ``optimize``: a pan + zoom test clip rendered from a repository photo (``worker/video/synthetic.py``,
  ``--content``, default examples/content/chelsea_cat.jpg) at ``--size`` (long side), styled by the ``optimize``
  mode (``worker/engine/video.py``) with real VGG19 weights twice: with the temporal term at its default weight and
  independently (``temporal_weight=0``), **with the same iterations on every frame** (``later_iterations`` =
  ``iterations``: the flicker difference is the temporal term's and the warped start's, not fewer iterations').
  Reports Lai et al.'s warping error of both (DIS flow and consistency mask on the input frames), their ratio
  (target: temporal at most 0.5 of independent) and the seconds per frame; writes ``optimize.json`` under
  ``bench/results/video/`` and the side-by-side strip ``docs/video/optimize_strip.png`` (input, independent,
  temporal, and each mode's motion-compensated difference between consecutive frames).
- ``tune``: the clip the outside flicker check builds (a 96x64 horizontal pan of 3 px a frame, 16 frames at
  12 fps, H.264 in and out; ``--content`` should be the check's photo), styled at ``--size`` 96 with 30 iterations
  for each ``--weights`` value with the default later iterations, and scored both by Lai's warping error and by the
  check's own measure (backward DIS flow, out-of-frame mask only, per-channel mean, on the decoded H.264 output).
  Writes ``tune.json``.
- ``workers`` (``bench/video_workers.py``): the same clip through the whole service (``POST /v1/videos``) on a
  fresh ``atelier dev`` stack with 1 worker and with 2, warmed; wall seconds and the speedup. Writes
  ``workers.json``.

Extending: each subcommand is a ``cmd_<name>(args) -> dict`` plus its parser in ``SUBCOMMANDS``; the shared helpers
(clip making, flicker measures, JSON writing) are above them. Every record carries the load averages taken before
and after: the development machine has 2 cores shared with other sessions, so absolute times are upper bounds and
the ratios are between runs seconds apart.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere: `python bench/video.py`
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

EXAMPLES = ROOT / "examples"
RESULTS = ROOT / "bench" / "results" / "video"
FIGURES = ROOT / "docs" / "video"
DEFAULT_CONTENT = EXAMPLES / "content" / "chelsea_cat.jpg"
DEFAULT_STYLE = EXAMPLES / "style" / "vangogh_starry_night.jpg"
FLICKER_TARGET_RATIO = 0.5  # issue 12: temporal at least 50% lower than independent


# --- shared helpers -----------------------------------------------------------------------------------------------


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def load_image(path: Path) -> np.ndarray:
    from shared.images import load_rgb

    return load_rgb(Path(path).read_bytes(), field=str(path))


def weight_source() -> Any:
    """The real weights, found as the worker finds them (settings from the environment)."""
    from shared.settings import Settings
    from worker.weights_config import weight_source as source

    return source(Settings.from_env())


def shown(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)


def pan_zoom_test_clip(content: np.ndarray, frames: int, size_hw: tuple[int, int], dx: float,
                       zoom: float) -> np.ndarray:
    from worker.video.synthetic import pan_zoom_clip

    clip, _flow = pan_zoom_clip(content, frames, size_hw, dx, zoom)
    return clip


def check_clip(content: np.ndarray) -> np.ndarray:
    """The outside flicker check's clip, built as it builds it: the photo resized to 192x128, 16 crops of 96x64
    moving 3 px to the right per frame (the picture pans left), H.264 at 12 fps with libx264's defaults, decoded
    again the way the service decodes uploads."""
    import av
    from PIL import Image

    from worker.video.io import decode_video

    picture = np.asarray(Image.fromarray(content).resize((192, 128)))
    path = RESULTS / "check_clip.mp4"
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for t in range(16):
            crop = np.ascontiguousarray(picture[20:84, 8 + 3 * t: 104 + 3 * t])
            for packet in stream.encode(av.VideoFrame.from_ndarray(crop, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    frames = decode_video(path.read_bytes()).frames
    path.unlink()
    return frames


def h264_round_trip(frames: np.ndarray, fps: float) -> np.ndarray:
    """``frames`` through the service's own encoder (``encode_mp4``) and back, as the check reads the result."""
    from worker.video.io import decode_video, encode_mp4

    return decode_video(encode_mp4(frames, fps)).frames


def lai_warping_error(stylized: np.ndarray, originals: np.ndarray) -> float:
    from worker.engine.flow import warping_error_of

    return warping_error_of(stylized, originals)


def check_warping_error(stylized: np.ndarray, originals: np.ndarray) -> float:
    """The outside check's measure (shared/checks/video-flicker), reimplemented to tune against it: frame t-1's
    output warped onto frame t by the DIS flow t -> t-1 of the input, masked only where the sample falls outside
    the frame, squared difference averaged over visible pixels and the three channels, mean over the pairs."""
    import cv2

    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    errors = []
    for t in range(1, len(originals)):
        g0, g1 = (cv2.cvtColor(originals[i], cv2.COLOR_RGB2GRAY) for i in (t - 1, t))
        flow = dis.calc(g1, g0, None)
        h, w = g1.shape
        gx, gy = np.meshgrid(np.arange(w), np.arange(h))
        mx, my = (gx + flow[..., 0]).astype(np.float32), (gy + flow[..., 1]).astype(np.float32)
        o0 = cv2.resize(stylized[t - 1], (w, h)).astype(np.float32) / 255
        o1 = cv2.resize(stylized[t], (w, h)).astype(np.float32) / 255
        warped = cv2.remap(o0, mx, my, cv2.INTER_LINEAR)
        mask = ((mx >= 0) & (mx < w - 1) & (my >= 0) & (my < h - 1)).astype(np.float32)[..., None]
        errors.append(float((mask * (o1 - warped) ** 2).sum() / (3 * mask.sum())))
    return float(np.mean(errors))


def run_mode(frames: np.ndarray, style: np.ndarray, params: Any, temporal_weight: float,
             later_iterations: int | None, weights: Any) -> tuple[np.ndarray, dict[str, Any]]:
    from worker.engine.video import stylize_frames

    result = stylize_frames(frames, [style], params, temporal_weight=temporal_weight,
                            later_iterations=later_iterations, weights=weights)
    return result.frames, result.metrics


def summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """A run's metrics without the per-frame list's bulk (kept: iterations and seconds per frame)."""
    out = {k: v for k, v in metrics.items() if k != "per_frame"}
    out["per_frame_seconds"] = [round(f["seconds"], 3) for f in metrics["per_frame"]]
    out["per_frame_iterations_run"] = [f["iterations_run"] for f in metrics["per_frame"]]
    out["per_frame_final_losses"] = [f["losses"] for f in metrics["per_frame"]]
    return out


# --- optimize -----------------------------------------------------------------------------------------------------


def cmd_optimize(args: argparse.Namespace) -> dict[str, Any]:
    from shared.params import StyleParams
    from shared.video_params import DEFAULT_TEMPORAL_WEIGHT
    from worker.engine import images

    content, style = load_image(args.content), load_image(args.style)
    height = round(args.size * 9 / 16)
    frames = pan_zoom_test_clip(content, args.frames, (height, args.size), args.dx, args.zoom)
    params = StyleParams.from_mapping({"size": args.size, "iterations": args.iterations, "progress_every": 1000})
    weight = DEFAULT_TEMPORAL_WEIGHT if args.temporal_weight is None else args.temporal_weight
    weights = weight_source()
    # Warm-up: build the backbone and trace the steps at this size, so neither mode pays it in its timing.
    run_mode(frames[:2], style, params.replace(iterations=2), weight, 2, weights)
    run_mode(frames[:1], style, params.replace(iterations=2), 0.0, None, weights)

    record: dict[str, Any] = {
        "kind": "optimize", "command": " ".join(sys.argv), "content": shown(args.content), "style": shown(args.style),
        "clip": {"frames": args.frames, "size_hw": [height, args.size], "dx_px_per_frame": args.dx,
                 "zoom_per_frame": args.zoom},
        "params": {"size": args.size, "iterations": args.iterations, "later_iterations": args.iterations,
                   "temporal_weight": weight},
        "load_before": load_average(),
    }
    runs: dict[str, Any] = {}
    outputs: dict[str, np.ndarray] = {}
    for name, tw in (("independent", 0.0), ("temporal", weight)):
        stylized, metrics = run_mode(frames, style, params, tw, args.iterations, weights)
        outputs[name] = stylized
        runs[name] = summary(metrics)
        runs[name]["load_after"] = load_average()
        print(f"{name}: warping error {metrics['warping_error']:.5f}, {metrics['seconds_per_frame']:.2f} s/frame",
              flush=True)
    if args.default_later:  # the service's default: fewer iterations after the first frame
        stylized, metrics = run_mode(frames, style, params, weight, None, weights)
        runs["temporal_default_later"] = summary(metrics)
        print(f"temporal, default later iterations: warping error {metrics['warping_error']:.5f}, "
              f"{metrics['seconds_per_frame']:.2f} s/frame", flush=True)
    ratio = runs["temporal"]["warping_error"] / runs["independent"]["warping_error"]
    record.update({
        "runs": runs,
        "input_warping_error": runs["independent"]["input_warping_error"],
        "warping_error_ratio": ratio,
        "target_ratio": FLICKER_TARGET_RATIO,
        "meets_target": ratio <= FLICKER_TARGET_RATIO,
        "load_after": load_average(),
    })
    if args.strip:
        path = FIGURES / "optimize_strip.png"
        write_strip(path, frames, outputs["independent"], outputs["temporal"], args.strip_start, args.strip_frames,
                    images)
        record["strip"] = shown(path)
    write_json(args.out / "optimize.json", record)
    print(f"ratio temporal / independent = {ratio:.3f} (target <= {FLICKER_TARGET_RATIO})")
    return record


def write_strip(path: Path, inputs: np.ndarray, independent: np.ndarray, temporal: np.ndarray, start: int,
                count: int, _images: Any) -> None:
    """Rows: input frames, independent, its difference, temporal, its difference. A difference image is
    |frame t - warp(frame t+1 onto t)| (flow and mask from the input, masked pixels black), scaled x4 so the flicker
    shows; for the last frame shown it compares with the next frame of the clip."""
    from PIL import Image, ImageDraw

    from worker.engine.flow import FlowEstimator, consistency_mask, warp

    estimator = FlowEstimator()
    stop = min(start + count, len(inputs) - 1)
    indices = list(range(start, stop))

    def difference(frames: np.ndarray, k: int) -> np.ndarray:
        forward, backward = estimator.pair(inputs[k], inputs[k + 1])
        mask = consistency_mask(forward, backward)[..., None]
        diff = np.abs(frames[k].astype(np.float32) - warp(frames[k + 1].astype(np.float32), forward))
        return np.clip(diff * 4 * mask, 0, 255).astype(np.uint8)

    rows = [
        ("input", [inputs[k] for k in indices]),
        ("independent (temporal_weight 0)", [independent[k] for k in indices]),
        ("|difference to next, warped| x4", [difference(independent, k) for k in indices]),
        ("temporal (Ruder)", [temporal[k] for k in indices]),
        ("|difference to next, warped| x4", [difference(temporal, k) for k in indices]),
    ]
    h, w = inputs.shape[1:3]
    label_h, gap = 14, 2
    sheet = Image.new("RGB", (len(indices) * (w + gap) - gap, len(rows) * (h + label_h)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (label, tiles) in enumerate(rows):
        y = r * (h + label_h)
        draw.text((2, y + 1), f"{label}   frames {indices[0]}-{indices[-1]}", fill="black")
        for c, tile in enumerate(tiles):
            sheet.paste(Image.fromarray(tile), (c * (w + gap), y + label_h))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, optimize=True)


# --- tune ---------------------------------------------------------------------------------------------------------


def cmd_tune(args: argparse.Namespace) -> dict[str, Any]:
    from shared.params import StyleParams

    content, style = load_image(args.content), load_image(args.style)
    frames = check_clip(content)
    params = StyleParams.from_mapping({"size": args.size, "iterations": args.iterations, "progress_every": 1000})
    weights = weight_source()
    run_mode(frames[:2], style, params.replace(iterations=2), 1.0, 2, weights)  # warm-up (backbone, traces)
    run_mode(frames[:1], style, params.replace(iterations=2), 0.0, None, weights)
    record: dict[str, Any] = {
        "kind": "tune", "command": " ".join(sys.argv), "content": shown(args.content), "style": shown(args.style),
        "clip": "the flicker check's: 96x64, 16 frames, 12 fps, pan 3 px/frame, H.264 in and out",
        "params": {"size": args.size, "iterations": args.iterations, "later_iterations": args.later_iterations},
        "load_before": load_average(), "runs": [],
    }
    baseline: dict[str, float] | None = None
    for weight in [0.0, *[w for w in args.weights if w > 0]]:
        started = time.perf_counter()
        stylized, metrics = run_mode(frames, style, params, weight, args.later_iterations, weights)
        decoded = h264_round_trip(stylized, 12.0)
        row = {
            "temporal_weight": weight,
            "lai_warping_error": metrics["warping_error"],
            "check_warping_error": check_warping_error(decoded, frames),
            "seconds": time.perf_counter() - started,
            "seconds_per_frame": metrics["seconds_per_frame"],
            "later_iterations": metrics["later_iterations"],
            "mean_final_losses": {k: float(np.mean([f["losses"][k] for f in metrics["per_frame"]]))
                                  for k in metrics["per_frame"][0]["losses"]},
            "load": load_average(),
        }
        if baseline is None:
            baseline = row
        row["lai_ratio"] = row["lai_warping_error"] / baseline["lai_warping_error"]
        row["check_ratio"] = row["check_warping_error"] / baseline["check_warping_error"]
        record["runs"].append(row)
        print(f"temporal_weight {weight:g}: Lai {row['lai_warping_error']:.5f} (x{row['lai_ratio']:.2f}), "
              f"check {row['check_warping_error']:.5f} (x{row['check_ratio']:.2f}), "
              f"style {row['mean_final_losses']['style']:.3f}, content {row['mean_final_losses']['content']:.3f}, "
              f"{row['seconds']:.0f} s", flush=True)
        write_json(args.out / "tune.json", record)
    record["load_after"] = load_average()
    write_json(args.out / "tune.json", record)
    return record


# --- command line -------------------------------------------------------------------------------------------------


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def _add_optimize(sub: argparse._SubParsersAction) -> Callable:
    p = sub.add_parser("optimize", help="temporal vs independent optimize mode on a pan+zoom clip")
    p.add_argument("--content", type=Path, default=DEFAULT_CONTENT)
    p.add_argument("--style", type=Path, default=DEFAULT_STYLE)
    p.add_argument("--size", type=int, default=256, help="long side of the frames (16:9)")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--dx", type=float, default=2.0, help="pan, pixels per frame")
    p.add_argument("--zoom", type=float, default=1.01, help="zoom per frame")
    p.add_argument("--iterations", type=int, default=30, help="iterations of every frame, both modes")
    p.add_argument("--temporal-weight", type=float, default=None, help="default: DEFAULT_TEMPORAL_WEIGHT")
    p.add_argument("--default-later", action="store_true", help="also run temporal with the default later iterations")
    p.add_argument("--strip", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--strip-start", type=int, default=6)
    p.add_argument("--strip-frames", type=int, default=4)
    return cmd_optimize


def _add_tune(sub: argparse._SubParsersAction) -> Callable:
    p = sub.add_parser("tune", help="temporal_weight sweep on the flicker check's clip")
    p.add_argument("--content", type=Path, default=DEFAULT_CONTENT, help="the check uses columns_architecture.jpg")
    p.add_argument("--style", type=Path, default=DEFAULT_STYLE)
    p.add_argument("--size", type=int, default=96)
    p.add_argument("--iterations", type=int, default=30)
    p.add_argument("--later-iterations", type=int, default=None, help="default: the engine's")
    p.add_argument("--weights", type=_floats, default=[0.03, 0.1, 0.3, 1.0, 3.0])
    return cmd_tune


def _add_workers(sub: argparse._SubParsersAction) -> Callable:
    from bench.video_workers import add_workers  # the service-level measurement: its own module

    return add_workers(sub)


def _add_fast(sub: argparse._SubParsersAction) -> Callable:
    from bench.video_fast import add_fast  # the fast mode's blend sweep, fine-tuning and frames per second

    return add_fast(sub)


SUBCOMMANDS: dict[str, Callable[[argparse._SubParsersAction], Callable]] = {
    "optimize": _add_optimize,
    "tune": _add_tune,
    "workers": _add_workers,
    "fast": _add_fast,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of the JSON records")
    sub = parser.add_subparsers(dest="command", required=True)
    commands = {name: add(sub) for name, add in SUBCOMMANDS.items()}
    args = parser.parse_args(argv)
    commands[args.command](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
