"""Videos through the real stack (issue 12): the fault stack's two workers share a clip's segments, in both modes;
a worker killed mid-segment costs that segment only; cancel stops every segment.

These run on tests/reliability/conftest.py's ``fault_stack`` (two Celery workers with random VGG19 weights, so an
iteration is milliseconds) instead of a stack of their own: ``test_faults.py`` imports them at its end, so they
run after its cases on the same processes. Clips are rendered from the repository's own picture (8-12 frames at
64x48, worker/video/synthetic.py).
"""

from __future__ import annotations

import io
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import requests
from PIL import Image

from worker.video.io import decode_video
from worker.video.synthetic import encode_test_clip, pan_zoom_clip

from .conftest import FaultStack

CAT = Path(__file__).resolve().parents[2] / "examples" / "content" / "chelsea_cat.jpg"
TERMINAL = ("succeeded", "failed", "canceled")


def _clip(frames: int, *, tone: bool = True) -> bytes:
    image = np.asarray(Image.open(CAT).convert("RGB"))
    clip, _ = pan_zoom_clip(image, frames, (48, 64), 1.0, 1.0)
    return encode_test_clip(clip, 12, container="mp4", tone_hz=440 if tone else None)


def _style() -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise((48, 48), 60).convert("RGB").save(buffer, "PNG")
    return buffer.getvalue()


def _submit(stack: FaultStack, clip: bytes, params: dict[str, Any], *, styles: int = 1) -> str:
    files = [("video", ("clip.mp4", clip))] + [("style", (f"s{i}.png", _style())) for i in range(styles)]
    response = requests.post(stack.api + "/v1/videos", files=files, data={"params": json.dumps(params)}, timeout=30)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def _video(stack: FaultStack, video_id: str) -> dict[str, Any]:
    response = requests.get(f"{stack.api}/v1/videos/{video_id}", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def _wait(stack: FaultStack, video_id: str, until: Any = None, timeout_s: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    video: dict[str, Any] = {}
    while time.monotonic() < deadline:
        video = _video(stack, video_id)
        if until(video) if until else video["status"] in TERMINAL:
            return video
        time.sleep(0.2)
    raise AssertionError(f"video {video_id} did not get there within {timeout_s} s; last seen: {video}")


def _wait_for_two_idle_workers(stack: FaultStack, timeout_s: float = 180) -> None:
    """Both workers' pool processes up (advertising, pid alive) and no message waiting in the queues: the earlier
    cases kill pool processes, and a restarting one takes no segment, so "both workers styled segments" would
    depend on timing. (Not "no job running": the earlier cases leave records behind that say so.)"""
    from services.capabilities import live_workers
    from shared.tasks import QUEUES

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        alive = [w for w in live_workers(stack.redis) if _pid_alive(w.pid)]
        if len(alive) >= 2 and sum(int(stack.redis.llen(queue)) for queue in QUEUES) == 0:
            return
        time.sleep(0.5)
    raise AssertionError(f"the fault stack did not have two live workers and empty queues within {timeout_s} s: "
                         f"{live_workers(stack.redis)}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _check_result(stack: FaultStack, video: dict[str, Any], frames: int) -> None:
    response = requests.get(f"{stack.api}{video['result']['url']}", timeout=30)
    assert response.status_code == 200 and response.headers["Content-Type"] == "video/mp4"
    out = decode_video(response.content)
    assert len(out) == frames and out.info.has_audio and out.info.video_codec == "h264"
    poster = requests.get(f"{stack.api}{video['result']['poster_url']}", timeout=30)
    assert poster.status_code == 200 and poster.content.startswith(b"\x89PNG")


# Three segments of a 12-frame clip ([0, 4), [3, 8), [7, 12)): more segments than workers, so both take some.
SHARED = {"size": 64, "iterations": 4, "later_iterations": 2, "segment_frames": 4, "overlap_frames": 1,
          "progress_every": 2}


def test_two_workers_share_an_optimize_video_and_its_mp4_keeps_the_audio(fault_stack: FaultStack, tmp_path: Path):
    # Submitted as a user would: `atelier video --api` (uploads, waits with its bar in frames, downloads the MP4).
    import subprocess
    import sys

    source, out, report = tmp_path / "clip.mp4", tmp_path / "out.mp4", tmp_path / "report.json"
    source.write_bytes(_clip(12))
    style = tmp_path / "style.png"
    style.write_bytes(_style())
    flags = [f"--{name.replace('_', '-')}={value}" for name, value in SHARED.items()]
    _wait_for_two_idle_workers(fault_stack)
    done = subprocess.run([sys.executable, "-m", "services.cli.main", "video", str(source), "--style", str(style),
                           "-o", str(out), "--api", fault_stack.api, "--report", str(report), *flags],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "frame" in done.stderr and decode_video(str(out)).info.has_audio
    video_id = json.loads(report.read_text())["id"]
    video = _wait(fault_stack, video_id)
    assert video["status"] == "succeeded", video
    assert [s["status"] for s in video["segments"]] == ["succeeded"] * 3
    assert [(s["start"], s["end"], s["overlap"]) for s in video["segments"]] == [(0, 4, 0), (3, 8, 1), (7, 12, 1)]
    assert video["frames_done"] == video["frames"] == 14  # 12 frames + 1 shared at each of the 2 seams
    assert len(video["metrics"]["segment_workers"]) == 2, video["metrics"]  # both workers styled segments
    assert video["metrics"]["warping_error"] > 0 and video["metrics"]["warping_error_seams"] is not None
    _check_result(fault_stack, video, 12)


def test_a_worker_killed_mid_segment_costs_only_that_segment(fault_stack: FaultStack):
    from .test_faults import _owning_child

    params = {**SHARED, "iterations": 8, "later_iterations": 8, "segment_frames": 6, "progress_every": 1}
    video_id = _submit(fault_stack, _clip(12), params)  # two segments: [0, 6) and [5, 12)

    def one_running(video: dict[str, Any]) -> bool:
        return any(s["status"] == "running" and s["frames_done"] >= 1 for s in video.get("segments") or [])

    running = _wait(fault_stack, video_id, one_running)
    victim = next(s for s in running["segments"] if s["status"] == "running" and s["frames_done"] >= 1)
    pid = victim["worker"]["pid"]
    _owning_child(fault_stack, pid)  # one of this stack's workers
    os.kill(pid, signal.SIGKILL)
    video = _wait(fault_stack, video_id)
    assert video["status"] == "succeeded", video
    deliveries = {s["index"]: s["deliveries"] for s in video["segments"]}
    assert deliveries[victim["index"]] == 2  # rerun once, on a fresh pool process or the other worker
    assert [n for i, n in deliveries.items() if i != victim["index"]] == [1]  # the other segment was not rerun
    _check_result(fault_stack, video, 12)


def test_cancel_stops_every_segment_and_the_video_ends_canceled(fault_stack: FaultStack):
    params = {**SHARED, "iterations": 40, "later_iterations": 40, "segment_frames": 3, "progress_every": 1}
    video_id = _submit(fault_stack, _clip(12), params)  # four segments: two run, two wait in the queue
    _wait(fault_stack, video_id, lambda v: any(s["status"] == "running" for s in v.get("segments") or []))
    response = requests.post(f"{fault_stack.api}/v1/videos/{video_id}/cancel", timeout=10)
    assert response.status_code in (200, 202), response.text
    video = _wait(fault_stack, video_id, timeout_s=120)
    assert video["status"] == "canceled", video
    video = _wait(fault_stack, video_id, lambda v: all(s["status"] in TERMINAL for s in v["segments"]), 60)
    assert {s["status"] for s in video["segments"]} == {"canceled"}
    assert requests.get(f"{fault_stack.api}/v1/videos/{video_id}/result", timeout=10).status_code == 409


FAST_TRAIN = {"size": 32, "steps": 3, "batch_size": 1, "width": 0.125, "residual_blocks": 1, "checkpoint_every": 0}


def test_two_workers_share_a_fast_video_with_a_model_the_service_trained(fault_stack: FaultStack):
    files = [("style", ("s.png", _style())), ("train", ("a.png", _style()))]
    response = requests.post(f"{fault_stack.api}/v1/styles", files=files, data={"params": json.dumps(FAST_TRAIN)},
                             timeout=30)
    assert response.status_code == 202, response.text
    model_id = response.json()["id"]
    deadline = time.monotonic() + 240
    while (model := requests.get(f"{fault_stack.api}/v1/styles/{model_id}", timeout=10).json())["status"] \
            not in TERMINAL and time.monotonic() < deadline:
        time.sleep(0.3)
    assert model["status"] == "succeeded", model
    params = {"style_model": model_id, "size": 64, "segment_frames": 4, "overlap_frames": 1}
    _wait_for_two_idle_workers(fault_stack)
    video_id = _submit(fault_stack, _clip(12), params, styles=0)
    video = _wait(fault_stack, video_id)
    assert video["status"] == "succeeded", video
    assert video["params"]["mode"] == "fast" and len(video["segments"]) == 3
    assert len(video["metrics"]["segment_workers"]) == 2, video["metrics"]
    _check_result(fault_stack, video, 12)
