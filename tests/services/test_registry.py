"""JobRegistry on a real Redis: records, status transitions, listing, leases, and Redis outages."""

from __future__ import annotations

import base64
import threading
import time

import pytest

from services.devstack import free_port
from services.redis_keys import ALL_JOBS_KEY, status_index_key
from services.registry import JobRegistry
from shared.errors import BadRequest, NotFound, Unavailable
from shared.jobs import JobStatus, new_job_id, new_job_record

pytestmark = pytest.mark.integration


@pytest.fixture
def registry(isolated_redis_url):
    registry = JobRegistry.from_url(isolated_redis_url)
    yield registry
    registry.redis.close()


def _new(registry: JobRegistry, **overrides) -> str:
    job_id = new_job_id()
    record = new_job_record(job_id, params={"size": 32}, content_key="inputs/c.jpg", style_keys=["inputs/s.jpg"],
                            content_name="c.jpg", style_names=["s.jpg"], queue="interactive")
    for name, value in overrides.items():
        setattr(record, name, value)
    registry.create(record)
    return job_id


def test_create_and_get(registry):
    job_id = _new(registry)
    record = registry.get(job_id)
    assert record.id == job_id and record.status == "queued" and record.deliveries == 0
    assert registry.get("missing") is None
    with pytest.raises(NotFound):
        registry.require("missing")
    with pytest.raises(ValueError):
        registry.create(record)  # same id twice


def test_mark_running_claims_a_queued_job(registry):
    job_id = _new(registry)
    assert registry.mark_running(job_id, "host-a", 101) is True
    record = registry.get(job_id)
    assert record.status == "running" and record.started_at
    assert record.worker == {"hostname": "host-a", "pid": 101} and record.deliveries == 1


def test_mark_running_refuses_a_canceled_job(registry):
    job_id = _new(registry)
    registry.request_cancel(job_id)
    assert registry.mark_running(job_id, "host-a", 1) is False
    assert registry.get(job_id).status == "canceled" and registry.get(job_id).worker is None
    assert registry.mark_running("missing", "host-a", 1) is False


def test_redelivery_of_a_running_job_counts_deliveries(registry):
    job_id = _new(registry)
    registry.mark_running(job_id, "host-a", 1)
    started_at = registry.get(job_id).started_at
    assert registry.mark_running(job_id, "host-b", 2) is True  # the first worker died; the message came back
    record = registry.get(job_id)
    assert record.deliveries == 2 and record.worker == {"hostname": "host-b", "pid": 2}
    assert record.started_at == started_at


def test_cancel_transitions(registry):
    queued, running, done = _new(registry), _new(registry), _new(registry)
    registry.mark_running(running, "h", 1)
    registry.mark_running(done, "h", 1)
    registry.finish(done, JobStatus.SUCCEEDED, result={"key": "results/x/result.png", "width": 1, "height": 1})

    assert registry.request_cancel(queued).status == "canceled"
    assert registry.get(queued).finished_at
    after = registry.request_cancel(running)
    assert after.status == "running" and after.cancel_requested is True
    assert registry.cancel_requested(running) and registry.cancel_requested(queued)
    assert registry.request_cancel(done).status == "succeeded"
    assert not registry.cancel_requested(done)
    with pytest.raises(NotFound):
        registry.request_cancel("missing")


def test_finish_is_once_only(registry):
    job_id = _new(registry)
    registry.mark_running(job_id, "h", 1)
    assert registry.finish(job_id, "failed", error={"code": "engine_error", "message": "boom"}) is True
    assert registry.finish(job_id, "succeeded", result={"key": "k", "width": 1, "height": 1}) is False
    record = registry.get(job_id)
    assert record.status == "failed" and record.result is None and record.finished_at
    with pytest.raises(ValueError):
        registry.finish(job_id, "running")


def test_progress_and_previews_only_while_running(registry):
    job_id = _new(registry)
    assert registry.set_progress(job_id, {"iteration": 1}) is False  # still queued
    registry.mark_running(job_id, "h", 1)
    assert registry.set_progress(job_id, {"iteration": 5, "iterations": 10, "percent": 50.0}) is True
    assert registry.add_preview(job_id, "results/j/previews/000005.png") is True
    assert registry.add_preview(job_id, "results/j/previews/000005.png") is True  # once only
    registry.finish(job_id, "canceled")
    assert registry.set_progress(job_id, {"iteration": 6}) is False
    record = registry.get(job_id)
    assert record.progress["iteration"] == 5 and record.previews == ["results/j/previews/000005.png"]


def test_update_sets_fields_and_keeps_indexes_in_step(registry):
    job_id = _new(registry)
    registry.update(job_id, status="failed", error={"code": "x", "message": "y"})
    assert registry.get(job_id).error == {"code": "x", "message": "y"}
    assert registry.count_by_status() == {"queued": 0, "running": 0, "succeeded": 0, "failed": 1, "canceled": 0}
    with pytest.raises(NotFound):
        registry.update("missing", status="failed")


def test_status_indexes_follow_every_transition(registry):
    ids = [_new(registry) for _ in range(4)]
    registry.mark_running(ids[0], "h", 1)
    registry.mark_running(ids[1], "h", 1)
    registry.finish(ids[1], "succeeded", result={"key": "k", "width": 1, "height": 1})
    registry.request_cancel(ids[2])
    assert registry.count_by_status() == {"queued": 1, "running": 1, "succeeded": 1, "failed": 0, "canceled": 1}
    assert [r.id for r in registry.list(status="running")[0]] == [ids[0]]


def test_list_newest_first_with_cursor_stable_under_inserts(registry):
    ids = []
    for _ in range(7):
        ids.append(_new(registry))
        time.sleep(0.002)  # distinct creation times (millisecond resolution)
    page, cursor = registry.list(limit=3)
    assert [r.id for r in page] == ids[::-1][:3]
    newer = _new(registry)
    seen = [r.id for r in page]
    while cursor:
        page, cursor = registry.list(limit=3, cursor=cursor)
        seen += [r.id for r in page]
    assert seen == ids[::-1] and newer not in seen


def test_cursor_survives_its_job_changing_status(registry):
    ids = []
    for _ in range(4):
        ids.append(_new(registry))
        time.sleep(0.002)
    page, cursor = registry.list(status="queued", limit=2)
    registry.request_cancel(page[-1].id)  # the cursor's job leaves the queued index
    rest, _ = registry.list(status="queued", limit=10, cursor=cursor)
    assert [r.id for r in rest] == ids[::-1][2:]


def test_list_refuses_bad_arguments(registry):
    for kwargs, code in [({"status": "done"}, "bad_status"), ({"limit": 0}, "bad_limit"),
                         ({"cursor": "!!"}, "bad_cursor"), ({"limit": 101}, "bad_limit"),
                         ({"cursor": base64.urlsafe_b64encode(b"nan|x").decode()}, "bad_cursor")]:
        with pytest.raises(BadRequest) as info:
            registry.list(**kwargs)
        assert info.value.code == code


def test_delete_removes_record_and_index_entries(registry):
    job_id = _new(registry)
    registry.delete(job_id)
    assert registry.get(job_id) is None
    assert registry.redis.zscore(ALL_JOBS_KEY, job_id) is None
    assert registry.redis.zscore(status_index_key("queued"), job_id) is None


def test_cancel_and_start_racing_have_exactly_one_winner(registry):
    for _ in range(15):
        job_id = _new(registry)
        outcome = {}
        barrier = threading.Barrier(2)

        def start(job_id=job_id, outcome=outcome, barrier=barrier):
            barrier.wait()
            outcome["started"] = registry.mark_running(job_id, "h", 1)

        def cancel(job_id=job_id, outcome=outcome, barrier=barrier):
            barrier.wait()
            outcome["cancel"] = registry.request_cancel(job_id)

        threads = [threading.Thread(target=start), threading.Thread(target=cancel)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        record = registry.get(job_id)
        if outcome["started"]:
            assert record.status == "running" and record.cancel_requested is True
        else:
            assert record.status == "canceled"


def test_leases_exclude_other_owners_until_released_or_expired(registry):
    job_id = _new(registry)
    assert registry.acquire_lease(job_id, "worker-a", ttl_s=5)
    assert registry.acquire_lease(job_id, "worker-a", ttl_s=5)  # re-acquiring our own lease renews it
    assert not registry.acquire_lease(job_id, "worker-b", ttl_s=5)
    assert not registry.renew_lease(job_id, "worker-b", ttl_s=5)
    registry.release_lease(job_id, "worker-b")  # not the owner: no effect
    assert not registry.acquire_lease(job_id, "worker-b", ttl_s=5)
    registry.release_lease(job_id, "worker-a")
    assert registry.acquire_lease(job_id, "worker-b", ttl_s=0.2)
    time.sleep(0.35)
    assert registry.acquire_lease(job_id, "worker-c", ttl_s=5)  # worker-b's lease expired


def test_redis_down_is_unavailable():
    registry = JobRegistry.from_url(f"redis://127.0.0.1:{free_port()}/0")
    for call in (registry.ping, lambda: registry.get("x"), lambda: registry.list(),
                 lambda: registry.mark_running("x", "h", 1), lambda: registry.request_cancel("x")):
        with pytest.raises(Unavailable) as info:
            call()
        assert info.value.code == "redis_unavailable"


def test_listing_one_kind_of_a_tenant_follows_its_status(registry):
    from shared.jobs import JobRecord

    image_job = _new(registry, tenant="t1")
    training = JobRecord(id=new_job_id(), kind="train_style", tenant="t1", queue="bulk")
    registry.create(training)
    other_tenant = JobRecord(id=new_job_id(), kind="train_style", tenant="t2", queue="bulk")
    registry.create(other_tenant)

    assert [r.id for r in registry.list(tenant="t1", kind="train_style")[0]] == [training.id]
    assert [r.id for r in registry.list(tenant="t1", kind="stylize")[0]] == [image_job]
    registry.mark_running(training.id, "h", 1)
    assert registry.list(tenant="t1", kind="train_style", status="queued")[0] == []
    assert [r.id for r in registry.list(tenant="t1", kind="train_style", status="running")[0]] == [training.id]
    registry.delete(training.id)
    assert registry.list(tenant="t1", kind="train_style")[0] == []
    assert not [key for key in registry.redis.scan_iter("atelier:jobs:tenant:t1:kind:train_style*")
                if registry.redis.zcard(key)]
