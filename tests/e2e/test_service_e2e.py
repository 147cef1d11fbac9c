"""The service end to end: real HTTP to gunicorn, real Redis, a real Celery worker with real VGG19 weights, and
storage through a local directory and through an S3 endpoint over HTTP."""

from __future__ import annotations

import io
import json
import os
import signal

import pytest
import requests
from PIL import Image

from services.client import ApiError, NotReadyError
from shared.jobs import metrics_key, result_key

from .conftest import CONTENT, STYLE, Stack, descendants, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def submit(stack: Stack, **params) -> str:
    return stack.client.submit(CONTENT, [STYLE], params=params)["id"]


def wait_terminal(stack: Stack, job_id: str, timeout_s: float = 120.0) -> dict:
    def terminal():
        job = stack.client.get(job_id)
        return job if job["status"] in ("succeeded", "failed", "canceled") else None

    try:
        return wait_until(terminal, timeout_s, 0.2, f"job {job_id} to finish")
    except AssertionError:
        print(stack.logs())
        raise


def test_submit_observe_progress_succeed_and_download(stack: Stack):
    job_id = submit(stack, size=64, iterations=40, progress_every=2)
    seen_running = wait_until(
        lambda: (lambda job: job if job["status"] == "running" and (job["progress"] or {}).get("iteration") else
                 None)(stack.client.get(job_id)),
        90, 0.05, "running with progress")
    assert seen_running["worker"]["pid"] > 0 and seen_running["started_at"]
    assert 0 < seen_running["progress"]["percent"] <= 100
    assert set(seen_running["progress"]["losses"]) >= {"content", "style", "total"}

    job = wait_terminal(stack, job_id)
    assert job["status"] == "succeeded", (job, stack.logs())
    # the result decodes at the requested size (content 451x300 -> 64x43)
    image = Image.open(io.BytesIO(stack.client.result_bytes(job_id)))
    assert image.format == "PNG" and max(image.size) == 64
    assert (job["result"]["width"], job["result"]["height"]) == image.size
    # outputs live at their deterministic keys in this stack's storage
    assert stack.storage.exists(result_key(job_id))
    assert json.loads(stack.storage.get(metrics_key(job_id)))["iterations_run"] == 40
    assert len(job["previews"]) >= 5  # every 4 iterations
    # real ImageNet weights, never the test-only random ones
    assert "random" not in job["metrics"]["weights"] and "imagenet" in job["metrics"]["weights"]
    assert job["metrics"]["queue_wait_s"] is not None


def test_s3_result_is_a_redirect_to_a_presigned_url(s3_stack: Stack):
    job_id = submit(s3_stack, size=32, iterations=3)
    assert wait_terminal(s3_stack, job_id)["status"] == "succeeded"
    response = requests.get(f"{s3_stack.api_url}/v1/jobs/{job_id}/result", allow_redirects=False, timeout=10)
    assert response.status_code in (302, 303, 307)
    location = response.headers["Location"]
    assert location.startswith(s3_stack.settings.s3_endpoint_url) and "Signature" in location
    data = requests.get(location, timeout=10).content
    assert Image.open(io.BytesIO(data)).size[0] == 32


def test_second_job_reuses_the_backbone_of_the_worker_process(local_stack: Stack):
    first = wait_terminal(local_stack, submit(local_stack, size=32, iterations=2))
    second = wait_terminal(local_stack, submit(local_stack, size=32, iterations=2, seed=1))
    assert first["status"] == second["status"] == "succeeded", local_stack.logs()
    assert first["worker"]["pid"] == second["worker"]["pid"]
    assert second["metrics"]["backbone_cached"] is True
    # one build per process: both jobs report the same build
    assert second["metrics"]["backbone_build_s"] == first["metrics"]["backbone_build_s"]


def test_a_coarse_to_fine_job_runs_every_scale_and_returns_the_output_size(local_stack: Stack):
    job = wait_terminal(local_stack, submit(local_stack, size=48, min_size=24, scale_iterations=2, iterations=2))
    assert job["status"] == "succeeded", job
    scales = job["metrics"]["scales"]
    assert [s["size_px"] for s in scales] == [24, 34, 48] and [s["iterations"] for s in scales] == [2, 2, 2]
    assert job["metrics"]["iterations_run"] == sum(s["iterations_run"] for s in scales)
    image = Image.open(io.BytesIO(local_stack.client.result_bytes(job["id"])))
    assert max(image.size) == 48


def test_cancel_a_queued_job_and_a_running_job(local_stack: Stack):
    stack = local_stack
    long_id = submit(stack, size=64, iterations=5000, progress_every=2)
    queued_id = submit(stack, size=32, iterations=2)
    assert stack.client.cancel(queued_id)["status"] == "canceled"  # never runs

    running = wait_until(
        lambda: (lambda job: job if (job["progress"] or {}).get("iteration", 0) >= 2 else None)(
            stack.client.get(long_id)),
        90, 0.1, "the long job to report progress")
    assert running["status"] == "running"
    stack.client.cancel(long_id)
    job = wait_terminal(stack, long_id, timeout_s=30)
    assert job["status"] == "canceled"
    assert job["progress"]["iteration"] < 5000
    with pytest.raises(NotReadyError):
        stack.client.result_bytes(long_id)

    # the worker is free again; the canceled queued job was skipped, never started
    follow_up = wait_terminal(stack, submit(stack, size=32, iterations=2))
    assert follow_up["status"] == "succeeded"
    queued = stack.client.get(queued_id)
    assert queued["status"] == "canceled" and queued["started_at"] is None and queued["worker"] is None
    assert not stack.storage.exists(result_key(queued_id))


def test_a_backbone_no_worker_has_weights_for_is_refused_at_the_door(local_stack: Stack):
    # A real trigger: Xception's official weights file is not in ATELIER_WEIGHTS_DIR (an empty folder), and the
    # live worker says so in what it advertises; the API refuses instead of queueing a job that must fail.
    wait_until(lambda: requests.get(f"{local_stack.api_url}/v1/capabilities", timeout=5).json()["workers"], 60,
               what="the worker's capabilities")
    view = requests.get(f"{local_stack.api_url}/v1/capabilities", timeout=5).json()
    assert view["backbones"]["vgg19"] >= 1 and view["backbones"]["xception"] == 0
    assert view["accepting"]["xception"] is False
    with pytest.raises(ApiError) as refused:
        submit(local_stack, size=32, iterations=2, backbone="xception")
    assert refused.value.status == 422 and refused.value.code == "backbone_unavailable"
    assert "vgg19" in refused.value.message


def _tiff() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="TIFF")
    return buffer.getvalue()


BAD_INPUTS = [
    ("not an image", {"content": ("c.jpg", b"hello, I am text")}, {}, 415, "unsupported_media_type"),
    ("truncated jpeg", {"content": ("c.jpg", CONTENT.read_bytes()[:2000])}, {}, 415, "corrupt_image"),
    ("zero bytes", {"content": ("c.jpg", b"")}, {}, 415, "unsupported_media_type"),
    ("unsupported format", {"content": ("c.tif", _tiff())}, {}, 415, "unsupported_media_type"),
    ("size out of range", {}, {"size": 99999}, 422, "param_out_of_range"),
    ("unknown backbone", {}, {"backbone": "resnet"}, 422, "param_out_of_range"),
    ("first scale too small", {}, {"min_size": 8}, 422, "param_out_of_range"),
]


@pytest.mark.parametrize(("label", "files", "params", "status", "code"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_is_refused_over_http_and_leaves_nothing(local_stack: Stack, label, files, params, status, code):
    stack = local_stack
    jobs_before = stack.registry.redis.zcard("atelier:jobs")
    inputs_before = set(stack.storage.list_keys("inputs/"))
    parts = {"content": ("c.jpg", CONTENT.read_bytes()), "style": ("s.jpg", STYLE.read_bytes())} | files
    response = requests.post(f"{stack.api_url}/v1/jobs", files=list(parts.items()),
                             data={"params": json.dumps(params)} if params else None, timeout=30)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    assert stack.registry.redis.zcard("atelier:jobs") == jobs_before
    assert set(stack.storage.list_keys("inputs/")) == inputs_before
    assert stack.queued_messages() == 0


def test_missing_style_is_400_and_leaves_nothing(local_stack: Stack):
    stack = local_stack
    jobs_before = stack.registry.redis.zcard("atelier:jobs")
    response = requests.post(f"{stack.api_url}/v1/jobs", files=[("content", ("c.jpg", CONTENT.read_bytes()))],
                             timeout=30)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "style"
    assert stack.registry.redis.zcard("atelier:jobs") == jobs_before


def test_a_killed_worker_process_does_not_lose_its_job(local_stack: Stack):
    # SIGKILL the pool process running the job (as the OOM killer would). Celery's main process sees it die and,
    # with task_reject_on_worker_lost, puts the message back; the new delivery waits for the dead process's lease
    # to expire (ATELIER_LEASE_TTL_S=3 here), takes the job over and finishes it.
    stack = local_stack
    job_id = submit(stack, size=64, iterations=24, progress_every=2)
    running = wait_until(
        lambda: (lambda job: job if (job["progress"] or {}).get("iteration", 0) >= 2 else None)(
            stack.client.get(job_id)),
        90, 0.1, "the job to report progress")
    pid = running["worker"]["pid"]
    assert pid in descendants(stack.worker.pid)  # a process of this test's own worker
    os.kill(pid, signal.SIGKILL)
    job = wait_terminal(stack, job_id, timeout_s=180)
    assert job["status"] == "succeeded", stack.logs()
    assert job["worker"]["pid"] != pid
    assert stack.registry.get(job_id).deliveries == 2
