"""Live events as Server-Sent Events: ``GET /v1/{jobs,styles,videos}/{id}/events`` and ``/v1/batches/{id}/events``.

The events are the ones the registry appends with every record change (``services/events.py``); the framing, the
per-process cap and the tail loop are ``api/sse.py``; the vocabulary and the cap's figures are in docs/events.md.

A job stream (the same for style-model trainings and videos, which are job records too):

1. ``retry:``; then, unless ``Last-Event-ID`` names a point the stream still holds, a ``state`` event: where the
   job stands now (status, progress, previews, result link or error), with the stream's newest id;
2. the events after that id (the backlog after ``Last-Event-ID``, then live): ``status``, ``progress``,
   ``preview`` (with its ``url``), and finally ``done`` (with ``result_url`` or ``error``), after which the stream
   ends. A job already finished gets ``state`` then ``done``; a client that saw ``done`` and reconnects gets
   ``204`` (which tells an EventSource to stop reconnecting).

A batch stream: ``state`` (the batch summary: status, counts, progress, ETA), then an ``item`` event per child
change (``{job_id, status, percent}``), a fresh ``summary`` at most once a second after children finish, and
``done`` with the final summary once the batch is ``finished`` or ``canceled``.

Authentication and tenant isolation are those of the resource's GET: another tenant's id is 404, checked (like a
missing id) before a stream slot is taken, so such requests end at once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, current_app, request
from werkzeug.wrappers import Response as BaseResponse

from api import sse
from api.auth import require_owned
from api.context import ApiContext, api_context
from services import events
from services.batches import BatchRegistry, batch_status, summarize
from services.redis_client import redis_errors
from services.redis_keys import batch_events_key, batch_key, job_events_key, job_key
from shared.errors import NotFound
from shared.jobs import JobKind, JobRecord, JobStatus, is_terminal

bp = Blueprint("events", __name__)

# Each kind's public routes: the resource, its previews, its result (a trained model is applied by its id).
_LINKS = {
    JobKind.STYLIZE.value: ("/v1/jobs/{id}", "/v1/jobs/{id}/previews/{n}", "/v1/jobs/{id}/result"),
    JobKind.TRAIN_STYLE.value: ("/v1/styles/{id}", "/v1/styles/{id}/previews/{n}", "/v1/styles/{id}"),
    "video": ("/v1/videos/{id}", "/v1/videos/{id}/previews/{n}", "/v1/videos/{id}/result"),
}
_NOT_FOUND = {JobKind.STYLIZE.value: ("job_not_found", "job"), JobKind.TRAIN_STYLE.value: ("style_model_not_found",
              "style model"), "video": ("video_not_found", "video")}
BATCH_SUMMARY_EVERY_S = 1.0  # a batch's summary reads every child: at most this often


@bp.get("/v1/jobs/<job_id>/events")
def job_events(job_id: str) -> BaseResponse:
    return _job_stream(job_id, JobKind.STYLIZE.value)


@bp.get("/v1/styles/<model_id>/events")
def style_events(model_id: str) -> BaseResponse:
    return _job_stream(model_id, JobKind.TRAIN_STYLE.value)


@bp.get("/v1/videos/<video_id>/events")
def video_events(video_id: str) -> BaseResponse:
    return _job_stream(video_id, "video")


@bp.get("/v1/batches/<batch_id>/events")
def batch_events(batch_id: str) -> BaseResponse:
    ctx = api_context()
    record, first_id, last_id = _snapshot(ctx, batch_key(batch_id), batch_events_key(batch_id))
    batch = None if record is None else json.loads(record)
    if batch is None:
        raise NotFound("batch_not_found", f"no batch with id {batch_id!r}", field="id")
    require_owned(str(batch.get("tenant") or "default"), batch_id, "batch")
    cursor = sse.resume_point(request.headers.get("Last-Event-ID"), first_id, last_id)
    follower = _BatchFollower(ctx, batch_id)
    release = _slots(ctx).acquire()
    body = _batch_body(ctx, follower, batch_id, cursor, last_id)
    return sse.event_stream_response(body, release)


# --- jobs ---------------------------------------------------------------------------------------------------------

def _job_stream(job_id: str, kind: str) -> BaseResponse:
    ctx = api_context()
    raw, first_id, last_id = _snapshot(ctx, job_key(job_id), job_events_key(job_id))
    record = None if raw is None else JobRecord.from_dict(json.loads(raw))
    if record is None or record.kind != kind:
        code, noun = _NOT_FOUND[kind]
        raise NotFound(code, f"no {noun} with id {job_id!r}", field="id")
    require_owned(record.tenant, record.id, _NOT_FOUND[kind][0].removesuffix("_not_found"))
    cursor = sse.resume_point(request.headers.get("Last-Event-ID"), first_id, last_id)
    if cursor is not None and record.terminal and cursor == last_id:
        return Response(status=204)  # it saw ``done``: nothing more will come, and 204 stops EventSource retrying
    release = _slots(ctx).acquire()
    return sse.event_stream_response(_job_body(ctx, record, cursor, last_id), release)


def _job_body(ctx: ApiContext, record: JobRecord, cursor: str | None, last_id: str | None) -> Iterator[str]:
    settings = ctx.settings
    yield sse.retry_hint()
    if cursor is None:  # a fresh client (or one whose point is gone): where things stand, then what follows
        yield sse.frame("state", present_state(record), last_id)
        if record.terminal:
            yield sse.frame(events.DONE, _done_from_record(record), last_id)
            return
        cursor = last_id or "0-0"

    def handle(chunk: list[events.Event]) -> tuple[list[str], bool]:
        frames = [sse.frame(event.name, render(record.kind, event.data), event.id) for event in chunk]
        return frames, any(event.name == events.DONE for event in chunk)

    yield from sse.tail(ctx.registry.redis, job_events_key(record.id), cursor, handle,
                        heartbeat_s=settings.sse_heartbeat_s, max_s=settings.sse_max_stream_s)


def render(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """A stored event as clients get it: links added (stored events name iterations, not routes)."""
    resource, preview, result = _LINKS.get(kind, _LINKS[JobKind.STYLIZE.value])
    job_id = data.get("job_id", "")
    if "iteration" in data and "iterations" not in data:  # a preview
        return {**data, "url": preview.format(id=job_id, n=data["iteration"])}
    if data.get("status") in (JobStatus.SUCCEEDED.value, JobStatus.FAILED.value, JobStatus.CANCELED.value):
        succeeded = data["status"] == JobStatus.SUCCEEDED.value
        return {**data, "url": resource.format(id=job_id), "result_url": result.format(id=job_id) if succeeded
                else None}
    return data


def present_state(record: JobRecord) -> dict[str, Any]:
    """The ``state`` event: the job now, compactly (what a page needs to draw itself)."""
    resource, preview, result = _LINKS.get(record.kind, _LINKS[JobKind.STYLIZE.value])
    iterations = sorted(n for n in (events.preview_iteration(key) for key in record.previews) if n is not None)
    return {
        "job_id": record.id, "kind": record.kind, "status": record.status,
        "cancel_requested": bool(record.cancel_requested), "created_at": record.created_at,
        "started_at": record.started_at, "finished_at": record.finished_at, "progress": record.progress,
        "previews": [preview.format(id=record.id, n=n) for n in iterations], "error": record.error,
        "url": resource.format(id=record.id),
        "result_url": result.format(id=record.id) if record.status == JobStatus.SUCCEEDED.value else None,
    }


def _done_from_record(record: JobRecord) -> dict[str, Any]:
    return render(record.kind, {"job_id": record.id, "kind": record.kind, "status": record.status,
                                "at": record.finished_at, "error": record.error})


# --- batches ------------------------------------------------------------------------------------------------------

class _BatchFollower:
    """Turns a batch's ``item`` events into frames, with a throttled ``summary`` and the final ``done``."""

    def __init__(self, ctx: ApiContext, batch_id: str) -> None:
        self.batches = BatchRegistry(ctx.registry)
        self.batch_id = batch_id
        self.pending = False  # a child finished since the last summary
        self.last_summary_s = 0.0

    def summary(self) -> dict[str, Any]:
        record = self.batches.require(self.batch_id)
        items = self.batches.items(self.batch_id)
        summary = summarize(items, self.batches.children(items))
        self.last_summary_s, self.pending = time.monotonic(), False
        return {"batch_id": self.batch_id, "status": batch_status(record, summary), **summary}

    def handle(self, chunk: list[events.Event]) -> tuple[list[str], bool]:
        frames = [sse.frame(event.name, event.data, event.id) for event in chunk]
        self.pending = self.pending or any(is_terminal(event.data.get("status", "queued")) for event in chunk)
        if self.pending and time.monotonic() - self.last_summary_s >= BATCH_SUMMARY_EVERY_S:
            summary = self.summary()
            ended = summary["status"] in ("finished", "canceled")
            frames.append(sse.frame(events.DONE if ended else "summary", summary))
            return frames, ended
        return frames, False


def _batch_body(ctx: ApiContext, follower: _BatchFollower, batch_id: str, cursor: str | None,
                last_id: str | None) -> Iterator[str]:
    yield sse.retry_hint()
    if cursor is None:
        state = follower.summary()
        yield sse.frame("state", state, last_id)
        if state["status"] in ("finished", "canceled"):
            yield sse.frame(events.DONE, state, last_id)
            return
        cursor = last_id or "0-0"
    # While a summary is pending, wake up within the throttle interval even if no event comes.
    yield from sse.tail(ctx.registry.redis, batch_events_key(batch_id), cursor, follower.handle,
                        heartbeat_s=ctx.settings.sse_heartbeat_s, max_s=ctx.settings.sse_max_stream_s,
                        idle_block_ms=int(BATCH_SUMMARY_EVERY_S * 1000))


# --- shared -------------------------------------------------------------------------------------------------------

@redis_errors
def _snapshot(ctx: ApiContext, record_key: str, stream_key: str) -> tuple[Any, str | None, str | None]:
    """The record and its stream's first and last ids, read in one MULTI so the state and the id agree."""
    pipe = ctx.registry.redis.pipeline(transaction=True)
    pipe.get(record_key)
    pipe.xrange(stream_key, count=1)
    pipe.xrevrange(stream_key, count=1)
    raw, first, last = pipe.execute()
    first_id, last_id = sse.stream_bounds([first, last])
    return raw, first_id, last_id


def _slots(ctx: ApiContext) -> sse.StreamSlots:
    return sse.slots_for(current_app._get_current_object(), ctx.settings.sse_max_streams)  # type: ignore[attr-defined]
