"""The whole embedded stack (``atelier dev``'s DevStack: Redis, the API under gunicorn, one Celery worker) after a
real job: ``GET /metrics`` over HTTP shows outcomes, histograms, gauges and the API's own requests (prometheus-client
multiprocess mode, as under gunicorn in production), and the API's and worker's JSON log lines carry the job id."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from services.cli.dev import DevStack
from services.devstack import free_port

from .conftest import parse_metrics, sample

pytestmark = [pytest.mark.slow, pytest.mark.integration]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    dev = DevStack(port=free_port(), workers=1, var_dir=tmp_path_factory.mktemp("ops-stack"),
                   extra_env={"ATELIER_PROGRESS_MIN_INTERVAL_S": "0"})
    dev.start(say=lambda _line: None)
    try:
        yield dev
    finally:
        dev.stop()


@pytest.fixture(scope="module")
def finished_job(stack: DevStack) -> dict[str, Any]:
    with (EXAMPLES / "content" / "chelsea_cat.jpg").open("rb") as content, \
            (EXAMPLES / "style" / "munch_the_scream.jpg").open("rb") as style:
        response = requests.post(f"{stack.api_url}/v1/jobs", files={"content": content, "style": style},
                                 data={"params": json.dumps({"size": 32, "iterations": 3})}, timeout=30)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        record = requests.get(f"{stack.api_url}/v1/jobs/{job_id}", timeout=10).json()
        if record["status"] in ("succeeded", "failed", "canceled"):
            return record
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish within 180 s")


def test_metrics_after_a_real_job(stack: DevStack, finished_job: dict[str, Any]):
    assert finished_job["status"] == "succeeded", finished_job["error"]
    # The worker adds a job's timings just after it wrote the final status (task_postrun): allow it a moment.
    deadline = time.monotonic() + 10
    while True:
        response = requests.get(f"{stack.api_url}/metrics", timeout=10)
        if "atelier_job_run_seconds_count{" in response.text or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    types, samples = parse_metrics(response.text)
    assert all(name.startswith("atelier_") for name in types)
    kinds = list(types.values())
    assert kinds.count("counter") >= 1 and kinds.count("gauge") >= 1 and kinds.count("histogram") >= 2

    assert sample(samples, "atelier_jobs_finished_total", status="succeeded", backbone="vgg19") == 1
    assert sample(samples, "atelier_job_queue_wait_seconds_count", queue="interactive") == 1
    assert sample(samples, "atelier_job_run_seconds_count", backbone="vgg19", status="succeeded") == 1
    assert sample(samples, "atelier_engine_iterations_total", backbone="vgg19") == finished_job["metrics"][
        "iterations_run"]
    assert sample(samples, "atelier_workers_alive") == 1
    assert sample(samples, "atelier_jobs_inflight") == 0
    assert sample(samples, "atelier_queue_depth", queue="interactive") == 0
    # The API's own counters, written by its gunicorn worker into PROMETHEUS_MULTIPROC_DIR and merged on scrape.
    assert sample(samples, "atelier_http_requests_total", method="POST", route="/v1/jobs", status="202") == 1
    assert list((stack.var_dir / "prometheus").glob("*.db")), "the API did not use prometheus multiprocess mode"


def test_first_job_found_the_backbone_already_built(finished_job: dict[str, Any]):
    assert finished_job["metrics"]["backbone_cached"] is True


def test_api_and_worker_log_json_lines_with_the_job_id(stack: DevStack, finished_job: dict[str, Any]):
    job_id = finished_job["id"]

    def entries(name: str) -> list[dict[str, Any]]:
        text = (stack.var_dir / "logs" / f"{name}.log").read_text(errors="replace")
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    api_lines = [e for e in entries("api") if e.get("job_id") == job_id]
    assert any(e.get("event") == "job_queued" and e["service"] == "api" for e in api_lines)
    worker_lines = [e for e in entries("worker1") if e.get("job_id") == job_id]
    assert {e["logger"] for e in worker_lines} >= {"worker.tasks", "worker.runner"}
