"""A real Celery worker process (the compose command line, real VGG19 weights) on the tests' own Redis:

- readiness: a job queued before the worker starts is received only after the pool process built the backbone,
  and that first job reports ``backbone_cached: true``;
- heartbeat: the worker counts in ``atelier_workers_alive`` while it runs and leaves it when it stops;
- drain: SIGTERM to the worker's main process (what Kubernetes and ``docker stop`` send) during a job lets the job
  finish (succeeded, every iteration), acknowledges it and exits 0;
- its log lines are JSON and carry the job id.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from prometheus_client import CollectorRegistry, generate_latest

from services.cli.dev import Child
from services.commands import worker_argv
from services.devstack import RedisServer
from services.metrics import RedisMetricsCollector
from services.queue import JobQueue
from services.registry import JobRegistry
from services.storage import LocalStorage
from shared.jobs import input_key, new_job_id, new_job_record
from shared.params import StyleParams
from shared.settings import Settings
from tests.e2e.conftest import wait_until

from .conftest import parse_metrics, sample

pytestmark = [pytest.mark.slow, pytest.mark.integration]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DB = 11  # our own database on the tests' own Redis server
JOB_TIMEOUT_S = 240.0


def json_lines(path: Path) -> list[dict[str, Any]]:
    entries = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            entries.append(json.loads(line))
    return entries


def scrape(client: redis.Redis) -> dict:
    registry = CollectorRegistry()
    registry.register(RedisMetricsCollector(client))
    return parse_metrics(generate_latest(registry).decode())[1]


class Harness:
    def __init__(self, redis_server: RedisServer, tmp: Path) -> None:
        self.redis_url = f"redis://127.0.0.1:{redis_server.port}/{DB}"
        self.client = redis.Redis.from_url(self.redis_url)
        self.client.flushdb()  # our own server and database
        self.settings = Settings(redis_url=self.redis_url, storage=f"file://{tmp / 'storage'}",
                                 progress_min_interval_s=0.0, preview_every=0)
        self.registry = JobRegistry(self.client)
        self.storage = LocalStorage(tmp / "storage")
        self.queue = JobQueue(self.settings)
        self.log_path = tmp / "worker.log"
        self.tmp = tmp
        self.worker: Child | None = None

    def submit(self, **params: Any) -> str:
        keys = []
        for path in (EXAMPLES / "content" / "chelsea_cat.jpg", EXAMPLES / "style" / "munch_the_scream.jpg"):
            data = path.read_bytes()
            key = input_key(hashlib.sha256(data).hexdigest(), "JPEG")
            self.storage.put(key, data, content_type="image/jpeg")
            keys.append(key)
        job_id = new_job_id()
        params = StyleParams.from_mapping(params).to_dict()  # every field, as the API stores them
        self.registry.create(new_job_record(job_id, params=params, content_key=keys[0], style_keys=[keys[1]],
                                            content_name="cat.jpg", style_names=["scream.jpg"], queue="interactive"))
        self.queue.enqueue(job_id)
        return job_id

    def start_worker(self) -> Child:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ATELIER_")}  # real weights
        env.update({"ATELIER_AUTH": "off", "ATELIER_REDIS_URL": self.redis_url,
                    "ATELIER_STORAGE": self.settings.storage, "ATELIER_PROGRESS_MIN_INTERVAL_S": "0",
                    "ATELIER_PREVIEW_EVERY": "0", "PYTHONUNBUFFERED": "1"})
        self.worker = Child("worker", worker_argv(hostname="ops@%h"), env, self.log_path, Path.cwd())
        return self.worker

    def wait_status(self, job_id: str, statuses: tuple[str, ...], timeout_s: float = JOB_TIMEOUT_S) -> dict:
        def done() -> dict | None:
            assert self.worker is not None
            record = self.registry.get(job_id)
            if record and record.status in statuses:
                return record
            if not self.worker.alive():
                raise AssertionError(f"worker exited early:\n{self.worker.log_tail(30)}")
            return None

        return wait_until(done, timeout_s, what=f"job {job_id} to be {statuses}")

    def close(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        self.queue.close()
        self.client.close()


@pytest.fixture(scope="module")
def harness(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    h = Harness(redis_server, tmp_path_factory.mktemp("ops-worker"))
    yield h
    h.close()


def test_a_starting_worker_builds_its_backbone_before_it_takes_its_first_job(harness: Harness):
    job_id = harness.submit(size=32, iterations=3)  # queued before the worker exists
    harness.start_worker()
    record = harness.wait_status(job_id, ("succeeded", "failed", "canceled"))
    assert record.status == "succeeded", record.error
    assert record.metrics["backbone_cached"] is True  # built at start-up, not by this job

    entries = json_lines(harness.log_path)
    ready = next(e for e in entries if e.get("event") == "backbone_ready")
    received = next(e for e in entries if f"atelier.stylize[{job_id}] received" in e["message"])
    assert ready["ts"] < received["ts"], "the worker reserved the job before its backbone was built"
    # Every line the worker wrote about the job carries its id.
    about_job = [e for e in entries if e.get("job_id") == job_id]
    assert any(e["logger"] == "worker.runner" and "succeeded" in e["message"] for e in about_job)
    assert all(e["service"] == "worker" for e in about_job)


def test_the_running_worker_heartbeats_and_its_finished_job_is_in_the_metrics(harness: Harness):
    # The worker adds a job's timings just after it wrote the final status (task_postrun): allow it a moment.
    samples = wait_until(lambda: (s := scrape(harness.client)) and sample(
        s, "atelier_job_run_seconds_count", backbone="vgg19", status="succeeded") and s, 10, what="the job's timings")
    assert sample(samples, "atelier_workers_alive") == 1
    assert sample(samples, "atelier_jobs_finished_total", status="succeeded", backbone="vgg19") == 1
    assert sample(samples, "atelier_job_run_seconds_count", backbone="vgg19", status="succeeded") == 1
    assert sample(samples, "atelier_job_queue_wait_seconds_count", queue="interactive") == 1
    assert sample(samples, "atelier_engine_iterations_total", backbone="vgg19") == 3


def test_sigterm_drains_the_worker_the_running_job_finishes(harness: Harness):
    assert harness.worker is not None and harness.worker.alive()
    iterations = 40
    job_id = harness.submit(size=64, iterations=iterations, progress_every=1)
    harness.wait_status(job_id, ("running",))
    wait_until(lambda: getattr(harness.registry.get(job_id), "progress", None), 60, what="the first progress report")
    os.kill(harness.worker.pid, signal.SIGTERM)  # the main process only, as Kubernetes and docker stop do

    harness.worker.process.wait(JOB_TIMEOUT_S)
    assert harness.worker.process.returncode == 0, harness.worker.log_tail(30)
    record = harness.registry.get(job_id)
    assert record.status == "succeeded", record.error
    assert record.metrics["iterations_run"] == iterations and record.metrics["cancelled"] is False
    entries = json_lines(harness.log_path)
    drain = next(e for e in entries if e.get("event") == "drain")
    finished = next(e for e in entries if e.get("job_id") == job_id and e["logger"] == "worker.runner"
                    and "succeeded" in e["message"])
    assert drain["ts"] < finished["ts"], "SIGTERM arrived after the job had finished: nothing was drained"
    # Acknowledged: nothing waits in the queue and nothing is left unacknowledged for redelivery.
    assert harness.client.llen("interactive") == 0
    assert harness.client.hlen("unacked") == 0
    assert sample(scrape(harness.client), "atelier_workers_alive") == 0  # it left at once, no 30 s wait
