"""The job registry: our own job records in Redis (BRIEF §2: the record is ours, not Celery's).

Keys are in ``services.redis_keys`` (the job record, the newest-first indexes per status and per tenant, the lease).
Records are ``shared.jobs.JobRecord``; every kind of job shares this registry.

Status transitions are read-modify-write under WATCH/MULTI (optimistic locking, retried on conflict), so a cancel
and a worker starting the job at the same moment cannot both win. Every Redis error becomes
``Unavailable("redis_unavailable", ...)``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable
from typing import Any

import redis

from services import events, metrics
from services.redis_client import compare_and_delete, connect, redis_errors
from services.redis_keys import (
    ALL_JOBS_KEY,
    job_events_key,
    job_key,
    kind_index_key,
    lease_key,
    status_index_key,
    tenant_index_key,
)
from shared.errors import BadRequest, NotFound
from shared.jobs import STATUS_VALUES, JobRecord, JobStatus, is_terminal, parse_iso, utc_now_iso

MAX_LIST_LIMIT = 100

# Module-level aliases: inside JobRegistry the name ``list`` is the method, not the builtin.
Records = list[JobRecord]
Entries = list[tuple[str, float]]
Change = Callable[[JobRecord], JobRecord | None]


class JobRegistry:
    """Job records in Redis. Build with a ``redis.Redis`` client or ``JobRegistry.from_url``."""

    def __init__(self, redis_client: redis.Redis) -> None:
        self.redis = redis_client

    @classmethod
    def from_url(cls, redis_url: str) -> JobRegistry:
        return cls(connect(redis_url))

    # --- reading ---------------------------------------------------------------------------------------------

    @redis_errors
    def ping(self) -> None:
        self.redis.ping()

    @redis_errors
    def get(self, job_id: str) -> JobRecord | None:
        raw = self.redis.get(job_key(job_id))
        return None if raw is None else JobRecord.from_dict(json.loads(raw))

    def require(self, job_id: str) -> JobRecord:
        """The record, or ``NotFound`` naming the id."""
        record = self.get(job_id)
        if record is None:
            raise NotFound("job_not_found", f"no job with id {job_id!r}", field="id")
        return record

    @redis_errors
    def cancel_requested(self, job_id: str) -> bool:
        record = self.get(job_id)
        return bool(record and (record.cancel_requested or record.status == JobStatus.CANCELED))

    @redis_errors
    def list(
        self, status: str | None = None, limit: int = 20, cursor: str | None = None, *, tenant: str | None = None,
        kind: str | None = None,
    ) -> tuple[Records, str | None]:
        """Newest first. ``cursor`` is the ``next_cursor`` of the previous page; it stays valid when new jobs
        arrive (it names the last job seen, not an offset). ``kind`` (with ``tenant``) lists one kind of work."""
        if status is not None and status not in STATUS_VALUES:
            raise BadRequest("bad_status", f"status={status!r} is not allowed; expected one of "
                             + ", ".join(STATUS_VALUES), field="status")
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise BadRequest("bad_limit", f"limit={limit} is not allowed; expected 1 to {MAX_LIST_LIMIT}",
                             field="limit")
        if tenant is not None and kind is not None:
            index = kind_index_key(tenant, kind, status)
        elif tenant is not None:
            index = tenant_index_key(tenant, status)
        else:
            index = status_index_key(status) if status else ALL_JOBS_KEY
        entries = self._page_entries(index, limit + 1, cursor)  # one extra tells whether another page exists
        page = entries[:limit]
        records = []
        if page:
            for raw in self.redis.mget([job_key(job_id) for job_id, _ in page]):
                if raw is not None:  # deleted between the index read and now
                    records.append(JobRecord.from_dict(json.loads(raw)))
        next_cursor = _encode_cursor(*page[-1]) if len(entries) > limit else None
        return records, next_cursor

    def _page_entries(self, index: str, count: int, cursor: str | None) -> Entries:
        """Up to ``count`` (job id, score) pairs after ``cursor``, newest first."""
        if cursor is None:
            return _pairs(self.redis.zrevrange(index, 0, count - 1, withscores=True))
        last_id, score = _decode_cursor(cursor)
        rank = self.redis.zrevrank(index, last_id)
        if isinstance(rank, int):  # None when the cursor's job left this index
            return _pairs(self.redis.zrevrange(index, rank + 1, rank + count, withscores=True))
        # The cursor's job changed status or was deleted: continue strictly below its creation time.
        return _pairs(self.redis.zrevrangebyscore(index, f"({score!r}", "-inf", start=0, num=count, withscores=True))

    @redis_errors
    def count_for_tenant(self, tenant: str, status: str) -> int:
        """How many of ``tenant``'s jobs are in ``status`` (the queued-jobs cap, api/ratelimit.py)."""
        return int(self.redis.zcard(tenant_index_key(tenant, status)))

    @redis_errors
    def count_by_status(self) -> dict[str, int]:
        pipe = self.redis.pipeline(transaction=False)
        for status in STATUS_VALUES:
            pipe.zcard(status_index_key(status))
        return dict(zip(STATUS_VALUES, pipe.execute(), strict=True))

    # --- writing ---------------------------------------------------------------------------------------------

    @redis_errors
    def create(self, record: JobRecord) -> None:
        """Store a new record and index it, atomically. An existing id is an error (ids are random)."""
        job_id = record.id
        score = _score(record)
        with self.redis.pipeline() as pipe:
            pipe.watch(job_key(job_id))
            if pipe.exists(job_key(job_id)):
                raise ValueError(f"job {job_id!r} already exists")
            pipe.multi()
            pipe.set(job_key(job_id), json.dumps(record.to_dict()))
            for index in (*_lifetime_indexes(record), *_status_indexes(record, record.status)):
                pipe.zadd(index, {job_id: score})
            events.append_events(pipe, None, record)  # the stream's first entry: "status queued"
            pipe.execute()

    @redis_errors
    def delete(self, job_id: str) -> None:
        """Remove a record and its index entries (rollback of a request that could not be enqueued)."""
        raw = self.redis.get(job_key(job_id))
        record = JobRecord.from_dict(json.loads(raw)) if raw is not None else None
        pipe = self.redis.pipeline()
        pipe.delete(job_key(job_id), lease_key(job_id), job_events_key(job_id))
        pipe.zrem(ALL_JOBS_KEY, job_id)
        for status in STATUS_VALUES:
            pipe.zrem(status_index_key(status), job_id)
            for index in _status_indexes(record, status) if record is not None else ():
                pipe.zrem(index, job_id)
        for index in _lifetime_indexes(record) if record is not None else ():
            pipe.zrem(index, job_id)
        pipe.execute()

    def update(self, job_id: str, **fields: Any) -> JobRecord:
        """Set top-level fields; returns the new record. ``NotFound`` if there is no such job."""

        def change(record: JobRecord) -> JobRecord:
            if "status" in fields:
                fields["status"] = JobStatus(fields["status"]).value
            for name, value in fields.items():
                if not hasattr(record, name) or name == "extra":
                    raise ValueError(f"job records have no field {name!r}")
                setattr(record, name, value)
            return record

        return self.transition(job_id, change)

    def mark_running(self, job_id: str, hostname: str, pid: int) -> bool:
        """Claim the job for this worker: ``queued`` -> ``running``, counting the delivery.

        Also accepts ``running`` -> ``running``: that is a redelivery after the previous worker was lost (late acks
        + reject on worker lost, BRIEF §4). Callers must hold the job's lease (``acquire_lease``) so that a
        duplicate delivery while the first worker is alive backs off instead. Returns False, changing nothing,
        when the job is terminal (for example canceled while it waited in the queue) or gone.
        """
        claimed = False

        def change(record: JobRecord) -> JobRecord | None:
            nonlocal claimed
            claimed = False  # reset: change() runs again when a concurrent write forces a retry
            if record.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
                return None
            claimed = True
            record.status = JobStatus.RUNNING.value
            record.started_at = record.started_at or utc_now_iso()
            record.worker = {"hostname": hostname, "pid": int(pid)}
            record.deliveries = int(record.deliveries or 0) + 1
            return record

        try:
            self.transition(job_id, change)
        except NotFound:
            return False
        return claimed

    def set_progress(self, job_id: str, progress: dict[str, Any]) -> bool:
        """Replace ``progress`` while the job runs; ignored (False) once the job is terminal."""
        return self._update_while_running(job_id, lambda record: setattr(record, "progress", progress))

    def add_preview(self, job_id: str, key: str) -> bool:
        """Append a preview key (once) while the job runs."""

        def change(record: JobRecord) -> None:
            if key not in record.previews:
                record.previews.append(key)

        return self._update_while_running(job_id, change)

    def finish(
        self,
        job_id: str,
        status: str | JobStatus,
        *,
        result: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> bool:
        """Move a job to a terminal status. Returns False (and changes nothing) if it already was terminal, so a
        duplicate delivery cannot overwrite a finished job."""
        status = JobStatus(status)
        if not is_terminal(status):
            raise ValueError(f"finish() needs a terminal status, got {status.value!r}")
        finished = False

        def change(record: JobRecord) -> JobRecord | None:
            nonlocal finished
            finished = False  # reset on retry (see mark_running)
            if record.terminal:
                return None
            finished = True
            record.status, record.finished_at = status.value, utc_now_iso()
            record.result, record.error = result, error
            if metrics is not None:
                record.metrics = metrics
            return record

        self.transition(job_id, change)
        return finished

    def request_cancel(self, job_id: str) -> JobRecord:
        """Cancel: a queued job becomes ``canceled`` at once (it will never run: the worker's ``mark_running``
        refuses it); a running job gets ``cancel_requested`` and the worker stops at its next progress report;
        a terminal job is left as it is. Returns the record after the change."""

        def change(record: JobRecord) -> JobRecord | None:
            if record.status == JobStatus.QUEUED:
                record.status, record.finished_at = JobStatus.CANCELED.value, utc_now_iso()
                record.cancel_requested = True
                return record
            if record.status == JobStatus.RUNNING and not record.cancel_requested:
                record.cancel_requested = True
                return record
            return None

        return self.transition(job_id, change)

    # --- leases ----------------------------------------------------------------------------------------------

    @redis_errors
    def acquire_lease(self, job_id: str, owner: str, ttl_s: float) -> bool:
        """Take the job's lease for ``ttl_s`` seconds unless someone else holds it (re-acquiring our own is OK)."""
        key = lease_key(job_id)
        if self.redis.set(key, owner, nx=True, px=int(ttl_s * 1000)):
            return True
        return self.renew_lease(job_id, owner, ttl_s)

    @redis_errors
    def renew_lease(self, job_id: str, owner: str, ttl_s: float) -> bool:
        """Extend our lease (or re-take it if it expired and is free); False if someone else holds it now."""
        return bool(self.redis.eval(_RENEW_LEASE_LUA, 1, lease_key(job_id), owner, int(ttl_s * 1000)))

    @redis_errors
    def release_lease(self, job_id: str, owner: str) -> None:
        compare_and_delete(self.redis, lease_key(job_id), owner)

    # --- internals -------------------------------------------------------------------------------------------

    def _update_while_running(self, job_id: str, mutate: Callable[[JobRecord], None]) -> bool:
        changed = False

        def change(record: JobRecord) -> JobRecord | None:
            nonlocal changed
            changed = False  # reset on retry (see mark_running)
            if record.status != JobStatus.RUNNING:
                return None
            mutate(record)
            changed = True
            return record

        try:
            self.transition(job_id, change)
        except NotFound:
            return False
        return changed

    @redis_errors
    def transition(self, job_id: str, change: Change) -> JobRecord:
        """Apply ``change`` to the record under WATCH/MULTI, retrying if another client wrote it meanwhile.
        ``change`` mutates and returns the record, or returns None to leave it unchanged. Keeps the status indexes
        and the outcome counter in step, and appends the change's events (``services.events``) in the same MULTI as
        the record write, so an event exists exactly when its change was committed. Public so other writers of job
        state (the reconciler) share this one transition instead of writing records themselves."""
        key = job_key(job_id)
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    if raw is None:
                        raise NotFound("job_not_found", f"no job with id {job_id!r}", field="id")
                    record = JobRecord.from_dict(json.loads(raw))
                    old_status = record.status
                    before = JobRecord.from_dict(json.loads(raw))  # change() mutates record in place
                    new_record = change(record)
                    if new_record is None:
                        pipe.unwatch()
                        return JobRecord.from_dict(json.loads(raw))
                    pipe.multi()
                    pipe.set(key, json.dumps(new_record.to_dict()))
                    if new_record.status != old_status:
                        score = _score(new_record)
                        for index in _status_indexes(new_record, old_status):
                            pipe.zrem(index, job_id)
                        for index in _status_indexes(new_record, new_record.status):
                            pipe.zadd(index, {job_id: score})
                        if is_terminal(new_record.status):
                            # Same MULTI as the status change: each job counted exactly once (services/metrics.py).
                            metrics.count_job_finished(pipe, new_record.to_dict())
                    events.append_events(pipe, before, new_record)
                    pipe.execute()
                    return new_record
                except redis.WatchError:
                    continue


# Renewal also re-takes a lease that expired while nobody else took it: a heartbeat starved for a moment (a process
# importing TensorFlow holds the GIL for seconds) must not make a healthy run give up its job. Only a lease now held
# by another delivery counts as lost.
_RENEW_LEASE_LUA = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

def _lifetime_indexes(record: JobRecord) -> tuple[str, ...]:
    """The indexes a job is in from creation to deletion, whatever its status."""
    return ALL_JOBS_KEY, tenant_index_key(record.tenant), kind_index_key(record.tenant, record.kind)


def _status_indexes(record: JobRecord, status: str) -> tuple[str, ...]:
    """The indexes a job is in while it has ``status``."""
    return (status_index_key(status), tenant_index_key(record.tenant, status),
            kind_index_key(record.tenant, record.kind, status))


def _score(record: JobRecord) -> float:
    return parse_iso(record.created_at).timestamp()


def _pairs(entries: Any) -> Entries:
    return [(member.decode() if isinstance(member, bytes) else str(member), float(score)) for member, score in entries]


def _encode_cursor(job_id: str, score: float) -> str:
    """Opaque to clients: the last job of the page and its creation score, base64url."""
    return base64.urlsafe_b64encode(f"{score!r}|{job_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[str, float]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        score_text, job_id = text.split("|", 1)
        score = float(score_text)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        job_id, score = "", math.nan
    if not job_id or not math.isfinite(score):  # a forged "nan" would make Redis itself fail
        raise BadRequest("bad_cursor", f"cursor={cursor!r} is not allowed; pass the next_cursor of a previous page",
                         field="cursor")
    return job_id, score
