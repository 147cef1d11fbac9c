"""``/v1/batches``: one style set, many contents. Each content becomes an ordinary job (listed in ``/v1/jobs``, with
its ``batch_id``) queued on the ``bulk`` queue, so single jobs on ``interactive`` go first.

- ``POST /v1/batches`` (multipart: ``style`` files, optional ``params`` JSON, optional ``content`` files) -> 201;
- ``POST /v1/batches/{id}/items``: multipart ``content`` files (the file name, a relative path, is the item's source
  name) or JSON ``{"items": [{"sha256", "name"}]}`` naming already stored inputs. A name already in the batch gives
  back its existing job instead of a second one (idempotent: a client that lost the answer may send again);
- ``GET /v1/batches/{id}``: counts per status, progress, ETA and a page of items;
- ``POST /v1/batches/{id}/cancel``; ``GET /v1/batches/{id}/results.zip`` (streamed; partial while running).

Everything in a request is validated before anything is stored; if storing or queueing fails half-way, what this
request created (records, items, inputs) is removed again.
"""

from __future__ import annotations

import io
import json
import logging
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, request, stream_with_context

from api import batch_mode, idempotency
from api.auth import current_tenant
from api.context import ApiContext, api_context
from api.listing import creation_headers
from api.presenter import result_url
from api.ratelimit import admit_submission
from api.runnable import check_backbone_available, check_runnable, check_style_model, check_trainable
from api.submission import roll_back, store_upload, submit
from api.validation import (
    Upload,
    form_text,
    int_query_arg,
    json_body,
    parse_json_object,
    parse_styles_and_params,
    read_upload,
    refuse_unknown_parts,
    require_multipart,
)
from api.webhook_fields import BATCH_EVENTS, WEBHOOK_FIELDS, parse_webhook
from services.batches import (
    MAX_ITEMS_PAGE,
    BatchRegistry,
    batch_status,
    clean_source_name,
    new_batch_record,
    result_names,
    summarize,
)
from services.tenants import DEFAULT_TENANT
from shared.errors import BadRequest, NotFound, NotReady
from shared.jobs import JobRecord, JobStatus, model_key, new_job_id, new_job_record, new_style_model_record
from shared.params import StyleParams
from shared.tasks import BULK_QUEUE
from shared.train_params import TrainParams

log = logging.getLogger(__name__)

bp = Blueprint("batches", __name__, url_prefix="/v1/batches")

DEFAULT_ITEMS_LIMIT = 100
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
# Extensions under which shared.jobs.input_key may have stored an input.
INPUT_EXTENSIONS = ("jpg", "png", "webp", "gif", "bmp")
ZIP_DATE = (2026, 1, 1, 0, 0, 0)  # fixed, so the same results give the same zip bytes
ITEMS_JSON_EXAMPLE = '{"items": [{"sha256": "<64 hex>", "name": "a/x.jpg"}, ...]}'
# About 100 bytes an item: room for a few thousand items in one request, far below the upload limit.
MAX_ITEMS_JSON_BYTES = 1024 * 1024


@dataclass(frozen=True)
class NewItem:
    """A validated content to add: its source name and either an upload (bytes to store) or an already stored key."""

    name: str
    key: str
    upload: Upload | None = None


def batch_url(batch_id: str) -> str:
    return f"/v1/batches/{batch_id}"


def _batches(ctx: ApiContext) -> BatchRegistry:
    return BatchRegistry(ctx.registry)


# --- routes --------------------------------------------------------------------------------------------------------


@bp.post("")
def create_batch() -> tuple[dict[str, Any], int, dict[str, str]]:
    ctx = api_context()
    require_multipart(request)
    refuse_unknown_parts(request, ("style", "content"),
                         ("params", "mode", "train_params", "expected_items", *WEBHOOK_FIELDS))
    style_files, params = parse_styles_and_params(request)
    webhook = parse_webhook(request, allowlist=ctx.settings.webhook_allowlist, allowed_events=BATCH_EVENTS)
    train = TrainParams.from_mapping(parse_json_object(form_text(request, "train_params"), "train_params",
                                                       '{"steps": 1000}'))
    styles = [read_upload(file, f"style[{i}]", ctx.settings.max_image_pixels) for i, file in enumerate(style_files)]
    contents = _uploaded_items(ctx, required=False)
    # Whether an image is large enough depends on size, style_scale and the layers only (its long side after
    # scaling is fixed by them; thin images are padded), so checking the batch checks every item it will get.
    check_runnable(ctx, params, None, [upload.image.shape for upload in styles])
    expected = _expected_items(form_text(request, "expected_items"))
    batch_plan = batch_mode.plan(form_text(request, "mode") or "optimize", params, train, len(contents) + expected)
    if batch_plan.train is not None:
        train.with_styles(len(styles))
        check_trainable(ctx, train, [upload.image.shape for upload in styles])

    batches = _batches(ctx)
    tenant = current_tenant()
    model_key = check_style_model(ctx, params.style_model, tenant)

    def create(batch_id: str) -> str:
        admit_submission(ctx, tenant, new_jobs=len(contents) + (batch_plan.train is not None))
        created_keys: list[str] = []
        record = new_batch_record(params=params.to_dict(), style_keys=[upload.key for upload in styles],
                                  style_names=[upload.name for upload in styles], batch_id=batch_id)
        record["tenant"] = tenant  # api/auth.py: only this tenant sees the batch and its children
        record["inputs"]["style_model"] = model_key
        record.update(mode=batch_plan.mode, mode_reason=batch_plan.reason)
        record["webhook"] = webhook  # called when the last child ends (services/webhooks/relay.py)
        try:
            for upload in styles:
                store_upload(ctx, upload, created_keys)
            if batch_plan.train is not None:
                _train_for_batch(ctx, record, batch_plan.train, styles, contents, created_keys)
            batches.create(record)
            _add_items(ctx, batches, record, contents, created_keys)
        except BaseException:
            _delete_quietly(lambda: batches.delete(record["id"]), f"batch {record['id']}")
            if record.get("style_model") and batch_plan.train is not None:
                _delete_quietly(lambda: ctx.registry.delete(record["style_model"]), "the batch's training")
            roll_back(ctx, None, created_keys)
            raise
        return batch_id

    body = idempotency.fingerprint(params=params.to_dict(), styles=[upload.key for upload in styles],
                                   contents=[(item.name, item.key) for item in contents], mode=batch_plan.mode,
                                   train=train.to_dict() if batch_plan.train else None, webhook=webhook)
    batch_id, created = idempotency.create_once(
        ctx, tenant, "batches", body, new_id=new_job_id, create=create,
        load=lambda existing: existing if batches.get(existing) is not None else None)
    headers = creation_headers(batch_url(batch_id), created)
    return present_batch(ctx, batch_id), 201 if created else 200, headers


@bp.post("/<batch_id>/items")
def add_items(batch_id: str) -> tuple[dict[str, Any], int]:
    ctx = api_context()
    batches = _batches(ctx)
    record = batches.require(batch_id)
    items = _json_items(ctx) if request.is_json else _multipart_items(ctx)
    if record.get("canceled"):
        raise NotReady("batch_canceled", f"batch {batch_id} was canceled; it accepts no new items", field="id")
    check_backbone_available(ctx, StyleParams.from_mapping(record["params"]).backbone)
    admit_submission(ctx, current_tenant(), new_jobs=len(items))
    created_keys: list[str] = []
    try:
        added = _add_items(ctx, batches, record, items, created_keys)
    except BaseException:
        roll_back(ctx, None, created_keys)
        raise
    any_new = any(item["created"] for item in added)
    return {"batch_id": batch_id, "items": added}, 202 if any_new else 200


@bp.get("/<batch_id>")
def get_batch(batch_id: str) -> dict[str, Any]:
    ctx = api_context()
    offset = int_query_arg(request, "offset", 0, 0, 10**9)
    limit = int_query_arg(request, "limit", DEFAULT_ITEMS_LIMIT, 1, MAX_ITEMS_PAGE)
    return present_batch(ctx, batch_id, offset=offset, limit=limit)


@bp.post("/<batch_id>/cancel")
def cancel_batch(batch_id: str) -> tuple[dict[str, Any], int]:
    """Queued children are canceled at once (they never run), running ones stop at their next progress report
    (202 while any still runs), finished ones keep their results."""
    ctx = api_context()
    _batches(ctx).cancel(batch_id)
    batch = present_batch(ctx, batch_id, limit=1)
    return batch, 202 if batch["status"] == "canceling" else 200


@bp.get("/<batch_id>/results.zip")
def results_zip(batch_id: str) -> Response:
    """The succeeded children's results, each named after its source (``a/x.jpg`` -> ``a/x.png``), streamed: the
    zip is written into a generator one result at a time, never whole in memory. Partial while the batch runs."""
    ctx = api_context()
    batches = _batches(ctx)
    batches.require(batch_id)
    items = batches.items(batch_id)
    children = batches.children(items)
    names = result_names(item["name"] for item in items)
    ready = [(name, child.result["key"]) for name, child in zip(names, children, strict=True)
             if child and child.status == JobStatus.SUCCEEDED and child.result]
    response = Response(stream_with_context(_zip_chunks(ctx, ready)), mimetype="application/zip")
    response.headers["Content-Disposition"] = f'attachment; filename="batch-{batch_id}.zip"'
    response.headers["X-Atelier-Results"] = str(len(ready))
    return response


# --- presentation -------------------------------------------------------------------------------------------------


def present_batch(ctx: ApiContext, batch_id: str, *, offset: int = 0, limit: int = DEFAULT_ITEMS_LIMIT
                  ) -> dict[str, Any]:
    batches = _batches(ctx)
    record = batches.require(batch_id)
    items = batches.items(batch_id)
    children = batches.children(items)
    summary = summarize(items, children)
    page = [_present_item(item, child) for item, child in
            zip(items[offset:offset + limit], children[offset:offset + limit], strict=True)]
    next_offset = offset + limit if offset + limit < len(items) else None
    return {
        "id": record["id"],
        "status": batch_status(record, summary),
        "created_at": record["created_at"],
        "canceled_at": record.get("canceled_at"),
        "params": record["params"],
        "inputs": {"style_names": record["inputs"]["style_names"]},
        "mode": record.get("mode", "optimize"),
        "mode_reason": record.get("mode_reason"),
        "style_model": record["params"].get("style_model"),
        **summary,
        "items": page,
        "offset": offset,
        "next_offset": next_offset,
        "links": {"self": batch_url(batch_id), "items": batch_url(batch_id) + "/items",
                  "cancel": batch_url(batch_id) + "/cancel", "results_zip": batch_url(batch_id) + "/results.zip"},
    }


def _present_item(item: dict[str, Any], child: JobRecord | None) -> dict[str, Any]:
    if child is None:
        return {"name": item["name"], "job_id": item["job_id"], "status": JobStatus.FAILED.value,
                "result_url": None, "progress": None,
                "error": {"code": "job_missing", "message": "the child job's record is gone"}}
    return {
        "name": item["name"],
        "job_id": item["job_id"],
        "status": child.status,
        "result_url": result_url(child.id) if child.result else None,
        "progress": child.progress,
        "error": child.error if child.status != JobStatus.SUCCEEDED else None,
    }


# --- adding children ------------------------------------------------------------------------------------------------


def _expected_items(text: str | None) -> int:
    if text is None or not text.strip():
        return 0
    if not text.strip().isdigit() or not 0 <= int(text) <= 10**7:
        raise BadRequest("bad_expected_items", f"expected_items={text[:40]!r} is not allowed; expected an integer "
                         "from 0 to 10000000 (how many more contents this batch will get)", field="expected_items")
    return int(text)


def _train_for_batch(ctx: ApiContext, batch: dict[str, Any], train: TrainParams, styles: list[Upload],
                     contents: list[NewItem], created_keys: list[str]) -> None:
    """``mode=fast`` without a model: queue the training of one on the batch's contents (through the one
    submission path), and make the batch's children apply it."""
    model_id = new_job_id()
    uploads = [item.upload for item in contents if item.upload is not None]
    record = new_style_model_record(
        model_id, params=train.to_dict(), style_keys=[upload.key for upload in styles],
        style_names=[upload.name for upload in styles], train_keys=[item.key for item in contents],
        train_names=[item.name for item in contents], from_batch=batch["id"], tenant=batch["tenant"])
    record.inputs["for_batch"] = batch["id"]  # its worker enqueues the batch's waiting children when done
    submit(ctx, record, uploads, created_keys=created_keys)
    batch["style_model"] = model_id
    batch["inputs"]["style_model"] = model_key(model_id)
    batch["params"] = {**batch["params"], "style_model": model_id}


def _model_ready(ctx: ApiContext, batch: dict[str, Any]) -> bool:
    """Whether the batch's children can run now: no model (optimize), a given one, or its own training finished
    (a failed training lets them run too: they fail with style_model_not_ready, a code the client can read)."""
    model_id = batch.get("style_model")
    if not model_id:
        return True
    training = ctx.registry.get(model_id)
    return training is None or training.terminal


def _add_items(ctx: ApiContext, batches: BatchRegistry, batch: dict[str, Any], items: list[NewItem],
               created_keys: list[str]) -> list[dict[str, Any]]:
    """Create, record and enqueue one child per new name through the one submission path
    (``api.submission.submit``); names already in the batch return their job. On failure the children created by
    this call are removed again (a message already queued for one finds no record and is dropped by the worker),
    then the error propagates; the caller removes the inputs listed in ``created_keys``."""
    added: list[dict[str, Any]] = []
    created: list[tuple[str, str]] = []
    enqueue = _model_ready(ctx, batch)
    fast = bool(batch["inputs"].get("style_model"))
    try:
        for item in items:
            job_id = new_job_id()
            existing = batches.reserve_name(batch["id"], item.name, job_id)
            if existing is not None:
                added.append({"name": item.name, "job_id": existing, "created": False})
                continue
            record = new_job_record(
                job_id, params=batch["params"], content_key=item.key,
                style_keys=[] if fast else batch["inputs"]["styles"],  # with a model, the model is the style
                content_name=item.name, style_names=[] if fast else batch["inputs"]["style_names"], queue=BULK_QUEUE,
                batch_id=batch["id"], tenant=batch.get("tenant") or DEFAULT_TENANT,
                style_model_key=batch["inputs"].get("style_model"),
            )
            try:
                submit(ctx, record, [item.upload] if item.upload else [], created_keys=created_keys,
                       after_record=lambda n=item.name, j=job_id: batches.append_item(batch["id"], n, j),
                       enqueue=enqueue)
            except BaseException:
                _delete_quietly(lambda n=item.name, j=job_id: batches.remove_item(batch["id"], n, j),
                                f"item {item.name}")
                raise
            created.append((item.name, job_id))
            added.append({"name": item.name, "job_id": job_id, "created": True})
    except BaseException:
        for name, job_id in created:
            _delete_quietly(lambda j=job_id: ctx.registry.delete(j), f"job {job_id}")
            _delete_quietly(lambda n=name, j=job_id: batches.remove_item(batch["id"], n, j), f"item {name}")
        raise
    # A cancel that raced with this request: its children must not run either.
    if created and (batches.get(batch["id"]) or {}).get("canceled"):
        for _name, job_id in created:
            ctx.registry.request_cancel(job_id)
    return added


def _uploaded_items(ctx: ApiContext, *, required: bool) -> list[NewItem]:
    files = request.files.getlist("content")
    if required and not files:
        raise BadRequest("missing_content", "expected one or more 'content' file parts (or a JSON body "
                         '{"items": [{"sha256": ..., "name": ...}]}), got none', field="content")
    items = []
    for index, file in enumerate(files):
        name = clean_source_name(file.filename, field=f"content[{index}].filename")
        upload = read_upload(file, f"content[{index}]", ctx.settings.max_image_pixels)
        items.append(NewItem(name=name, key=upload.key, upload=upload))
    _refuse_duplicate_names(items)
    return items


def _multipart_items(ctx: ApiContext) -> list[NewItem]:
    require_multipart(request)
    refuse_unknown_parts(request, ("content",), ())
    return _uploaded_items(ctx, required=True)


def _json_items(ctx: ApiContext) -> list[NewItem]:
    body = json_body(request, max_chars=MAX_ITEMS_JSON_BYTES, example=ITEMS_JSON_EXAMPLE)
    entries = body.get("items") if isinstance(body, dict) else None
    if not isinstance(entries, list) or not entries:
        raise BadRequest("bad_items_json", f"expected a JSON body {ITEMS_JSON_EXAMPLE} with at least one item",
                         field="items")
    items = []
    for index, entry in enumerate(entries):
        field = f"items[{index}]"
        if not isinstance(entry, dict) or set(entry) - {"sha256", "name"}:
            raise BadRequest("bad_items_json", f"{field} must be an object with 'sha256' and 'name' only, got "
                             f"{json.dumps(entry)[:100]}", field=field)
        sha = str(entry.get("sha256") or "").lower()
        if not SHA256_PATTERN.match(sha):
            raise BadRequest("bad_sha256", f"{field}.sha256={entry.get('sha256')!r} is not allowed; expected 64 "
                             "hexadecimal characters (the sha256 of an image uploaded before)", field=field + ".sha256")
        raw_name = entry.get("name")
        if not isinstance(raw_name, str):
            raise BadRequest("bad_item_name", f"{field}.name must be a string (a relative path such as 'a/x.jpg'), "
                             f"got {json.dumps(raw_name)[:60]}", field=field + ".name")
        name = clean_source_name(raw_name, field=field + ".name")
        key = _stored_input_key(ctx, sha)
        if key is None:
            raise NotFound("input_not_found", f"{field}.sha256={sha} names no stored input; upload the image as a "
                           "'content' file part instead", field=field + ".sha256")
        items.append(NewItem(name=name, key=key))
    _refuse_duplicate_names(items)
    return items


def _stored_input_key(ctx: ApiContext, sha: str) -> str | None:
    for ext in INPUT_EXTENSIONS:
        key = f"inputs/{sha}.{ext}"
        if ctx.storage.exists(key):
            return key
    return None


def _refuse_duplicate_names(items: list[NewItem]) -> None:
    seen: set[str] = set()
    for item in items:
        if item.name in seen:
            raise BadRequest("duplicate_item_name", f"the name {item.name!r} appears twice in this request; names "
                             "are unique in a batch", field="name")
        seen.add(item.name)


def _delete_quietly(action: Any, what: str) -> None:
    # Rollback is best effort: the dependency that failed may refuse the cleanup too; log what is left.
    try:
        action()
    except Exception:
        log.exception("rollback: could not remove %s", what)


# --- zip ----------------------------------------------------------------------------------------------------------


class _ChunkSink(io.RawIOBase):
    """A write-only, unseekable file for ``zipfile``: what it writes is taken out in chunks by the generator.
    ``zipfile`` supports unseekable output (it then writes sizes in data descriptors after each member)."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._chunks.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def take(self) -> bytes:
        chunks, self._chunks = self._chunks, []
        return b"".join(chunks)


def _zip_chunks(ctx: ApiContext, ready: list[tuple[str, str]]) -> Iterator[bytes]:
    sink = _ChunkSink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as archive:  # PNGs are compressed already
        for name, key in ready:
            try:
                data = ctx.storage.get(key)
            except NotFound:
                log.warning("results.zip: %s vanished from storage; left out", key)
                continue
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_STORED
            archive.writestr(info, data)
            yield sink.take()
    yield sink.take()

