"""The reconciler: no accepted job is lost, whatever happened to its message or its worker.

Our job record (written before the 202) is the source of truth; the broker message is only a wake-up call. Every
``ATELIER_RECONCILE_INTERVAL_S`` one pass compares the two:

1. **Queued, but no message.** A job ``queued`` for longer than ``ATELIER_RECONCILE_GRACE_S`` whose id is in no
   queue list and not in kombu's ``unacked`` hash lost its message (Redis restarted between the record write and
   the publish, an AOF that lost its last second, a flushed queue). It is enqueued again.
2. **Running, but nobody runs it.** A job ``running`` whose lease (``worker/lease.py``) has expired has no live
   worker: the whole worker was killed (SIGKILL of the main process, lost machine), so its unacknowledged message sits
   in ``unacked`` until the visibility timeout, hours away; or its run failed while Redis was down and the message
   was acknowledged. If no message for it is waiting in a queue (and, when its message is in ``unacked``, the lease
   has been missing for the grace period too: a fresh pool process may still be starting to claim it), the job goes
   back to ``queued`` and is enqueued again; once it has been started ``ATELIER_MAX_DELIVERIES`` times it fails with
   ``worker_lost`` instead (a job that kills every worker must not loop forever).

Re-enqueueing is safe when in doubt: a duplicate message finds the job terminal (skipped) or its lease held (left
to the live worker), and ``registry.finish`` never overwrites a terminal status.

Where it runs: its own small process (``python -m worker.reconciler``), a service in docker-compose and a child of
``atelier dev``. Not inside the API (gunicorn runs several processes, and the API should only answer requests) and
not in Celery beat (one more moving part that needs Celery's scheduler state). Several reconcilers may run: a pass
takes a Redis lock (``SET NX PX``) so only one works at a time, and every change is a WATCHed transition anyway.
"""

from __future__ import annotations

import json
import logging
import secrets
import signal
import time
from dataclasses import dataclass, field
from types import FrameType

import redis

from services.queue import JobQueue
from services.redis_client import REDIS_ERRORS, compare_and_delete
from services.redis_keys import (
    CELERY_UNACKED_KEY,
    RECONCILER_LOCK_KEY,
    lease_key,
    no_lease_since_key,
    status_index_key,
)
from services.registry import JobRegistry
from services.videos import waits_for_segments
from shared.errors import Unavailable
from shared.jobs import JobRecord, JobStatus, utc_now_iso
from shared.settings import Settings
from shared.tasks import QUEUES

log = logging.getLogger(__name__)

LOCK_KEY = RECONCILER_LOCK_KEY
# kombu's Redis transport keeps delivered-but-unacknowledged messages in this hash (delivery tag -> message).
UNACKED_KEY = CELERY_UNACKED_KEY


@dataclass
class PassReport:
    """What one pass did (job ids per action)."""

    requeued_missing: list[str] = field(default_factory=list)
    requeued_lost_worker: list[str] = field(default_factory=list)
    failed_worker_lost: list[str] = field(default_factory=list)
    skipped_locked: bool = False

    @property
    def changed(self) -> int:
        return len(self.requeued_missing) + len(self.requeued_lost_worker) + len(self.failed_worker_lost)


class Reconciler:
    def __init__(self, registry: JobRegistry, queue: JobQueue, settings: Settings) -> None:
        self.registry = registry
        self.queue = queue
        self.settings = settings
        self.redis: redis.Redis = registry.redis  # the broker is the same Redis (shared.celery_config)

    def run_once(self, now_s: float | None = None) -> PassReport:
        report = PassReport()
        token = secrets.token_hex(8)
        lock_ms = int(max(self.settings.reconcile_interval_s, 5.0) * 2000)
        if not self.redis.set(LOCK_KEY, token, nx=True, px=lock_ms):
            report.skipped_locked = True
            return report
        try:
            now_s = time.time() if now_s is None else now_s
            waiting, unacked = self._messages()
            self._queued_without_message(now_s, waiting | unacked, report)
            self._running_without_worker(now_s, waiting, unacked, report)
        finally:
            compare_and_delete(self.redis, LOCK_KEY, token)
        if report.changed:
            log.warning("reconciler: requeued %d job(s) without a message, requeued %d whose worker was lost, "
                        "failed %d after the delivery cap", len(report.requeued_missing),
                        len(report.requeued_lost_worker), len(report.failed_worker_lost),
                        extra={"event": "reconciled"})
        return report

    # --- the two checks ---------------------------------------------------------------------------------------------

    def _queued_without_message(self, now_s: float, in_broker: set[str], report: PassReport) -> None:
        cutoff = now_s - self.settings.reconcile_grace_s
        for raw_id in self.redis.zrangebyscore(status_index_key(JobStatus.QUEUED.value), "-inf", cutoff):
            job_id = raw_id.decode()
            if job_id in in_broker:
                continue
            record = self.registry.get(job_id)
            if record is None or record.status != JobStatus.QUEUED or self._waits_for_its_model(record):
                continue
            self.queue.enqueue(job_id, queue=record.queue or QUEUES[0], kind=record.kind)
            report.requeued_missing.append(job_id)

    def _waits_for_its_model(self, record: JobRecord) -> bool:
        """A fast batch's child is queued without a message on purpose while its batch trains the style model it
        applies (api/batch_mode.py); the training's worker enqueues it. Once the training ended (even failed), it is
        re-enqueued like any other: it then runs, or fails with style_model_not_ready."""
        model_id = record.params.get("style_model")
        if not model_id:
            return False
        training = self.registry.get(model_id)
        return training is not None and not training.terminal

    def _waits_for_its_segments(self, job_id: str) -> bool:
        """A video between its plan and its assembly is running without a lease on purpose: its segments run, and
        the last to end enqueues it (worker/video/service.py). Once none runs (or one failed), it is recovered
        like any other lost job, which gets it failed, canceled or assembled."""
        record = self.registry.get(job_id)
        return record is not None and waits_for_segments(self.registry, record)

    def _running_without_worker(self, now_s: float, waiting: set[str], unacked: set[str],
                                report: PassReport) -> None:
        for raw_id in self.redis.zrange(status_index_key(JobStatus.RUNNING.value), 0, -1):
            job_id = raw_id.decode()
            if self.redis.exists(lease_key(job_id)) or job_id in waiting:
                # A live worker renews the lease / a redelivery is already queued (reject_on_worker_lost).
                self.redis.delete(no_lease_since_key(job_id))
                continue
            if self._waits_for_its_segments(job_id):
                continue
            if job_id in unacked and not self._missing_for_grace(job_id, now_s):
                # Delivered to a worker that has not claimed the lease yet (a fresh pool process after a crash
                # still starting), or to a dead worker. Only time tells them apart.
                continue
            self.redis.delete(no_lease_since_key(job_id))
            outcome = self._recover(job_id)
            if outcome == "requeued":
                report.requeued_lost_worker.append(job_id)
            elif outcome == "failed":
                report.failed_worker_lost.append(job_id)

    def _missing_for_grace(self, job_id: str, now_s: float) -> bool:
        """True once this job has been seen without a lease for ``reconcile_grace_s``."""
        key = no_lease_since_key(job_id)
        ttl_s = int(self.settings.reconcile_grace_s * 4 + 60)
        self.redis.set(key, repr(now_s), nx=True, ex=ttl_s)
        first_seen_s = float(self.redis.get(key) or now_s)
        return now_s - first_seen_s >= self.settings.reconcile_grace_s

    def _recover(self, job_id: str) -> str | None:
        """running + no lease -> queued (and enqueue), or failed after the delivery cap. None: nothing to do."""
        outcome: str | None = None
        cap = self.settings.max_deliveries

        def change(record: JobRecord) -> JobRecord | None:
            nonlocal outcome
            outcome = None  # reset on a WATCH retry
            if record.status != JobStatus.RUNNING or self.redis.exists(lease_key(job_id)):
                return None
            deliveries = int(record.deliveries or 0)
            if deliveries >= cap:
                outcome = "failed"
                record.status, record.finished_at = JobStatus.FAILED.value, utc_now_iso()
                record.error = {
                    "code": "worker_lost",
                    "message": f"the job was started {deliveries} times and its worker was lost each time (killed "
                               f"or out of memory?); giving up after {cap} attempts"}
            else:
                outcome = "requeued"
                record.status, record.worker, record.requeued_at = JobStatus.QUEUED.value, None, utc_now_iso()
            return record

        record = self.registry.transition(job_id, change)  # keeps the indexes and the outcome counter in step
        if outcome == "requeued":
            self.queue.enqueue(job_id, queue=record.queue or QUEUES[0], kind=record.kind)
        return outcome

    # --- the broker's view ------------------------------------------------------------------------------------------

    def _messages(self) -> tuple[set[str], set[str]]:
        """(task ids waiting in a queue list, task ids delivered and not yet acknowledged)."""
        waiting: set[str] = set()
        for queue in QUEUES:
            for raw in self.redis.lrange(queue, 0, -1):
                task_id = _task_id(raw)
                if task_id:
                    waiting.add(task_id)
        unacked: set[str] = set()
        for raw in self.redis.hvals(CELERY_UNACKED_KEY):
            try:
                message = json.loads(raw)[0]  # [message, exchange, routing_key]
            except (ValueError, IndexError, TypeError):
                continue
            task_id = _task_id(json.dumps(message))
            if task_id:
                unacked.add(task_id)
        return waiting, unacked


def _task_id(raw: bytes | str) -> str | None:
    try:
        envelope = json.loads(raw)
        return str(envelope["headers"]["id"])
    except (ValueError, KeyError, TypeError):
        return None


class _Stop(Exception):
    pass


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def main() -> None:
    """Loop forever (until SIGTERM/SIGINT): one pass every ``ATELIER_RECONCILE_INTERVAL_S``."""
    from shared.logging import configure_logging

    settings = Settings.from_env()
    configure_logging("reconciler", settings.log_format)
    reconciler = Reconciler(JobRegistry.from_url(settings.redis_url), JobQueue(settings), settings)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stop)
    log.info("reconciler: a pass every %.1f s (queued grace %.0f s, delivery cap %d)",
             settings.reconcile_interval_s, settings.reconcile_grace_s, settings.max_deliveries)
    try:
        while True:
            try:
                reconciler.run_once()
            except (Unavailable, *REDIS_ERRORS) as exc:  # Redis down: try again next time
                log.warning("reconciler: pass skipped, Redis unavailable: %s", exc)
            time.sleep(settings.reconcile_interval_s)
    except _Stop as stop:
        log.info("reconciler: %s, stopping", stop)


if __name__ == "__main__":
    main()
