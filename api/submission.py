"""Accepting work: store inputs -> write the record -> enqueue, undoing what was done if a later step fails.

This is the one path by which a job enters the system, whatever its kind and whether it comes alone
(``POST /v1/jobs``) or as a batch item (``/v1/batches``). Validation happened before (``api.validation`` and
``api.runnable``), so nothing here can fail on the client's input; failures are Redis, storage or broker outages
(503). On any failure the job record is deleted and the inputs this call stored are removed again (inputs that
already existed belong to other jobs too: content-addressed storage), so a rejected request leaves no record, no
stored input and no queued message.

Known limit: if two requests upload the same new image at the same moment and the first one then fails, its rollback
can delete the input the second one relies on; that job then fails in the worker with a clear "input missing"
error. Reference counting would close this, at the price of another Redis structure; the window is one request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from api.context import ApiContext
from api.validation import Upload
from shared.jobs import JobRecord
from shared.logging import JOB_ID

log = logging.getLogger(__name__)


def submit(ctx: ApiContext, record: JobRecord, uploads: Sequence[Upload] = (), *,
           created_keys: list[str] | None = None, after_record: Callable[[], None] | None = None,
           enqueue: bool = True) -> JobRecord:
    """Store ``uploads``, write ``record`` (status ``queued``), run ``after_record`` (e.g. add the batch item), then
    enqueue the record's kind on its queue. Returns the record as written.

    ``enqueue=False`` leaves a queued record without a message: a batch child waiting for the style model its batch
    is training. The training's worker enqueues it once the model exists, and the reconciler leaves such jobs alone
    until their model's training has ended (``worker/reconciler.py``).

    ``created_keys`` collects the storage keys this call created, for a caller that must undo a larger request
    (a batch of many items); on failure this call removes its own keys and record before raising."""
    JOB_ID.set(record.id)  # this request's log lines carry the new id (reset after the request)
    mine: list[str] = []
    record_written = False
    try:
        for upload in uploads:
            store_upload(ctx, upload, mine, already_created=created_keys)
        ctx.registry.create(record)  # the record exists before the message: a worker never sees an unknown id
        record_written = True
        if after_record is not None:
            after_record()
        if enqueue:
            ctx.queue.enqueue(record.id, queue=record.queue, kind=record.kind)
    except BaseException:
        roll_back(ctx, record.id if record_written else None, mine)
        raise
    if created_keys is not None:
        created_keys.extend(mine)
    log.info("%s job %s queued on %s", record.kind, record.id, record.queue, extra={"event": "job_queued"})
    return record


def store_upload(ctx: ApiContext, upload: Upload, created_keys: list[str],
                 already_created: list[str] | None = None) -> str:
    """Store ``upload`` under its content address unless it is there already; new keys go to ``created_keys``."""
    key = upload.key
    if key in created_keys or (already_created and key in already_created) or ctx.storage.exists(key):
        return key  # same bytes already stored: store once
    ctx.storage.put(key, upload.data, content_type=upload.image.content_type)
    created_keys.append(key)
    return key


def roll_back(ctx: ApiContext, job_id: str | None, created_keys: list[str]) -> None:
    """Best effort: the dependency that failed may also refuse the cleanup; log what we could not undo."""
    if job_id is not None:
        try:
            ctx.registry.delete(job_id)
        except Exception:
            log.exception("rollback: could not delete job record %s", job_id)
    for key in created_keys:
        try:
            ctx.storage.delete(key)
        except Exception:
            log.exception("rollback: could not delete input %s", key)
