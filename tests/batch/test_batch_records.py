"""Pure batch logic (names, summaries, status) and the batch registry on a real Redis."""

from __future__ import annotations

import pytest
import redis

from services.batches import BatchRegistry, batch_status, clean_source_name, new_batch_record, result_names, summarize
from services.registry import JobRegistry
from shared.errors import BadRequest
from shared.jobs import JobRecord, new_job_id, new_job_record


@pytest.mark.parametrize(("raw", "clean"), [("a/x.jpg", "a/x.jpg"), ("./a//x.jpg", "a/x.jpg"),
                                            ("a\\b\\x.png", "a/b/x.png"), ("x.png", "x.png")])
def test_clean_source_name_keeps_relative_paths(raw, clean):
    assert clean_source_name(raw) == clean


@pytest.mark.parametrize("raw", ["", None, "../x.png", "a/../../x.png", "/etc/passwd", "a/\x00.png", "x" * 301])
def test_clean_source_name_refuses_escapes(raw):
    with pytest.raises(BadRequest) as caught:
        clean_source_name(raw, field="content[0].filename")
    assert caught.value.code == "bad_item_name" and "content[0].filename" in caught.value.message


def test_result_names_mirror_sources_and_never_collide():
    assert result_names(["a/x.jpg", "b.webp"]) == ["a/x.png", "b.png"]
    assert result_names(["x.jpg", "x.png", "x.webp"]) == ["x.png", "x.png.png", "x.webp.png"]
    names = result_names(["x.png", "x.jpg", "x.png.png"])
    assert len(set(names)) == 3


def _child(status, started_at=None, progress=None):
    return JobRecord(id="child", status=status, started_at=started_at, progress=progress)


def test_summarize_counts_progress_and_eta():
    items = [{}] * 4
    children = [
        _child("succeeded", "2026-01-01T00:00:00.000Z"),
        _child("running", "2026-01-01T00:00:10.000Z", {"iteration": 5, "iterations": 10}),
        _child("queued"),
        None,  # a vanished record counts as failed
    ]
    summary = summarize(items, children, now_iso="2026-01-01T00:00:25.000Z")
    assert summary["counts"] == {"queued": 1, "running": 1, "succeeded": 1, "failed": 1, "canceled": 0}
    assert summary["progress"] == pytest.approx(2.5 / 4)
    # 25 s for 62.5 % -> 15 s for the rest
    assert summary["eta_s"] == pytest.approx(15.0)
    # a coarse-to-fine child reports its share of work: 400 of 500 iterations can be 48 % of it
    c2f = _child("running", "2026-01-01T00:00:10.000Z", {"iteration": 400, "iterations": 500, "percent": 48.0})
    assert summarize([{}], [c2f])["progress"] == pytest.approx(0.48)
    assert summarize([], []) == {"total": 0, "counts": dict.fromkeys(summary["counts"], 0), "progress": 0.0,
                                 "eta_s": None}


def test_batch_status_from_children_and_cancel_flag():
    def status(record, *statuses):
        return batch_status(record, summarize([{}] * len(statuses), [_child(s) for s in statuses]))

    assert status({}, ) == "empty"
    assert status({}, "queued", "succeeded") == "running"
    assert status({}, "failed", "succeeded") == "finished"
    assert status({"canceled": True}, "running", "canceled") == "canceling"
    assert status({"canceled": True}, "succeeded", "canceled") == "canceled"


@pytest.fixture
def batches(isolated_redis_url):
    client = redis.Redis.from_url(isolated_redis_url)
    yield BatchRegistry(JobRegistry(client))
    client.close()


def test_registry_names_are_unique_and_releasable(batches):
    record = new_batch_record(params={}, style_keys=["inputs/a.png"], style_names=["a.png"])
    batches.create(record)
    with pytest.raises(ValueError):
        batches.create(record)
    assert batches.reserve_name(record["id"], "x.png", "job1") is None
    assert batches.reserve_name(record["id"], "x.png", "job2") == "job1"
    batches.release_name(record["id"], "x.png", "job2")  # not its owner: no effect
    assert batches.reserve_name(record["id"], "x.png", "job3") == "job1"
    batches.append_item(record["id"], "x.png", "job1")
    batches.remove_item(record["id"], "x.png", "job1")
    assert batches.items(record["id"]) == []
    assert batches.reserve_name(record["id"], "x.png", "job4") is None


def test_cancel_cancels_queued_children_and_flags_running_ones(batches):
    record = new_batch_record(params={}, style_keys=[], style_names=[])
    batches.create(record)
    ids = []
    for name in ("a", "b", "c"):
        job_id = new_job_id()
        batches.jobs.create(new_job_record(job_id, params={}, content_key="inputs/x.png", style_keys=[],
                                           content_name=name, style_names=[], queue="bulk", batch_id=record["id"]))
        batches.append_item(record["id"], name, job_id)
        ids.append(job_id)
    batches.jobs.mark_running(ids[0], "h", 1)
    batches.jobs.finish(ids[0], "succeeded", result={"key": "k"})
    batches.jobs.mark_running(ids[1], "h", 1)
    assert batches.cancel(record["id"])["canceled"] is True
    statuses = [batches.jobs.get(job_id).status for job_id in ids]
    assert statuses == ["succeeded", "running", "canceled"]
    assert batches.jobs.get(ids[1]).cancel_requested is True
    assert batches.cancel(record["id"])["canceled_at"] == batches.get(record["id"])["canceled_at"]  # idempotent
