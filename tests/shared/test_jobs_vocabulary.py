"""Job statuses, ids, and deterministic storage keys."""

from __future__ import annotations

from shared.jobs import (
    TERMINAL_STATUSES,
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
    assert set(record) == {"id", "status", "created_at", "started_at", "finished_at", "params", "inputs", "progress",
                           "result", "previews", "error", "metrics", "worker", "deliveries", "cancel_requested",
                           "queue", "batch_id", "tenant"}
    assert record["status"] == "queued" and record["queue"] == "bulk"
    assert parse_iso(record["created_at"]).tzinfo is not None
