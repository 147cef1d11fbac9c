"""The job runner against a real Redis registry and local storage, with a stand-in engine."""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest

from shared.errors import WeightsMissing
from shared.images import load_rgb
from shared.jobs import metrics_key, result_key
from worker.lease import JobLease
from worker.runner import LEFT_TO_OTHER, SKIPPED, JobRunner, WorkerIdentity, describe_failure

from .conftest import FakeEngine

IDENTITY = WorkerIdentity(hostname="test-host", pid=4242)


def make_runner(registry, storage, settings, engine, **kwargs) -> JobRunner:
    return JobRunner(registry, storage, settings, IDENTITY, stylize=engine, **kwargs)


def test_success_stores_result_metrics_previews_and_updates_record(registry, storage, settings, make_job):
    job_id = make_job(size=32, iterations=40, progress_every=10)
    engine = FakeEngine()
    assert make_runner(registry, storage, settings, engine).run(job_id) == "succeeded"

    record = registry.get(job_id)
    assert record.status == "succeeded"
    assert record.started_at and record.finished_at
    assert record.worker == {"hostname": "test-host", "pid": 4242}
    assert record.deliveries == 1
    assert record.error is None
    # content is 40x20, size 32 -> 32x16
    assert record.result == {"key": result_key(job_id), "width": 32, "height": 16}
    image = load_rgb(storage.get(result_key(job_id)))
    assert image.shape == (16, 32, 3)
    stored_metrics = json.loads(storage.get(metrics_key(job_id)))
    assert stored_metrics == record.metrics
    assert record.metrics["queue_wait_s"] >= 0
    assert record.metrics["worker_overhead_s"] >= 0
    # progress reached the end; previews every 20 iterations, but the last iteration is the result, not a preview
    assert record.progress["iteration"] == 40 and record.progress["percent"] == 100.0
    assert record.previews == [f"results/{job_id}/previews/000020.png"]
    assert storage.exists(record.previews[0])


def test_terminal_job_is_skipped_and_never_reaches_the_engine(registry, storage, settings, make_job):
    job_id = make_job()
    engine = FakeEngine()
    runner = make_runner(registry, storage, settings, engine)
    assert runner.run(job_id) == "succeeded"
    first = registry.get(job_id)
    # a redelivery of the same message (late acks) changes nothing
    assert runner.run(job_id) == SKIPPED
    assert engine.calls == 1
    assert registry.get(job_id) == first


def test_job_canceled_while_queued_never_runs(registry, storage, settings, make_job):
    job_id = make_job()
    registry.request_cancel(job_id)
    engine = FakeEngine()
    assert make_runner(registry, storage, settings, engine).run(job_id) == SKIPPED
    record = registry.get(job_id)
    assert record.status == "canceled" and record.started_at is None and record.worker is None
    assert engine.calls == 0
    assert not storage.exists(result_key(job_id))


def test_cancel_while_running_stops_at_the_next_progress_report(registry, storage, settings, make_job):
    job_id = make_job(iterations=100, progress_every=10)
    engine = FakeEngine(during=lambda it: registry.request_cancel(job_id) if it == 30 else None)
    assert make_runner(registry, storage, settings, engine).run(job_id) == "canceled"
    record = registry.get(job_id)
    assert record.status == "canceled"
    assert engine.reports == [10, 20, 30]  # stopped at the report where the flag was first seen
    assert record.error["code"] == "canceled"
    assert record.result is None and not storage.exists(result_key(job_id))


def test_engine_error_fails_the_job_with_its_code(registry, storage, settings, make_job):
    job_id = make_job(backbone="xception")

    def engine(*args, **kwargs):
        raise WeightsMissing("weights_missing", "xception needs xception_weights.h5 in /weights")

    assert make_runner(registry, storage, settings, engine).run(job_id) == "failed"
    record = registry.get(job_id)
    assert record.status == "failed"
    assert record.error == {"code": "weights_missing", "message": "xception needs xception_weights.h5 in /weights"}


def test_unexpected_error_gives_a_readable_message_without_traceback(registry, storage, settings, make_job, caplog):
    job_id = make_job()

    def engine(*args, **kwargs):
        raise ZeroDivisionError("secret internal detail")

    assert make_runner(registry, storage, settings, engine).run(job_id) == "failed"
    error = registry.get(job_id).error
    assert error["code"] == "internal_error"
    assert "ZeroDivisionError" in error["message"]
    assert "secret internal detail" not in error["message"] and "Traceback" not in error["message"]
    # ... while the worker log has the full trace
    assert any(record.exc_info and "secret internal detail" in str(record.exc_info[1]) for record in caplog.records)


def test_missing_input_fails_with_not_found(registry, storage, settings, make_job):
    job_id = make_job()
    storage.delete(registry.get(job_id).inputs["content"])
    assert make_runner(registry, storage, settings, FakeEngine()).run(job_id) == "failed"
    assert registry.get(job_id).error["code"] == "not_found"


def test_redelivery_cap_fails_with_worker_lost(registry, storage, settings, make_job):
    job_id = make_job()
    # three earlier deliveries whose worker died mid-job (status stays running, lease expired)
    for pid in (1, 2, 3):
        assert registry.mark_running(job_id, "dead-host", pid)
    engine = FakeEngine()
    assert make_runner(registry, storage, settings, engine).run(job_id) == "failed"
    record = registry.get(job_id)
    assert record.error["code"] == "worker_lost"
    assert "4 times" in record.error["message"]
    assert engine.calls == 0


def test_redelivery_after_a_lost_worker_runs_the_job(registry, storage, settings, make_job):
    job_id = make_job()
    assert registry.mark_running(job_id, "dead-host", 1)  # first delivery died without finishing
    assert make_runner(registry, storage, settings, FakeEngine()).run(job_id) == "succeeded"
    record = registry.get(job_id)
    assert record.deliveries == 2 and record.worker["pid"] == IDENTITY.pid


def test_duplicate_delivery_leaves_the_job_to_a_live_lease_holder(registry, storage, settings, make_job):
    job_id = make_job()
    holder = JobLease(registry, job_id, owner="other:1", ttl_s=0.6)
    assert holder.try_acquire()
    engine = FakeEngine()
    with holder.held():  # the heartbeat keeps renewing, as a live worker does
        outcome = make_runner(registry, storage, settings, engine, lease_ttl_s=0.6).run(job_id)
    assert outcome == LEFT_TO_OTHER
    assert engine.calls == 0
    assert registry.get(job_id).status == "queued"


def test_duplicate_delivery_takes_over_when_the_holder_is_dead(registry, storage, settings, make_job):
    job_id = make_job()
    dead = JobLease(registry, job_id, owner="dead:1", ttl_s=0.6)
    assert dead.try_acquire()  # ... and never renews
    outcome = make_runner(registry, storage, settings, FakeEngine(), lease_ttl_s=0.6).run(job_id)
    assert outcome == "succeeded"


def test_two_concurrent_deliveries_run_the_engine_once(registry, storage, settings, make_job):
    job_id = make_job(iterations=40, progress_every=10)
    engine = FakeEngine(seconds_per_iteration=0.01)
    outcomes: list[str] = []

    def deliver() -> None:
        runner = make_runner(registry, storage, settings, engine, lease_ttl_s=0.6)
        outcomes.append(runner.run(job_id))

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert engine.calls == 1
    assert sorted(outcomes) in (["skipped", "succeeded"], [LEFT_TO_OTHER, "succeeded"])


@pytest.mark.parametrize(
    ("exc", "code"),
    [(MemoryError(), "out_of_memory"), (type("SoftTimeLimitExceeded", (Exception,), {})(), "time_limit_exceeded"),
     (KeyError("x"), "internal_error")],
)
def test_describe_failure_codes(exc, code):
    assert describe_failure(exc)[0] == code


def test_runner_output_is_deterministic_in_keys(registry, storage, settings, make_job):
    job_id = make_job()
    runner = make_runner(registry, storage, settings, FakeEngine())
    runner.run(job_id)
    keys = sorted(storage.list_keys(f"results/{job_id}/"))
    assert keys == sorted([result_key(job_id), metrics_key(job_id), f"results/{job_id}/previews/000020.png"])
    assert np.asarray(load_rgb(storage.get(result_key(job_id)))).shape[1] == 32


def test_another_kind_runs_under_the_same_lease_delivery_count_and_finish(registry, storage, settings):
    from shared.jobs import JobRecord, new_job_id

    seen = {}

    def train(record, lease, started_s):
        seen["kind"], seen["lease_held"] = record.kind, lease.token.startswith(IDENTITY.owner)
        seen["deliveries"] = registry.get(record.id).deliveries
        registry.finish(record.id, "succeeded", result={"key": f"models/{record.id}/model.atls"})
        return "succeeded"

    job = JobRecord(id=new_job_id(), kind="train_style", queue="bulk")
    registry.create(job)
    runner = make_runner(registry, storage, settings, FakeEngine(), handlers={"train_style": train})
    assert runner.run(job.id) == "succeeded"
    assert seen == {"kind": "train_style", "lease_held": True, "deliveries": 1}
    assert registry.get(job.id).status == "succeeded" and not registry.redis.exists(f"atelier:lease:{job.id}")


def test_a_kind_this_worker_does_not_run_fails_naming_what_it_runs(registry, storage, settings):
    from shared.jobs import JobRecord, new_job_id

    job = JobRecord(id=new_job_id(), kind="video", queue="bulk")
    registry.create(job)
    assert make_runner(registry, storage, settings, FakeEngine()).run(job.id) == "failed"
    error = registry.get(job.id).error
    assert error["code"] == "unsupported_kind" and "'video'" in error["message"] and "stylize" in error["message"]


def test_the_engine_gets_the_memory_budget_from_the_settings(registry, storage, settings, make_job):
    # ATELIER_ENGINE_MEMORY_BYTES reaches the engine as memory_budget_bytes (it decides tiling; the engine reads no
    # environment itself); 0 means a share of the machine's memory.
    engine = FakeEngine()
    job_id = make_job(size=32, iterations=10, progress_every=10)
    assert make_runner(registry, storage, settings.replace(engine_memory_bytes=123_456_789), engine).run(job_id) \
        == "succeeded"
    assert engine.kwargs["memory_budget_bytes"] == 123_456_789
    engine = FakeEngine()
    job_id = make_job(size=32, iterations=10, progress_every=10)
    assert make_runner(registry, storage, settings, engine).run(job_id) == "succeeded"
    assert 0 < engine.kwargs["memory_budget_bytes"] < os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
