"""Accepting a job: store inputs -> write the record -> enqueue, undoing what was done if a later step fails.

Validation happened before (``api.validation``), so nothing here can fail on the client's input; failures are
Redis, storage or broker outages (503). On any failure the job record is deleted and the inputs this request created
are removed again (inputs that already existed belong to other jobs too: content-addressed storage), so a rejected
request leaves no record, no stored input and no queued message.

Known limit: if two requests upload the same new image at the same moment and the first one then fails, its rollback
can delete the input the second one relies on; that job then fails in the worker with a clear "input missing"
error. Reference counting would close this, at the price of another Redis structure; the window is one request.
"""

from __future__ import annotations

import logging
from typing import Any

from api.context import ApiContext
from api.validation import JobRequest, Upload
from shared.jobs import input_key, new_job_id, new_job_record
from shared.logging import JOB_ID

log = logging.getLogger(__name__)


def submit_job(ctx: ApiContext, request: JobRequest, *, batch_id: str | None = None, job_id: str | None = None,
               tenant: str = "default") -> dict[str, Any]:
    """Store, record and enqueue one job for ``tenant``; returns the record as written (status ``queued``).
    ``job_id`` is given when the id was reserved beforehand (api/idempotency.py)."""
    job_id = job_id or new_job_id()
    JOB_ID.set(job_id)  # this request's log lines carry the new id (reset after the request: api/blueprints/metrics.py)
    created_keys: list[str] = []
    record_written = False
    try:
        content_key = _store_input(ctx, request.content, created_keys)
        style_keys = [_store_input(ctx, upload, created_keys) for upload in request.styles]
        record = new_job_record(
            job_id,
            params=request.params.to_dict(),
            content_key=content_key,
            style_keys=style_keys,
            content_name=request.content.name,
            style_names=[upload.name for upload in request.styles],
            queue=request.queue,
            batch_id=batch_id,
            tenant=tenant,
        )
        ctx.registry.create(record)  # the record exists before the message: a worker never sees an unknown id
        record_written = True
        ctx.queue.enqueue(job_id, queue=request.queue)
    except BaseException:
        _roll_back(ctx, job_id, created_keys, record_written)
        raise
    log.info("job %s queued on %s", job_id, request.queue, extra={"event": "job_queued"})
    return record


def _store_input(ctx: ApiContext, upload: Upload, created_keys: list[str]) -> str:
    key = input_key(upload.image.sha256, upload.image.format)
    if key in created_keys or ctx.storage.exists(key):
        return key  # same bytes already stored: store once
    ctx.storage.put(key, upload.data, content_type=upload.image.content_type)
    created_keys.append(key)
    return key


def _roll_back(ctx: ApiContext, job_id: str, created_keys: list[str], record_written: bool) -> None:
    # Best effort: the dependency that failed may also refuse the cleanup; log what we could not undo.
    if record_written:
        try:
            ctx.registry.delete(job_id)
        except Exception:
            log.exception("rollback: could not delete job record %s", job_id)
    for key in created_keys:
        try:
            ctx.storage.delete(key)
        except Exception:
            log.exception("rollback: could not delete input %s", key)
