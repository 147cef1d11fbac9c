"""``/v1/styles``: fast-style models the service trains itself (Johnson et al. 2016), then applies in one pass.

A style model is a job of kind ``train_style`` (``shared.jobs``): the same registry, queue (``bulk``), leases,
reconciler, cancel and progress as every job; its id is the model's id, which ``POST /v1/jobs`` takes as
``params.style_model``.

- ``POST /v1/styles`` (multipart): ``style`` files (1 to 8; ``style_blend`` in ``params``), optional ``train`` files
  (the photos to learn from) or a ``from_batch`` field naming one of the tenant's batches (its contents are the
  training set), else the built-in set (``data/training``); ``params`` is a JSON object of
  ``shared.train_params``. ``202`` + ``Location``; ``Idempotency-Key`` honoured.
- ``GET /v1/styles`` (newest first, cursor), ``GET /v1/styles/{id}`` (status, progress, loss curve, previews,
  metrics), ``POST /v1/styles/{id}/cancel``, ``GET /v1/styles/{id}/previews/{step}`` (the probe image then).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, request

from api import idempotency
from api.auth import current_tenant, require_owned
from api.blueprints.jobs import serve_png
from api.context import ApiContext, api_context
from api.listing import creation_headers, list_page
from api.presenter import preview_iteration
from api.ratelimit import admit_submission
from api.runnable import check_trainable
from api.submission import submit
from api.validation import (
    form_text,
    parse_json_object,
    read_upload,
    refuse_unknown_parts,
    require_multipart,
    style_parts,
)
from api.webhook_fields import WEBHOOK_FIELDS, parse_webhook
from services.batches import BatchRegistry
from shared.errors import BadRequest, NotFound
from shared.jobs import JobKind, JobRecord, JobStatus, curve_key, new_job_id, new_style_model_record, preview_key
from shared.train_params import TrainParams

log = logging.getLogger(__name__)

bp = Blueprint("styles", __name__, url_prefix="/v1/styles")

MAX_TRAIN_IMAGES = 256  # Texler et al. train on a handful; Johnson on 80k, which is not an upload
FILE_FIELDS = ("style", "train")
FORM_FIELDS = ("params", "from_batch", *WEBHOOK_FIELDS)


def style_url(model_id: str) -> str:
    return f"/v1/styles/{model_id}"


@bp.post("")
def create_style() -> tuple[dict[str, Any], int, dict[str, str]]:
    ctx = api_context()
    require_multipart(request)
    refuse_unknown_parts(request, FILE_FIELDS, FORM_FIELDS)
    params = TrainParams.from_mapping(parse_json_object(form_text(request, "params"), "params",
                                                        '{"steps": 1000, "size": 256}'))
    style_files, train_files = style_parts(request), request.files.getlist("train")
    if len(train_files) > MAX_TRAIN_IMAGES:
        raise BadRequest("too_many_train_images", f"got {len(train_files)} 'train' files; allowed: at most "
                         f"{MAX_TRAIN_IMAGES} (or name a batch with from_batch)", field="train")
    params.with_styles(len(style_files))
    webhook = parse_webhook(request, allowlist=ctx.settings.webhook_allowlist)
    from_batch = form_text(request, "from_batch")
    tenant = current_tenant()
    if from_batch is not None and train_files:
        raise BadRequest("train_and_from_batch", "send either 'train' files or 'from_batch', not both",
                         field="from_batch")
    batch_keys = _batch_contents(ctx, from_batch, tenant) if from_batch is not None else []
    max_pixels = ctx.settings.max_image_pixels
    styles = [read_upload(file, f"style[{i}]", max_pixels) for i, file in enumerate(style_files)]
    train = [read_upload(file, f"train[{i}]", max_pixels) for i, file in enumerate(train_files)]
    check_trainable(ctx, params, [upload.image.shape for upload in styles])

    def create(model_id: str) -> JobRecord:
        admit_submission(ctx, tenant, new_jobs=1)
        record = new_style_model_record(
            model_id, params=params.to_dict(), style_keys=[upload.key for upload in styles],
            style_names=[upload.name for upload in styles],
            train_keys=[upload.key for upload in train] + batch_keys,
            train_names=[upload.name for upload in train] + [None] * len(batch_keys),
            from_batch=from_batch, tenant=tenant)
        record.webhook = webhook
        return submit(ctx, record, [*styles, *train])

    body = idempotency.fingerprint(params=params.to_dict(), styles=[u.image.sha256 for u in styles],
                                   train=[u.image.sha256 for u in train], from_batch=from_batch, webhook=webhook)
    record, created = idempotency.create_once(ctx, tenant, "styles", body, new_id=new_job_id, create=create,
                                              load=lambda model_id: _load(ctx, model_id))
    headers = creation_headers(style_url(record.id), created)
    return present_style_model(ctx, record), 202 if created else 200, headers


@bp.get("")
def list_styles() -> dict[str, Any]:
    ctx = api_context()
    records, next_cursor = list_page(ctx.registry, JobKind.TRAIN_STYLE)
    return {"styles": [present_style_model(ctx, record, with_curve=False) for record in records],
            "next_cursor": next_cursor}


@bp.get("/<model_id>")
def get_style(model_id: str) -> dict[str, Any]:
    ctx = api_context()
    return present_style_model(ctx, require_style_model(ctx, model_id))


@bp.post("/<model_id>/cancel")
def cancel_style(model_id: str) -> tuple[dict[str, Any], int]:
    """As for jobs: a queued training never runs; a running one stops at its next progress report (202)."""
    ctx = api_context()
    require_style_model(ctx, model_id)
    record = ctx.registry.request_cancel(model_id)
    return present_style_model(ctx, record), 202 if record.status == JobStatus.RUNNING else 200


@bp.get("/<model_id>/previews/<int:step>")
def get_preview(model_id: str, step: int) -> Any:
    ctx = api_context()
    record = require_style_model(ctx, model_id)
    key = preview_key(model_id, step)
    if key not in record.previews:
        raise NotFound("preview_not_found", f"style model {model_id} has no preview at step {step}; see its "
                       "'previews' for the available ones", field="step")
    return serve_png(key, f"{model_id}-{step:06d}.png")


# --- helpers --------------------------------------------------------------------------------------------------------


def require_style_model(ctx: ApiContext, model_id: str) -> JobRecord:
    """The tenant's style model ``model_id``, or the same 404 as for a missing one (other kinds, other tenants)."""
    record = _load(ctx, model_id)
    if record is None:
        raise NotFound("style_model_not_found", f"no style model with id {model_id!r}", field="id")
    require_owned(record.tenant, record.id, "style_model")
    return record


def _load(ctx: ApiContext, model_id: str) -> JobRecord | None:
    record = ctx.registry.get(model_id)
    return record if record is not None and record.kind == JobKind.TRAIN_STYLE else None


def _batch_contents(ctx: ApiContext, batch_id: str, tenant: str) -> list[str]:
    """The stored content keys of the tenant's batch ``batch_id`` (its items so far), for training on them."""
    batches = BatchRegistry(ctx.registry)
    batch = batches.get(batch_id)
    if batch is None or str(batch.get("tenant") or "default") != tenant:
        raise NotFound("batch_not_found", f"from_batch={batch_id[:60]!r} names no batch of yours", field="from_batch")
    keys = sorted({child.inputs["content"] for child in batches.children(batches.items(batch_id)) if child})
    if not keys:
        raise BadRequest("empty_batch", f"batch {batch_id} has no contents yet to learn from; add items first or "
                         "send 'train' files", field="from_batch")
    return keys[:MAX_TRAIN_IMAGES]


def present_style_model(ctx: ApiContext, record: JobRecord, *, with_curve: bool = True) -> dict[str, Any]:
    inputs = record.inputs
    steps = sorted(i for i in (preview_iteration(key) for key in record.previews) if i is not None)
    previews = [f"{style_url(record.id)}/previews/{step}" for step in steps]
    return {
        "id": record.id,
        "status": record.status,
        "created_at": record.created_at,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "params": record.params,
        "inputs": {"style_names": inputs.get("style_names", []), "train_images": len(inputs.get("train", [])),
                   "from_batch": inputs.get("from_batch"),
                   "builtin_training_set": bool(inputs.get("builtin_training_set"))},
        "progress": record.progress,
        "loss_curve": _curve(ctx, record.id) if with_curve else None,
        "previews": previews,
        "preview": previews[-1] if previews else None,
        "error": record.error,
        "metrics": record.metrics,
        "cancel_requested": bool(record.cancel_requested),
        "links": {"self": style_url(record.id), "cancel": style_url(record.id) + "/cancel",
                  "apply": "/v1/jobs (params.style_model = this id)"},
    }


def _curve(ctx: ApiContext, model_id: str) -> list[list[float]]:
    """``[[step, elapsed_s, total_loss], ...]`` as the worker last wrote it; [] before the first report."""
    try:
        return json.loads(ctx.storage.get(curve_key(model_id)))
    except NotFound:
        return []
    except ValueError:  # a torn write cannot happen with put(), but a curve is advisory: never fail the GET
        log.warning("style model %s: unreadable loss curve", model_id)
        return []
