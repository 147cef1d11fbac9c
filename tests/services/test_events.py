"""Job events (services/events.py) written by the registry's transitions, on a real Redis."""

from __future__ import annotations

import json

import pytest

from services import events
from services.redis_keys import TERMINAL_EVENTS_KEY, batch_events_key, job_events_key
from services.registry import JobRegistry
from shared.jobs import JobRecord, new_job_id, new_job_record, preview_key

pytestmark = pytest.mark.integration


@pytest.fixture
def registry(isolated_redis_url):
    registry = JobRegistry.from_url(isolated_redis_url)
    yield registry
    registry.redis.close()


def _new(registry: JobRegistry, **overrides) -> str:
    job_id = new_job_id()
    record = new_job_record(job_id, params={"size": 32}, content_key="inputs/c.jpg", style_keys=["inputs/s.jpg"],
                            content_name="c.jpg", style_names=["s.jpg"], queue="interactive", tenant="acme")
    for name, value in overrides.items():
        setattr(record, name, value)
    registry.create(record)
    return job_id


def _progress(iteration: int, iterations: int = 100) -> dict:
    return {"iteration": iteration, "iterations": iterations, "percent": 100.0 * iteration / iterations,
            "losses": {"total": 1.5}, "eta_s": 2.0, "elapsed_s": 1.0}


def _stream(registry: JobRegistry, job_id: str) -> list[events.Event]:
    return events.backlog(registry.redis, job_events_key(job_id), "0")


def test_a_job_lifecycle_gives_its_events_in_order(registry):
    job_id = _new(registry)
    assert registry.mark_running(job_id, "host", 1)
    registry.set_progress(job_id, _progress(10))
    registry.add_preview(job_id, preview_key(job_id, 50))
    registry.set_progress(job_id, _progress(10))  # unchanged progress: no event
    registry.finish(job_id, "succeeded", result={"key": "results/x/result.png", "width": 32, "height": 32})
    stream = _stream(registry, job_id)
    assert [(e.name, e.data.get("status") or e.data.get("iteration")) for e in stream] == [
        ("status", "queued"), ("status", "running"), ("progress", 10), ("preview", 50), ("done", "succeeded")]
    assert stream[2].data == {"job_id": job_id, **_progress(10)}
    assert stream[4].data["error"] is None and stream[4].data["kind"] == "stylize"
    ids = [e.id for e in stream]
    assert ids == sorted(ids, key=events.split_id)
    # The stream now expires (a day after the end) instead of living forever.
    assert 0 < registry.redis.ttl(job_events_key(job_id)) <= events.FINISHED_STREAM_TTL_S


def test_terminal_jobs_reach_the_global_stream_once_with_flat_fields(registry):
    job_id = _new(registry)
    registry.mark_running(job_id, "host", 1)
    assert registry.finish(job_id, "failed", error={"code": "boom", "message": "x"})
    assert not registry.finish(job_id, "succeeded")  # a duplicate finish changes nothing, adds no event
    entries = [(i, {k.decode(): v.decode() for k, v in f.items()})
               for i, f in registry.redis.xrange(TERMINAL_EVENTS_KEY)]
    mine = [fields for _, fields in entries if fields["job_id"] == job_id]
    assert len(mine) == 1
    assert mine[0]["kind"] == "stylize" and mine[0]["status"] == "failed" and mine[0]["tenant"] == "acme"
    assert mine[0]["at"].endswith("Z")
    done = _stream(registry, job_id)[-1]
    assert done.name == "done" and done.data["error"]["code"] == "boom"


def test_cancel_of_a_queued_job_is_done_and_of_a_running_job_a_status(registry):
    queued = _new(registry)
    registry.request_cancel(queued)
    assert [e.name for e in _stream(registry, queued)] == ["status", "done"]
    running = _new(registry)
    registry.mark_running(running, "host", 1)
    registry.request_cancel(running)
    last = _stream(registry, running)[-1]
    assert last.name == "status" and last.data["status"] == "running" and last.data["cancel_requested"] is True


def test_batch_children_also_write_item_events_to_the_batch_stream(registry):
    job_id = _new(registry, batch_id="b1")
    registry.mark_running(job_id, "host", 1)
    registry.set_progress(job_id, _progress(40))
    registry.finish(job_id, "succeeded")
    items = events.backlog(registry.redis, batch_events_key("b1"), "0")
    assert [(e.name, e.data["status"], e.data["percent"]) for e in items] == [
        ("item", "queued", None), ("item", "running", None), ("item", "running", 40.0), ("item", "succeeded", 40.0)]


def test_reading_after_an_id_is_exclusive_and_delete_removes_the_stream(registry):
    job_id = _new(registry)
    registry.mark_running(job_id, "host", 1)
    first, second = _stream(registry, job_id)
    later = events.read_after(registry.redis, job_events_key(job_id), first.id, block_ms=10)
    assert [e.id for e in later] == [second.id]
    assert events.read_after(registry.redis, job_events_key(job_id), second.id, block_ms=10) == []
    registry.delete(job_id)
    assert not registry.redis.exists(job_events_key(job_id))


def test_derive_events_is_small_and_skips_non_changes():
    before = JobRecord(id="j", status="running", progress=_progress(1), params={"big": "x" * 1000})
    after = JobRecord.from_dict(json.loads(json.dumps(before.to_dict())))
    assert events.derive_events(before, after) == []
    after.previews = ["results/j/previews/000010.png", "not-a-preview"]
    assert events.derive_events(before, after) == [("preview", {"job_id": "j", "iteration": 10})]
    assert all("params" not in data for _, data in events.derive_events(None, after))
