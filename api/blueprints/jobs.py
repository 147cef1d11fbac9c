"""``/v1/jobs``: submit, inspect, list, cancel, and fetch results and previews."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, redirect, request, stream_with_context
from werkzeug.wrappers import Response as BaseResponse

from api import idempotency
from api.auth import current_tenant
from api.context import api_context
from api.listing import creation_headers, list_page
from api.presenter import job_url, present_job
from api.ratelimit import admit_submission
from api.runnable import check_runnable, check_style_model
from api.submission import submit
from api.validation import parse_job_request
from api.webhook_fields import parse_webhook
from shared.errors import NotFound, NotReady
from shared.jobs import JobKind, JobRecord, JobStatus, new_job_id, new_job_record, preview_key

bp = Blueprint("jobs", __name__, url_prefix="/v1/jobs")


@bp.post("")
def create_job() -> tuple[dict[str, Any], int, dict[str, str]]:
    ctx = api_context()
    job_request = parse_job_request(request, max_pixels=ctx.settings.max_image_pixels)
    webhook = parse_webhook(request, allowlist=ctx.settings.webhook_allowlist)
    check_runnable(ctx, job_request.params, job_request.content.image.shape,
                   [upload.image.shape for upload in job_request.styles])
    tenant = current_tenant()

    model_key = check_style_model(ctx, job_request.params.style_model, tenant)

    def create(job_id: str) -> JobRecord:
        admit_submission(ctx, tenant, new_jobs=1)
        record = new_job_record(
            job_id, params=job_request.params.to_dict(), content_key=job_request.content.key,
            style_keys=[upload.key for upload in job_request.styles], content_name=job_request.content.name,
            style_names=[upload.name for upload in job_request.styles], queue=job_request.queue, tenant=tenant,
            style_model_key=model_key)
        record.webhook = webhook
        return submit(ctx, record, [job_request.content, *job_request.styles])

    body = idempotency.fingerprint(params=job_request.params.to_dict(), content=job_request.content.image.sha256,
                                   styles=[upload.image.sha256 for upload in job_request.styles],
                                   queue=job_request.queue, webhook=webhook)
    record, created = idempotency.create_once(ctx, tenant, "jobs", body, new_id=new_job_id, create=create,
                                              load=ctx.registry.get)
    headers = creation_headers(job_url(record.id), created)
    return present_job(record), 202 if created else 200, headers


@bp.get("")
def list_jobs() -> dict[str, Any]:
    records, next_cursor = list_page(api_context().registry, JobKind.STYLIZE)
    return {"jobs": [present_job(record) for record in records], "next_cursor": next_cursor}


@bp.get("/<job_id>")
def get_job(job_id: str) -> dict[str, Any]:
    return present_job(require_image_job(job_id))


@bp.post("/<job_id>/cancel")
def cancel_job(job_id: str) -> tuple[dict[str, Any], int]:
    """Queued: canceled at once (200, final). Running: the worker stops at its next progress report, so the answer
    is 202 with ``cancel_requested`` true and status still ``running``. Finished: unchanged (200)."""
    require_image_job(job_id)
    record = api_context().registry.request_cancel(job_id)
    status = 202 if record.status == JobStatus.RUNNING else 200
    return present_job(record), status


@bp.get("/<job_id>/result")
def get_result(job_id: str) -> BaseResponse:
    record = require_image_job(job_id)
    if record.status != JobStatus.SUCCEEDED or not record.result:
        raise _not_ready(record)
    return serve_png(record.result["key"], f"{job_id}.png")


@bp.get("/<job_id>/previews/<int:iteration>")
def get_preview(job_id: str, iteration: int) -> BaseResponse:
    record = require_image_job(job_id)
    key = preview_key(job_id, iteration)
    if key not in record.previews:
        raise NotFound("preview_not_found", f"job {job_id} has no preview at iteration {iteration}; "
                       "see the job's 'previews' for the available ones", field="iteration")
    return serve_png(key, f"{job_id}-{iteration:06d}.png")


def require_image_job(job_id: str) -> JobRecord:
    """The ``stylize`` job ``job_id``, or 404: other kinds of work have their own routes (``/v1/styles/{id}``)."""
    record = api_context().registry.require(job_id)
    if record.kind != JobKind.STYLIZE:
        raise NotFound("job_not_found", f"no job with id {job_id!r} (it is a {record.kind} job; see its own route)",
                       field="id")
    return record


def serve_png(key: str, filename: str) -> BaseResponse:
    """Redirect to a presigned URL where storage has them (S3), else stream the bytes through the API."""
    ctx = api_context()
    url = ctx.storage.presigned_url(key, ctx.settings.presign_ttl_s)
    if url:
        return redirect(url, code=302)
    chunks = ctx.storage.open_stream(key)  # raises NotFound before the response starts
    response = Response(stream_with_context(chunks), mimetype="image/png")
    response.headers["Content-Disposition"] = f'inline; filename="{filename}"'
    return response


def _not_ready(record: JobRecord) -> NotReady:
    status = record.status
    if status in (JobStatus.QUEUED, JobStatus.RUNNING):
        return NotReady("not_ready", f"job {record.id} is {status}; the result is available once it has "
                        "succeeded")
    reason = f": {record.error['message']}" if record.error else ""
    return NotReady("no_result", f"job {record.id} is {status} and has no result{reason}")

