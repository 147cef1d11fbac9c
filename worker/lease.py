"""A per-job lease, so that two deliveries of one job never run it at the same time.

Why: with late acknowledgement, a message comes back when a worker dies (``task_reject_on_worker_lost``) or, by
mistake, when a job outlives the Redis visibility timeout. The second delivery must not start while the first is
still running, yet must take over when the first is dead. A lease does both: the registry keeps
``atelier:lease:<job_id>`` with a random token and a short TTL, and a heartbeat thread in the running process renews
it. A live holder keeps renewing; a dead one (SIGKILL, OOM, lost machine) stops, and the key expires within
``ttl_s``. Renewal and release are compare-and-set scripts in the registry, so a process never extends or deletes a
lease that has passed to someone else.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from typing import Any

from shared.errors import Unavailable

log = logging.getLogger(__name__)

LEASE_TTL_S = 20.0  # default; workers use Settings.lease_ttl_s (ATELIER_LEASE_TTL_S)
# Three renewals per TTL: one slow Redis round trip or a busy moment does not lose the lease.
HEARTBEAT_FRACTION = 1 / 3


class JobLease:
    """Exclusive right to run one job. ``claim()`` it, then ``with lease.held(): ...`` keeps it renewed."""

    def __init__(self, registry: Any, job_id: str, *, owner: str, ttl_s: float = LEASE_TTL_S) -> None:
        self.registry = registry
        self.job_id = job_id
        self.ttl_s = ttl_s
        # owner (hostname:pid) is for people reading Redis; the random part makes the token unique per delivery.
        self.token = f"{owner}:{secrets.token_hex(8)}"
        self.lost = threading.Event()  # set when a renewal finds the lease gone: stop working on the job
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def try_acquire(self) -> bool:
        return bool(self.registry.acquire_lease(self.job_id, self.token, self.ttl_s))

    def claim(self, *, poll_s: float = 0.5) -> bool:
        """Acquire now, or wait up to one TTL for the current holder's lease to expire.

        True: we hold the lease. False: the holder kept renewing for a whole TTL, so it is alive and running this
        job; the caller leaves the job to it.
        """
        deadline = time.monotonic() + self.ttl_s + 1.0
        while True:
            if self.try_acquire():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll_s)

    def renew(self) -> bool:
        return bool(self.registry.renew_lease(self.job_id, self.token, self.ttl_s))

    def release(self) -> None:
        try:
            self.registry.release_lease(self.job_id, self.token)
        except Unavailable:
            # The lease expires by itself within ttl_s; nothing else to do.
            log.warning("could not release the lease of job %s (Redis unavailable); it expires in %.0f s",
                        self.job_id, self.ttl_s)

    def held(self) -> _Heartbeat:
        """Context manager: renew in a background thread while the body runs, release at the end."""
        return _Heartbeat(self)

    def _heartbeat(self) -> None:
        interval_s = self.ttl_s * HEARTBEAT_FRACTION
        while not self._stop.wait(interval_s):
            try:
                if not self.renew():
                    log.error("lease of job %s was lost (expired or taken over); stopping work on it", self.job_id)
                    self.lost.set()
                    return
            except Unavailable as exc:
                # Keep trying: the lease lives until its TTL runs out, and Redis may come back before then.
                log.warning("lease renewal for job %s failed: %s", self.job_id, exc)


class _Heartbeat:
    def __init__(self, lease: JobLease) -> None:
        self.lease = lease

    def __enter__(self) -> JobLease:
        lease = self.lease
        lease._stop.clear()
        lease._thread = threading.Thread(target=lease._heartbeat, name=f"lease-{lease.job_id[:8]}", daemon=True)
        lease._thread.start()
        return lease

    def __exit__(self, *exc_info: object) -> None:
        lease = self.lease
        lease._stop.set()
        if lease._thread is not None:
            lease._thread.join(timeout=5)
        lease.release()
