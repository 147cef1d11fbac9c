"""The reconciler's decisions on a real Redis (no workers): what it re-enqueues, recovers, fails, and leaves alone.
Also the worker's upload backoff (worker/retry.py)."""

from __future__ import annotations

import json
import time

import pytest
import redis

from services.queue import JobQueue, queued_messages
from services.registry import JobRegistry
from shared.errors import NotFound, Unavailable
from shared.jobs import new_job_record
from shared.settings import Settings
from shared.tasks import INTERACTIVE_QUEUE
from worker.reconciler import LOCK_KEY, UNACKED_KEY, Reconciler
from worker.retry import with_backoff

GRACE_S = 5.0


@pytest.fixture
def parts(isolated_redis_url: str):
    settings = Settings(redis_url=isolated_redis_url, reconcile_grace_s=GRACE_S, max_deliveries=2)
    registry = JobRegistry.from_url(isolated_redis_url)
    queue = JobQueue(settings)
    yield settings, registry, queue, Reconciler(registry, queue, settings)
    queue.close()


def _job(registry: JobRegistry, job_id: str, *, status: str = "queued", deliveries: int = 0) -> None:
    record = new_job_record(job_id, params={"size": 32}, content_key="inputs/c.jpg", style_keys=["inputs/s.jpg"],
                            content_name="c.jpg", style_names=["s.jpg"], queue=INTERACTIVE_QUEUE)
    registry.create(record)
    if status == "running":
        registry.update(job_id, status="running", deliveries=deliveries, worker={"hostname": "h", "pid": 1})


def _message_ids(client: redis.Redis) -> list[str]:
    return [m["headers"]["id"] for m in queued_messages(client, INTERACTIVE_QUEUE)]


def test_old_queued_job_without_message_is_re_enqueued(parts):
    _settings, registry, _queue, reconciler = parts
    _job(registry, "a" * 32)
    assert reconciler.run_once(now_s=time.time()).requeued_missing == []  # younger than the grace period
    report = reconciler.run_once(now_s=time.time() + GRACE_S + 1)
    assert report.requeued_missing == ["a" * 32]
    assert _message_ids(registry.redis) == ["a" * 32]
    # its message is there now: the next pass leaves it alone
    assert reconciler.run_once(now_s=time.time() + GRACE_S + 2).requeued_missing == []


def test_queued_job_with_its_message_is_left_alone(parts):
    _settings, registry, queue, reconciler = parts
    _job(registry, "b" * 32)
    queue.enqueue("b" * 32)
    assert reconciler.run_once(now_s=time.time() + 100).changed == 0
    assert _message_ids(registry.redis) == ["b" * 32]


def test_running_job_with_a_live_lease_is_left_alone(parts):
    _settings, registry, _queue, reconciler = parts
    _job(registry, "c" * 32, status="running", deliveries=1)
    registry.acquire_lease("c" * 32, "worker:1:x", 10)
    assert reconciler.run_once(now_s=time.time() + 100).changed == 0
    assert registry.get("c" * 32).status == "running"


def test_running_job_whose_lease_expired_goes_back_to_the_queue(parts):
    _settings, registry, _queue, reconciler = parts
    _job(registry, "d" * 32, status="running", deliveries=1)
    report = reconciler.run_once()
    assert report.requeued_lost_worker == ["d" * 32]
    record = registry.get("d" * 32)
    assert record.status == "queued" and record.deliveries == 1 and record.worker is None
    assert _message_ids(registry.redis) == ["d" * 32]


def test_running_job_at_the_delivery_cap_fails_with_worker_lost(parts):
    _settings, registry, _queue, reconciler = parts
    _job(registry, "e" * 32, status="running", deliveries=2)
    assert reconciler.run_once().failed_worker_lost == ["e" * 32]
    record = registry.get("e" * 32)
    assert record.status == "failed" and record.error["code"] == "worker_lost"
    assert "giving up after 2 attempts" in record.error["message"]
    assert _message_ids(registry.redis) == []


def test_running_job_whose_message_is_unacked_waits_for_the_grace_period(parts):
    _settings, registry, _queue, reconciler = parts
    _job(registry, "f" * 32, status="running", deliveries=1)
    envelope = {"headers": {"id": "f" * 32}, "body": "", "properties": {}}
    registry.redis.hset(UNACKED_KEY, "tag-1", json.dumps([envelope, "", INTERACTIVE_QUEUE]))
    now_s = time.time()
    assert reconciler.run_once(now_s=now_s).changed == 0  # maybe a fresh pool process about to claim it
    assert reconciler.run_once(now_s=now_s + GRACE_S / 2).changed == 0
    assert reconciler.run_once(now_s=now_s + GRACE_S + 0.1).requeued_lost_worker == ["f" * 32]


def test_only_one_pass_runs_at_a_time(parts):
    _settings, registry, _queue, reconciler = parts
    _job(registry, "9" * 32, status="running", deliveries=1)
    registry.redis.set(LOCK_KEY, "someone-else", px=10_000)
    report = reconciler.run_once()
    assert report.skipped_locked and report.changed == 0
    assert registry.get("9" * 32).status == "running"


def test_backoff_retries_until_storage_is_back():
    calls, sleeps = [], []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise Unavailable("storage_unavailable", "down")
        return "stored"

    assert with_backoff(flaky, attempts=6, what="test", sleep=sleeps.append) == "stored"
    assert sleeps == [0.5, 1.0, 2.0]


def test_backoff_gives_up_after_the_limit_and_never_retries_other_errors():
    sleeps: list[float] = []

    def down() -> None:
        raise Unavailable("storage_unavailable", "still down")

    with pytest.raises(Unavailable):
        with_backoff(down, attempts=7, what="test", sleep=sleeps.append)
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]

    def refused() -> None:
        raise NotFound("not_found", "no bucket")

    with pytest.raises(NotFound):
        with_backoff(refused, attempts=5, what="test", sleep=sleeps.append)
    assert len(sleeps) == 6


def test_the_reconciler_runs_in_compose_and_in_atelier_dev():
    from pathlib import Path

    import yaml

    from services.cli import dev
    from services.commands import reconciler_argv

    root = Path(__file__).resolve().parents[2]
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    service = compose["services"]["reconciler"]
    assert service["command"] == reconciler_argv() and service["image"].startswith("atelier-api:")
    assert "COPY worker ./worker" in (root / "docker" / "Dockerfile.api").read_text()
    assert "reconciler_argv()" in Path(dev.__file__).read_text()  # a supervised child of `atelier dev`
