"""What a webhook says: ``{"type", "timestamp", "data"}`` (the Standard Webhooks payload structure).

``type`` is ``<subject>.<status>``: ``job.succeeded``, ``job.failed``, ``job.canceled``, ``style.<status>`` for a
style model's training, ``video.<status>`` for a video (its segments never call), ``batch.finished`` /
``batch.canceled``. ``timestamp`` is when the event happened (the
record's ``finished_at``), not when it was sent (that is the ``webhook-timestamp`` header). ``data`` is the resource
as the API presents it (``GET /v1/jobs/{id}``, ``GET /v1/styles/{id}`` without the loss curve, ``GET /v1/videos/{id}``
without the segments, and the batch's summary), so a receiver needs no second request for the common case.

The webhook id is derived from the event, never random: ``msg_<job id>_<status>`` (a job ends once) and
``msg_batch_<id>_<status>_<items>`` (a batch that gets more items after it finished can finish again). Re-reading an
event therefore gives the same id, which is what the receiver deduplicates on.
"""

from __future__ import annotations

import json
from typing import Any

from services.batches import BatchRegistry, batch_status, summarize
from shared.jobs import JobKind, JobRecord, utc_now_iso

SUBJECT_FOR_KIND = {JobKind.STYLIZE.value: "job", JobKind.TRAIN_STYLE.value: "style", JobKind.VIDEO.value: "video"}
BATCH_END_STATUSES = ("finished", "canceled")


def job_msg_id(job_id: str, status: str) -> str:
    return f"msg_{job_id}_{status}"


def batch_msg_id(batch_id: str, status: str, total: int) -> str:
    return f"msg_batch_{batch_id}_{status}_{total}"


def body(event_type: str, timestamp: str, data: dict[str, Any]) -> str:
    """The exact bytes that are signed and sent (compact JSON, keys in the order built)."""
    return json.dumps({"type": event_type, "timestamp": timestamp, "data": data}, separators=(",", ":"))


def job_event(record: JobRecord) -> tuple[str, str]:
    """``(type, body)`` for a terminal job record of any kind."""
    subject = SUBJECT_FOR_KIND.get(record.kind, record.kind)
    event_type = f"{subject}.{record.status}"
    return event_type, body(event_type, record.finished_at or utc_now_iso(), present(record))


def present(record: JobRecord) -> dict[str, Any]:
    """The record as its API route shows it (imported here, not at the top: the API's modules are Flask-free except
    the blueprints, which the webhook worker only needs for a style model)."""
    if record.kind == JobKind.TRAIN_STYLE.value:
        from api.blueprints.styles import present_style_model

        return present_style_model(None, record, with_curve=False)  # type: ignore[arg-type]
    if record.kind == JobKind.VIDEO.value:
        from api.blueprints.videos import present_video

        return present_video(None, record, with_segments=False)  # type: ignore[arg-type]
    from api.presenter import present_job

    return present_job(record)


def batch_event(batches: BatchRegistry, batch: dict[str, Any]) -> tuple[str, str, str] | None:
    """``(msg id, type, body)`` when ``batch`` has just ended (every child terminal, or canceled), else None."""
    items = batches.items(batch["id"])
    if not _all_terminal(batches, items):
        return None
    summary = summarize(items, batches.children(items))
    status = batch_status(batch, summary)
    if status not in BATCH_END_STATUSES:
        return None
    event_type = f"batch.{status}"
    data = {"id": batch["id"], "status": status, "created_at": batch["created_at"],
            "canceled_at": batch.get("canceled_at"), **summary, "links": {"self": f"/v1/batches/{batch['id']}"}}
    return batch_msg_id(batch["id"], status, summary["total"]), event_type, body(event_type, utc_now_iso(), data)


SCAN_CHUNK = 64


def _all_terminal(batches: BatchRegistry, items: list[dict[str, Any]]) -> bool:
    """Whether every child has ended, reading from the newest item back in chunks: children run roughly in the order
    they were added (one bulk queue), so while the batch runs a live child is found in the first chunk, and each
    child's end costs one small read instead of all of the batch's records (quadratic over a large batch)."""
    for end in range(len(items), 0, -SCAN_CHUNK):
        chunk = items[max(0, end - SCAN_CHUNK):end]
        if any(child is not None and not child.terminal for child in batches.children(chunk)):
            return False
    return True
