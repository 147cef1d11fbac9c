"""Job events: what changed in a job record, appended to Redis streams in the same MULTI as the record write.

Every record change goes through ``JobRegistry.transition`` (and ``create``); there the registry calls
``append_events(pipe, before, after)``, so an event exists exactly when its change was committed (no event for a
write that lost a WATCH race, no change without its event). Events are small: what changed, never whole records.

Streams (key names in ``services.redis_keys``):

- ``atelier:events:job:<id>``: every event of one job, capped at ``JOB_STREAM_MAXLEN`` (approximate ``MAXLEN ~``:
  old progress is superseded by newer progress anyway). It expires ``JOB_STREAM_TTL_S`` after its last event while
  the job is live and ``FINISHED_STREAM_TTL_S`` after the terminal event (a client that connects later reads the
  record's state instead of a backlog), and is deleted with the record (``JobRegistry.delete``);
- ``atelier:events:batch:<id>``: the ``item`` events of a batch's children (status, progress percent), so a batch
  page follows all its items through one stream;
- ``atelier:events:terminal``: one entry per job reaching a terminal status, for every tenant, with the flat
  fields ``job_id``, ``kind``, ``status``, ``tenant``, ``at`` (ISO time), ``batch_id``: the webhook dispatcher's
  input (issue 14 item 3). Capped at ``TERMINAL_STREAM_MAXLEN`` (approximate).

Vocabulary (``event`` field of a stream entry; ``data`` is its JSON payload), see also docs/events.md:

- ``status``: ``{job_id, kind, status, at}`` on a change to a non-terminal status (created queued, queued ->
  running, running -> queued when the reconciler requeues), plus ``cancel_requested: true`` when a cancel is
  requested of a running job;
- ``progress``: ``job_id`` and the record's progress object: ``iteration, iterations, percent, losses, eta_s,
  elapsed_s`` for images and trainings (``eta_s`` may be null), plus the frame counts for videos;
- ``preview``: ``{job_id, iteration}``: a new preview image (the API adds its ``url``);
- ``done``: ``{job_id, kind, status, at, error}`` when the status becomes terminal (the API adds the result link).

The SSE endpoints (``api/sse.py``) read these with ``read_after`` (XREAD BLOCK from an entry id, exclusive); the
stream entry id is the SSE ``id:``, so ``Last-Event-ID`` resumes exactly after the last event a client saw.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis

from services.redis_keys import TERMINAL_EVENTS_KEY, batch_events_key, job_events_key
from shared.jobs import JobRecord, JobStatus, is_terminal, utc_now_iso

JOB_STREAM_MAXLEN = 1000  # ~8 minutes of progress at the worker's 0.5 s throttle, plus the few status events
BATCH_STREAM_MAXLEN = 10000
TERMINAL_STREAM_MAXLEN = 100000
JOB_STREAM_TTL_S = 7 * 24 * 3600  # a queued job may wait long; refreshed by each event
FINISHED_STREAM_TTL_S = 24 * 3600  # resumption after the end is rare; the record keeps the final state

STATUS, PROGRESS, PREVIEW, DONE, ITEM = "status", "progress", "preview", "done", "item"
EVENT_NAMES = (STATUS, PROGRESS, PREVIEW, DONE)

PROGRESS_FIELDS = ("iteration", "iterations", "percent", "losses", "eta_s", "elapsed_s")  # worker/progress.py


@dataclass(frozen=True)
class Event:
    """One stream entry: ``id`` is the Redis stream entry id (``<ms>-<seq>``), the SSE ``id:``."""

    id: str
    name: str
    data: dict[str, Any]


# --- deriving (pure) ----------------------------------------------------------------------------------------------

def derive_events(before: JobRecord | None, after: JobRecord) -> list[tuple[str, dict[str, Any]]]:
    """The events for the change ``before`` -> ``after`` (``before`` None: the record was just created), in the
    order a client should see them: progress and previews first, the status change (or ``done``) last."""
    job_id, events = after.id, []
    if after.progress and (before is None or after.progress != before.progress):
        # The record's whole progress object: a few numbers, and each kind has its own (images: PROGRESS_FIELDS;
        # videos add frames_done, frames and segment_frames_done, services/videos.py).
        events.append((PROGRESS, {**after.progress, "job_id": job_id}))
    seen = set(before.previews) if before is not None else set()
    for key in after.previews:
        iteration = preview_iteration(key)
        if key not in seen and iteration is not None:
            events.append((PREVIEW, {"job_id": job_id, "iteration": iteration}))
    status_changed = before is None or after.status != before.status
    if status_changed and is_terminal(after.status):
        events.append((DONE, {"job_id": job_id, "kind": after.kind, "status": after.status,
                              "at": after.finished_at or utc_now_iso(), "error": after.error}))
    elif status_changed:
        events.append((STATUS, _status_data(after)))
    elif after.cancel_requested and not before.cancel_requested and after.status == JobStatus.RUNNING:
        events.append((STATUS, _status_data(after)))
    return events


def _status_data(record: JobRecord) -> dict[str, Any]:
    data = {"job_id": record.id, "kind": record.kind, "status": record.status, "at": utc_now_iso()}
    if record.cancel_requested:
        data["cancel_requested"] = True
    return data


def preview_iteration(key: str) -> int | None:
    """The iteration in a preview key (``results/<id>/previews/000050.png`` -> 50; ``shared.jobs.preview_key``)."""
    stem = key.rsplit("/", 1)[-1]
    if "/previews/" not in key or not stem.endswith(".png") or not stem[:-4].isdigit():
        return None
    return int(stem[:-4])


def item_data(after: JobRecord) -> dict[str, Any]:
    """A batch child's ``item`` event: its status and how far it is."""
    progress = after.progress or {}
    return {"job_id": after.id, "status": after.status, "percent": progress.get("percent")}


# --- writing (inside the registry's MULTI) ------------------------------------------------------------------------

def append_events(pipe: Any, before: JobRecord | None, after: JobRecord) -> int:
    """Queue the XADDs (and expiries) for ``before`` -> ``after`` on ``pipe``, a MULTI the caller executes with its
    record write. Returns how many job events were queued."""
    events = derive_events(before, after)
    if not events:
        return 0
    key = job_events_key(after.id)
    for name, data in events:
        pipe.xadd(key, {"event": name, "data": json.dumps(data)}, maxlen=JOB_STREAM_MAXLEN, approximate=True)
    terminal = is_terminal(after.status) and (before is None or before.status != after.status)
    pipe.expire(key, FINISHED_STREAM_TTL_S if terminal else JOB_STREAM_TTL_S)
    if after.batch_id and any(name != PREVIEW for name, _ in events):
        batch_key = batch_events_key(after.batch_id)
        pipe.xadd(batch_key, {"event": ITEM, "data": json.dumps(item_data(after))}, maxlen=BATCH_STREAM_MAXLEN,
                  approximate=True)
        pipe.expire(batch_key, JOB_STREAM_TTL_S)
    if terminal:
        pipe.xadd(TERMINAL_EVENTS_KEY, {"job_id": after.id, "kind": after.kind, "status": after.status,
                                        "tenant": after.tenant, "at": after.finished_at or utc_now_iso(),
                                        "batch_id": after.batch_id or ""},
                  maxlen=TERMINAL_STREAM_MAXLEN, approximate=True)
    return len(events)


# --- reading ------------------------------------------------------------------------------------------------------

def parse_entries(entries: Any) -> list[Event]:
    """``XRANGE``/``XREAD`` entries -> ``Event``s (entries without a known shape are skipped)."""
    events = []
    for entry_id, fields in entries or ():
        decoded = {_text(k): _text(v) for k, v in fields.items()}
        try:
            data = json.loads(decoded.get("data", "{}"))
        except ValueError:
            continue
        events.append(Event(_text(entry_id), decoded.get("event", ""), data))
    return events


def read_after(client: redis.Redis, key: str, after_id: str, *, block_ms: int, count: int = 100) -> list[Event]:
    """Events of stream ``key`` after entry ``after_id`` (exclusive), waiting up to ``block_ms`` for the first."""
    reply = client.xread({key: after_id}, count=count, block=block_ms)
    return parse_entries(reply[0][1]) if reply else []


def backlog(client: redis.Redis, key: str, after_id: str, count: int = JOB_STREAM_MAXLEN + 100) -> list[Event]:
    """The events after ``after_id`` that are already in the stream (no waiting)."""
    return parse_entries(client.xrange(key, min=f"({after_id}", max="+", count=count))


def compare_ids(a: str, b: str) -> int:
    """-1, 0 or 1 as stream entry id ``a`` is before, equal to or after ``b``."""
    pa, pb = split_id(a), split_id(b)
    return (pa > pb) - (pa < pb)


def split_id(entry_id: str) -> tuple[int, int]:
    """``"1700000000000-3"`` -> (1700000000000, 3); ``ValueError`` for anything else."""
    ms, _, seq = entry_id.partition("-")
    if not ms.isdigit() or not (seq.isdigit() if seq else True):
        raise ValueError(f"not a stream id: {entry_id!r}")
    return int(ms), int(seq or 0)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
