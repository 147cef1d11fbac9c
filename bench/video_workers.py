"""``bench/video.py workers``: the same clip through the whole service with 1 worker and with 2, side by side.

    python bench/video.py workers [--size 96 --frames 16 --iterations 10 --segment-frames 8]

For each worker count a fresh ``atelier dev`` stack (``services/cli/dev.py``: Redis, the API, N Celery workers and
the reconciler; real VGG19 weights, local storage) is started, every worker is warmed with one tiny video (so the
figure is styling, not TensorFlow start-up), then the clip is submitted through ``POST /v1/videos`` and timed from
the 202 to ``succeeded``. Reported: wall seconds per worker count, the speedup (1-worker seconds / 2-worker
seconds), seconds per frame, which workers styled the segments, and the load averages before and after (the
development machine has 2 cores shared with other sessions: two workers there share the same 2 cores, so expect
little speedup; on two GPU machines the segments would run truly in parallel). Writes ``workers.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

TERMINAL = ("succeeded", "failed", "canceled")


def render_clip(content: Path, frames: int, size: int, fps: int = 12) -> bytes:
    from PIL import Image

    from worker.video.synthetic import encode_test_clip, pan_zoom_clip

    image = np.asarray(Image.open(content).convert("RGB"))
    height = (size * 9 // 16) // 2 * 2
    clip, _ = pan_zoom_clip(image, frames, (height, size), 2.0, 1.01)
    return encode_test_clip(clip, fps, container="mp4", tone_hz=440)


def run_video(api: str, clip: bytes, style: bytes, params: dict[str, Any], timeout_s: float = 3600
              ) -> dict[str, Any]:
    import requests

    files = [("video", ("clip.mp4", clip)), ("style", ("style.jpg", style))]
    started_s = time.monotonic()
    response = requests.post(api + "/v1/videos", files=files, data={"params": json.dumps(params)}, timeout=60)
    response.raise_for_status()
    video_id = response.json()["id"]
    while time.monotonic() - started_s < timeout_s:
        video = requests.get(f"{api}/v1/videos/{video_id}", timeout=30).json()
        if video["status"] in TERMINAL:
            return {"wall_s": round(time.monotonic() - started_s, 2), "status": video["status"],
                    "segments": len(video.get("segments") or []), "metrics": video.get("metrics"),
                    "error": video.get("error")}
        time.sleep(0.25)
    raise TimeoutError(f"video {video_id} not done after {timeout_s} s")


def one_stack(workers: int, clip: bytes, warm_clip: bytes, style: bytes, params: dict[str, Any],
              say: Callable[[str], None]) -> dict[str, Any]:
    from services.cli.dev import DevStack
    from services.devstack import free_port

    with tempfile.TemporaryDirectory(prefix=f"atelier-bench-{workers}w-") as var_dir:
        saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("ATELIER_")}
        env = {"ATELIER_LOG_FORMAT": "text", "ATELIER_PREVIEW_EVERY": "0"}
        stack = DevStack(port=free_port(), workers=workers, var_dir=var_dir, extra_env=env)
        try:
            stack.start(say=lambda line: None)
            # One warm-up segment per worker: each pool process builds VGG19 and traces its step once.
            warm = {**params, "iterations": 2, "later_iterations": 1, "segment_frames": 2, "overlap_frames": 0}
            warm_run = run_video(stack.api_url, warm_clip, style, warm)
            say(f"{workers} worker(s): warm-up {warm_run['wall_s']} s ({warm_run['status']})")
            run = run_video(stack.api_url, clip, style, params)
            say(f"{workers} worker(s): {run['wall_s']} s ({run['status']}, {run['segments']} segments)")
            return run
        finally:
            stack.stop()
            os.environ.update(saved)


def cmd_workers(args: argparse.Namespace) -> dict[str, Any]:
    from bench.video import load_average, write_json

    params = {"size": args.size, "iterations": args.iterations, "segment_frames": args.segment_frames,
              "overlap_frames": args.overlap_frames}
    if args.later_iterations:
        params["later_iterations"] = args.later_iterations
    clip = render_clip(args.content, args.frames, args.size)
    warm_clip = render_clip(args.content, 2 * max(args.workers), args.size)
    style = args.style.read_bytes()
    load_before = load_average()
    runs = {str(n): one_stack(n, clip, warm_clip, style, params, print) for n in args.workers}
    load_after = load_average()
    one, two = runs.get("1"), runs.get("2")
    speedup = round(one["wall_s"] / two["wall_s"], 3) if one and two else None
    record = {
        "what": "the same clip through POST /v1/videos with 1 and 2 workers (fresh stack each, workers warmed)",
        "params": params, "frames": args.frames, "runs": runs, "speedup_2_over_1": speedup,
        "seconds_per_frame": {n: round(run["wall_s"] / args.frames, 3) for n, run in runs.items()},
        "cpu_count": os.cpu_count(), "load_average_before": load_before, "load_average_after": load_after,
    }
    write_json(args.out / "workers.json", record)
    print(f"speedup with 2 workers: {speedup}")
    return record


def add_workers(sub: argparse._SubParsersAction) -> Callable:
    from bench.video import DEFAULT_CONTENT, DEFAULT_STYLE

    p = sub.add_parser("workers", help="the same clip through the service with 1 and with 2 workers")
    p.add_argument("--content", type=Path, default=DEFAULT_CONTENT)
    p.add_argument("--style", type=Path, default=DEFAULT_STYLE)
    p.add_argument("--size", type=int, default=96)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--later-iterations", type=int, default=None)
    p.add_argument("--segment-frames", type=int, default=8)
    p.add_argument("--overlap-frames", type=int, default=2)
    p.add_argument("--workers", type=lambda text: [int(n) for n in text.split(",")], default=[1, 2])
    return cmd_workers
