"""Job statuses, ids, and deterministic storage keys."""

from __future__ import annotations

import json

import pytest

from shared.jobs import (
    TERMINAL_STATUSES,
    JobRecord,
    JobStatus,
    input_key,
    is_terminal,
    metrics_key,
    new_job_id,
    new_job_record,
    parse_iso,
    preview_key,
    result_key,
)


def test_statuses():
    assert [s.value for s in JobStatus] == ["queued", "running", "succeeded", "failed", "canceled"]
    assert JobStatus("running") == "running"  # str enum: compares with JSON values
    assert TERMINAL_STATUSES == {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED}
    assert is_terminal("canceled") and not is_terminal("queued")


def test_keys_are_deterministic():
    sha = "ab" * 32
    assert input_key(sha, "JPEG") == f"inputs/{sha}.jpg" and input_key(sha, "PNG") == f"inputs/{sha}.png"
    assert result_key("j1") == "results/j1/result.png"
    assert preview_key("j1", 50) == "results/j1/previews/000050.png"
    assert metrics_key("j1") == "results/j1/metrics.json"


def test_job_ids_are_random_and_long():
    ids = {new_job_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(len(job_id) == 32 and job_id.isalnum() for job_id in ids)


def test_new_record_has_every_field():
    record = new_job_record("j1", params={"size": 32}, content_key="inputs/c.jpg", style_keys=["inputs/s.jpg"],
                            content_name="c.jpg", style_names=["s.jpg"], queue="bulk")
    assert set(record.to_dict()) == {
        "id", "kind", "status", "created_at", "started_at", "finished_at", "params", "inputs", "progress", "result",
        "previews", "error", "metrics", "worker", "deliveries", "cancel_requested", "queue", "batch_id", "tenant",
        "requeued_at", "webhook"}
    assert record.kind == "stylize"
    assert record.status == "queued" and record.queue == "bulk"
    assert parse_iso(record.created_at).tzinfo is not None


def test_record_round_trips_through_its_json_form():
    record = new_job_record("j1", params={"size": 32}, content_key="inputs/c.jpg", style_keys=["inputs/s.jpg"],
                            content_name="c.jpg", style_names=["s.jpg"], queue="bulk", tenant="acme")
    record.progress = {"iteration": 3}
    again = JobRecord.from_dict(json.loads(json.dumps(record.to_dict())))
    assert again == record and again.tenant == "acme" and again.inputs["styles"] == ["inputs/s.jpg"]


def test_old_records_parse_and_unknown_fields_survive():
    # A record from before kinds and tenants existed, with a null list and a field a newer version added.
    old = {"id": "j2", "status": "running", "created_at": "2026-01-01T00:00:00.000Z", "previews": None,
           "inputs": {"content": "inputs/c.jpg", "styles": []}, "params": {}, "future_field": 7}
    record = JobRecord.from_dict(old)
    assert record.kind == "stylize" and record.tenant == "default" and record.previews == []
    assert record.to_dict()["future_field"] == 7


def test_a_record_with_an_unknown_status_is_refused():
    with pytest.raises(ValueError):
        JobRecord.from_dict({"id": "j3", "status": "exploded"})
