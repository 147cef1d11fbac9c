"""Fault tests on real processes: no accepted job is lost (README "Reliability").

One stack for the module (tests/reliability/conftest.py), tests in order; each leaves the stack usable for the next:
1. SIGKILL the pool process running a job while a second worker runs: it succeeds exactly once; the same for a
   style-model training, which resumes from its last checkpoint;
2. a job that kills its worker at every start fails with worker_lost after the delivery cap; others still finish;
3. storage cut during the result upload: retried with backoff, succeeds when storage is back;
4. a whole worker (main process and pool) SIGKILLed: its message is stuck in ``unacked`` for hours, the reconciler
   re-enqueues the job once the lease expires;
5. a queued job whose broker message vanished: the reconciler re-enqueues it;
6. Redis restarted (append-only file) while jobs are queued and running: every one finishes;
7. Redis down: the API answers 503 JSON, never 500.
"""

from __future__ import annotations

import io
import json
import os
import signal
import time

import numpy as np
import pytest
import requests
from PIL import Image

from services.metrics import JOBS_FINISHED
from shared.tasks import QUEUES

from .conftest import CRASH_NAME, MAX_DELIVERIES, FaultStack, load_corpus

# Videos whose segments both workers must share run first (pytest collects in this module's order): a case below
# kills a whole worker, and after it the stack has one (tests/reliability/video_cases.py).
from .video_cases import (  # noqa: F401 - collected here so they share this module's stack
    test_two_workers_share_a_fast_video_with_a_model_the_service_trained,
    test_two_workers_share_an_optimize_video_and_its_mp4_keeps_the_audio,
)

VALID_MODES = load_corpus().VALID_MODES

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Long enough to be caught mid-run (killed, Redis restarted under it) and to keep a worker busy: about 8 s at
# 0.1 s an iteration on 2 cores with random weights. Every kill reruns it in full, so more iterations only cost time.
LONG = {"size": 64, "iterations": 80, "progress_every": 5}
SHORT = {"size": 32, "iterations": 4}


def _jpeg(seed: int, size: tuple[int, int] = (64, 48)) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


def _succeeded_count(stack: FaultStack) -> int:
    return sum(int(v) for k, v in stack.redis.hgetall(JOBS_FINISHED.key).items() if k.decode().startswith("succeeded"))


def _running_on(stack: FaultStack, job_id: str, min_iteration: int = 2) -> dict:
    return stack.wait(job_id, 120, until=lambda j: j["status"] == "running" and (j.get("worker") or {}).get("pid")
                      and ((j.get("progress") or {}).get("iteration") or 0) >= min_iteration)


def _result_objects(stack: FaultStack, job_id: str) -> list[str]:
    from services.storage import open_storage
    from shared.settings import Settings

    storage = open_storage(Settings.from_env(stack.dev.settings_env))
    return sorted(storage.list_keys(f"results/{job_id}/"))


def _owning_child(stack: FaultStack, pid: int):
    """The DevStack child (worker process group) that ``pid`` belongs to."""
    for child in stack.dev.children:
        if child.name.startswith("worker") and os.getpgid(pid) == child.pid:
            return child
    raise AssertionError(f"pid {pid} is not in one of this stack's worker groups")


def test_sigkill_pool_process_mid_job_succeeds_exactly_once(fault_stack: FaultStack):
    before = _succeeded_count(fault_stack)
    job_id = fault_stack.submit(_jpeg(1), _jpeg(2), LONG)
    pid = _running_on(fault_stack, job_id)["worker"]["pid"]
    _owning_child(fault_stack, pid)  # ours, not some other process
    os.kill(pid, signal.SIGKILL)
    job = fault_stack.wait(job_id, 240)
    assert job["status"] == "succeeded", job
    assert job["metrics"]["deliveries"] == 2
    assert _succeeded_count(fault_stack) == before + 1  # one transition to succeeded
    assert _result_objects(fault_stack, job_id) == [f"results/{job_id}/metrics.json", f"results/{job_id}/result.png"]


# A training long enough to be caught mid-run (about 0.1 s a step at this size on 2 cores, random weights).
TRAIN = {"size": 32, "steps": 150, "batch_size": 1, "width": 0.125, "residual_blocks": 1, "checkpoint_every": 5,
         "progress_every": 1}


def _style_model(stack: FaultStack, model_id: str) -> dict:
    response = requests.get(f"{stack.api}/v1/styles/{model_id}", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def _wait_style(stack: FaultStack, model_id: str, until, timeout_s: float = 240) -> dict:
    deadline = time.monotonic() + timeout_s
    model: dict = {}
    while time.monotonic() < deadline:
        model = _style_model(stack, model_id)
        if until(model):
            return model
        time.sleep(0.1)
    raise AssertionError(f"style model {model_id} did not get there within {timeout_s} s; last seen: {model}")


def test_sigkill_mid_training_resumes_from_the_last_checkpoint(fault_stack: FaultStack):
    files = [("style", ("s.jpg", _jpeg(60))), ("train", ("a.jpg", _jpeg(61))), ("train", ("b.jpg", _jpeg(62)))]
    response = requests.post(f"{fault_stack.api}/v1/styles", files=files, data={"params": json.dumps(TRAIN)},
                             timeout=30)
    assert response.status_code == 202, response.text
    model_id = response.json()["id"]
    running = _wait_style(fault_stack, model_id, lambda m: m["status"] == "running"
                          and ((m.get("progress") or {}).get("iteration") or 0) >= 3 * TRAIN["checkpoint_every"])
    killed_at = running["progress"]["iteration"]
    pid = json.loads(fault_stack.redis.get(f"atelier:job:{model_id}"))["worker"]["pid"]
    _owning_child(fault_stack, pid)
    os.kill(pid, signal.SIGKILL)

    model = _wait_style(fault_stack, model_id, lambda m: m["status"] in ("succeeded", "failed", "canceled"))
    assert model["status"] == "succeeded", model
    metrics = model["metrics"]
    assert metrics["deliveries"] == 2
    # The redelivery went on from the last checkpoint: it never went back by more than checkpoint_every steps.
    assert killed_at - TRAIN["checkpoint_every"] <= metrics["resumed_from_step"] <= killed_at
    assert metrics["resumed_from_step"] > 0
    steps = [point[0] for point in model["loss_curve"]]
    assert steps == sorted(set(steps)) and steps[-1] == TRAIN["steps"]  # one curve, no step twice
    from services.storage import open_storage
    from shared.settings import Settings

    storage = open_storage(Settings.from_env(fault_stack.dev.settings_env))
    assert sorted(storage.list_keys(f"models/{model_id}/")) == [f"models/{model_id}/curve.json",
                                                                f"models/{model_id}/model.atls"]


def test_job_that_kills_its_worker_every_time_fails_after_the_cap(fault_stack: FaultStack):
    crasher = fault_stack.submit(_jpeg(3), _jpeg(4), SHORT, name=CRASH_NAME)
    others = [fault_stack.submit(_jpeg(10 + i), _jpeg(4), SHORT) for i in range(2)]
    job = fault_stack.wait(crasher, 240)
    assert job["status"] == "failed" and job["error"]["code"] == "worker_lost", job
    assert f"giving up after {MAX_DELIVERIES} attempts" in job["error"]["message"]
    for other in others:
        assert fault_stack.wait(other, 240)["status"] == "succeeded"


def test_storage_outage_during_result_upload_is_retried(fault_stack: FaultStack):
    job_id = fault_stack.submit(_jpeg(5), _jpeg(6), {"size": 48, "iterations": 60, "progress_every": 5})
    _running_on(fault_stack, job_id, min_iteration=5)
    fault_stack.proxy.down()  # inputs are read; the result upload will find storage gone
    try:
        fault_stack.wait(job_id, 120, until=lambda j: ((j.get("progress") or {}).get("iteration") or 0) >= 60)
        time.sleep(3)  # a few upload attempts fail meanwhile
        assert fault_stack.job(job_id)["status"] == "running"
    finally:
        fault_stack.proxy.up()
    job = fault_stack.wait(job_id, 120)
    assert job["status"] == "succeeded", job
    logs = "".join(p.read_text(errors="replace") for p in (fault_stack.dev.var_dir / "logs").glob("worker*.log"))
    assert f"job {job_id} result upload: attempt 1 of 8 failed" in logs


def test_whole_worker_killed_is_recovered_by_the_reconciler(fault_stack: FaultStack):
    job_id = fault_stack.submit(_jpeg(7), _jpeg(8), LONG)
    pid = _running_on(fault_stack, job_id)["worker"]["pid"]
    child = _owning_child(fault_stack, pid)
    os.killpg(child.pid, signal.SIGKILL)  # main process and pool: nobody will put the message back
    job = fault_stack.wait(job_id, 240)
    assert job["status"] == "succeeded", job
    reconciler_log = (fault_stack.dev.var_dir / "logs" / "reconciler.log").read_text(errors="replace")
    assert "requeued 1 whose worker was lost" in reconciler_log or "whose worker was lost" in reconciler_log
    fault_stack.dev.children.remove(child)
    child.stop()


def test_queued_job_without_a_message_is_re_enqueued(fault_stack: FaultStack):
    busy = fault_stack.submit(_jpeg(20), _jpeg(8), LONG)  # keeps the remaining worker busy
    _running_on(fault_stack, busy)
    job_id = fault_stack.submit(_jpeg(21), _jpeg(8), SHORT)
    removed = 0
    for queue in QUEUES:  # the broker "loses" the message (as a Redis that lost its last second of AOF would)
        for raw in fault_stack.redis.lrange(queue, 0, -1):
            if json.loads(raw)["headers"]["id"] == job_id:
                removed += fault_stack.redis.lrem(queue, 0, raw)
    assert removed == 1
    assert fault_stack.wait(job_id, 240)["status"] == "succeeded"
    assert fault_stack.wait(busy, 240)["status"] == "succeeded"


def test_redis_restart_with_jobs_queued_and_running(fault_stack: FaultStack):
    running = fault_stack.submit(_jpeg(30), _jpeg(31), LONG)
    _running_on(fault_stack, running)
    # also the awkward-but-valid image modes, end to end through a real worker
    queued = [fault_stack.submit(data, _jpeg(31), SHORT, name=name) for name, data in sorted(VALID_MODES.items())]
    fault_stack.restart_redis(down_s=2.0)
    for job_id in [running, *queued]:
        job = fault_stack.wait(job_id, 300)
        assert job["status"] == "succeeded", job


def test_redis_down_is_503_json_never_500(fault_stack: FaultStack):
    job_id = fault_stack.submit(_jpeg(40), _jpeg(41), SHORT)
    server = fault_stack.dev.redis
    assert server is not None
    server.stop()
    try:
        answers = {
            "get job": requests.get(f"{fault_stack.api}/v1/jobs/{job_id}", timeout=30),
            "list": requests.get(f"{fault_stack.api}/v1/jobs", timeout=30),
            "submit": requests.post(f"{fault_stack.api}/v1/jobs", timeout=30,
                                    files=[("content", ("c.jpg", _jpeg(42))), ("style", ("s.jpg", _jpeg(43)))]),
            "cancel": requests.post(f"{fault_stack.api}/v1/jobs/{job_id}/cancel", timeout=30),
            "readyz": requests.get(f"{fault_stack.api}/readyz", timeout=30),
        }
    finally:
        fault_stack.restart_redis(down_s=0)
    for what, response in answers.items():
        assert response.status_code == 503, (what, response.status_code, response.text[:300])
        assert response.json()["error"]["code"], what
    assert fault_stack.wait(job_id, 240)["status"] == "succeeded"


# The other video cases on the same stack, after the cases above (tests/reliability/video_cases.py).
from .video_cases import (  # noqa: E402, F401 - collected here so they share this module's stack
    test_a_worker_killed_mid_segment_costs_only_that_segment,
    test_cancel_stops_every_segment_and_the_video_ends_canceled,
)
