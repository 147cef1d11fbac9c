"""Batch records in Redis: one style set and parameters, many contents, each content an ordinary child job.

Layout (keys in ``services.redis_keys``):

- ``atelier:batch:<id>``: the batch, one JSON document (``new_batch_record``): style input keys and names, params
  (with ``style_blend``), ``created_at``, ``canceled``;
- ``atelier:batch:<id>:items``: list of ``{"name", "job_id"}`` JSON entries in the order they were added;
- ``atelier:batch:<id>:names``: hash source name -> job id. Names are unique in a batch: adding a name that is
  already there returns the existing item instead of a second job. That makes adding idempotent, which is what lets
  ``atelier batch`` resume after Ctrl-C without ever submitting an image twice.

Counts, progress and status are derived from the children's records every time they are read (the child records
are the truth; nothing to keep in step). Reading every child is O(items) per request; fine for thousands.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterable
from typing import Any

import redis

from services.redis_client import redis_errors
from services.redis_keys import batch_events_key, batch_items_key, batch_key, batch_names_key, job_key
from services.registry import JobRegistry
from shared.errors import BadRequest, NotFound
from shared.jobs import STATUS_VALUES, JobRecord, JobStatus, is_terminal, new_job_id, parse_iso, utc_now_iso

MAX_NAME_CHARS = 300
MAX_ITEMS_PAGE = 500


def new_batch_record(
    *, params: dict[str, Any], style_keys: list[str], style_names: list[str | None], batch_id: str | None = None
) -> dict[str, Any]:
    return {
        "id": batch_id or new_job_id(),
        "created_at": utc_now_iso(),
        "params": params,
        "inputs": {"styles": list(style_keys), "style_names": list(style_names)},
        "canceled": False,
        "canceled_at": None,
    }


def clean_source_name(raw: str | None, *, field: str = "name") -> str:
    """A source name as the batch keeps it: a relative POSIX path (``a/x.jpg``) with no ``..``, no leading ``/``.

    It names a result in the zip and in the CLI's output folder, so anything that could escape a folder is refused
    with a 400 naming the value."""
    name = (raw or "").replace("\\", "/").strip()
    while name.startswith("./"):
        name = name[2:]
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if not parts or any(part == ".." for part in parts) or name.startswith("/") or len(name) > MAX_NAME_CHARS \
            or any(ord(ch) < 32 for ch in name):
        raise BadRequest("bad_item_name", f"{field}={raw!r} is not allowed; expected a relative path such as "
                         f"'a/photo.jpg' (no '..', no leading '/', at most {MAX_NAME_CHARS} characters)", field=field)
    return "/".join(parts)


def result_names(source_names: Iterable[str]) -> list[str]:
    """The file name of each source's result: the same relative path with ``.png`` (``a/x.jpg`` -> ``a/x.png``).

    Where two sources would give the same name (``x.jpg`` and ``x.png``), the later ones keep their extension
    (``x.jpg.png``) so no result overwrites another. Used by the zip and by ``atelier batch``, so both agree."""
    taken: set[str] = set()
    names = []
    for source in source_names:
        stem, _ext = posixpath.splitext(source)
        candidate = stem + ".png"
        if candidate in taken:
            candidate = source + ".png"
        suffix = 2
        while candidate in taken:
            candidate = f"{stem}.{suffix}.png"
            suffix += 1
        taken.add(candidate)
        names.append(candidate)
    return names


def summarize(items: list[dict[str, Any]], children: list[JobRecord | None],
              now_iso: str | None = None) -> dict[str, Any]:
    """Counts per status, overall progress (0..1) and an ETA from the children's records (pure; unit-tested).

    Progress counts a terminal child as 1 and a running one by its iterations. The ETA extrapolates the batch's
    own pace: time since its first child started divided by the work done so far, times the work left."""
    counts = dict.fromkeys(STATUS_VALUES, 0)
    done_units = 0.0
    first_start = None
    for child in children:
        status = child.status if child else JobStatus.FAILED.value  # a vanished record counts as failed
        counts[status] += 1
        if child is None or is_terminal(status):
            done_units += 1.0
        elif status == JobStatus.RUNNING:
            progress = child.progress or {}
            if progress.get("percent") is not None:  # the share of work (coarse to fine weighs by pixels)
                done_units += min(1.0, float(progress["percent"]) / 100.0)
            elif progress.get("iterations"):
                done_units += min(1.0, progress.get("iteration", 0) / progress["iterations"])
        started = child.started_at if child else None
        if started and (first_start is None or started < first_start):
            first_start = started
    total = len(items)
    fraction = done_units / total if total else 0.0
    eta_s = None
    if first_start and 0 < fraction < 1:
        elapsed_s = (parse_iso(now_iso or utc_now_iso()) - parse_iso(first_start)).total_seconds()
        eta_s = round(max(0.0, elapsed_s * (1 - fraction) / fraction), 1)
    elif total and fraction >= 1:
        eta_s = 0.0
    return {"total": total, "counts": counts, "progress": round(fraction, 4), "eta_s": eta_s}


def batch_status(record: dict[str, Any], summary: dict[str, Any]) -> str:
    """``empty`` (no items yet), ``running`` / ``canceling`` (children queued or running), else ``finished`` or
    ``canceled``. Success and failure are in the counts: a finished batch may have failed children."""
    counts = summary["counts"]
    active = counts[JobStatus.QUEUED.value] + counts[JobStatus.RUNNING.value]
    if record.get("canceled"):
        return "canceling" if active else "canceled"
    if not summary["total"]:
        return "empty"
    return "running" if active else "finished"


class BatchRegistry:
    """Batch records in the same Redis as the job registry; children are read through ``jobs``."""

    def __init__(self, jobs: JobRegistry) -> None:
        self.jobs = jobs
        self.redis: redis.Redis = jobs.redis

    @redis_errors
    def create(self, record: dict[str, Any]) -> None:
        if not self.redis.set(batch_key(record["id"]), json.dumps(record), nx=True):
            raise ValueError(f"batch {record['id']!r} already exists")

    @redis_errors
    def get(self, batch_id: str) -> dict[str, Any] | None:
        raw = self.redis.get(batch_key(batch_id))
        return None if raw is None else json.loads(raw)

    def require(self, batch_id: str) -> dict[str, Any]:
        record = self.get(batch_id)
        if record is None:
            raise NotFound("batch_not_found", f"no batch with id {batch_id!r}", field="id")
        return record

    @redis_errors
    def delete(self, batch_id: str) -> None:
        """Remove the batch and its item index (rollback of a create whose first items could not be queued)."""
        self.redis.delete(batch_key(batch_id), batch_items_key(batch_id), batch_names_key(batch_id),
                          batch_events_key(batch_id))

    # --- items -------------------------------------------------------------------------------------------------

    @redis_errors
    def reserve_name(self, batch_id: str, name: str, job_id: str) -> str | None:
        """Claim ``name`` for ``job_id``. Returns None if it was free, else the job id that already has it."""
        if self.redis.hsetnx(batch_names_key(batch_id), name, job_id):
            return None
        existing = self.redis.hget(batch_names_key(batch_id), name)
        return existing.decode() if existing is not None else None

    @redis_errors
    def release_name(self, batch_id: str, name: str, job_id: str) -> None:
        """Undo ``reserve_name`` (only if the name still points at ``job_id``)."""
        self.redis.eval(_HDEL_IF_LUA, 1, batch_names_key(batch_id), name, job_id)

    @redis_errors
    def append_item(self, batch_id: str, name: str, job_id: str) -> None:
        self.redis.rpush(batch_items_key(batch_id), json.dumps({"name": name, "job_id": job_id}))

    @redis_errors
    def remove_item(self, batch_id: str, name: str, job_id: str) -> None:
        self.redis.lrem(batch_items_key(batch_id), 0, json.dumps({"name": name, "job_id": job_id}))
        self.release_name(batch_id, name, job_id)

    @redis_errors
    def item_count(self, batch_id: str) -> int:
        return int(self.redis.llen(batch_items_key(batch_id)))

    @redis_errors
    def items(self, batch_id: str, offset: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        end = -1 if limit is None else offset + limit - 1
        return [json.loads(raw) for raw in self.redis.lrange(batch_items_key(batch_id), offset, end)]

    @redis_errors
    def children(self, items: list[dict[str, Any]]) -> list[JobRecord | None]:
        """The child job records of ``items``, in order (None where a record has gone)."""
        records: list[JobRecord | None] = []
        chunk = 500
        for start in range(0, len(items), chunk):
            keys = [job_key(item["job_id"]) for item in items[start:start + chunk]]
            records += [None if raw is None else JobRecord.from_dict(json.loads(raw)) for raw in self.redis.mget(keys)]
        return records

    # --- cancel ------------------------------------------------------------------------------------------------

    @redis_errors
    def mark_canceled(self, batch_id: str) -> dict[str, Any]:
        """Set the batch's ``canceled`` flag (once); new items are refused from then on."""
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(batch_key(batch_id))
                    raw = pipe.get(batch_key(batch_id))
                    if raw is None:
                        raise NotFound("batch_not_found", f"no batch with id {batch_id!r}", field="id")
                    record = json.loads(raw)
                    if record.get("canceled"):
                        pipe.unwatch()
                        return record
                    record.update(canceled=True, canceled_at=utc_now_iso())
                    pipe.multi()
                    pipe.set(batch_key(batch_id), json.dumps(record))
                    pipe.execute()
                    return record
                except redis.WatchError:
                    continue

    def cancel(self, batch_id: str) -> dict[str, Any]:
        """Cancel the batch: queued children become ``canceled`` at once (the worker's ``mark_running`` refuses
        them, so they never run), running ones get ``cancel_requested`` and stop at their next progress report,
        finished ones (and their results) stay as they are."""
        record = self.mark_canceled(batch_id)
        for item in self.items(batch_id):
            try:
                self.jobs.request_cancel(item["job_id"])
            except NotFound:
                continue
        return record


_HDEL_IF_LUA = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"""
