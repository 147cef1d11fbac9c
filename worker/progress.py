"""Progress of a running job: throttled writes into the job record, previews in storage, and the cancel check.

The engine calls ``ProgressReporter`` every ``params.progress_every`` iterations with a ``Progress``. Each call:

1. writes ``{iteration, iterations, percent, losses, eta_s, elapsed_s}`` into the record, at most once per
   ``min_interval_s`` (a tiny image can do hundreds of iterations a second; Redis and pollers need not see each one),
   except the last report, which is always written;
2. stores a preview PNG whenever the iteration count has passed another multiple of ``preview_every`` (the engine
   renders the preview only when asked, so skipped previews cost nothing);
3. returns True, which asks the engine to stop, when the job's ``cancel_requested`` flag is set or this process has
   lost the job's lease. Cancellation is therefore cooperative (BRIEF §4): a running job stops within one progress
   interval.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from shared.errors import Unavailable
from shared.images import encode_png
from shared.jobs import preview_key

log = logging.getLogger(__name__)


class ProgressLike(Protocol):
    iteration: int
    iterations: int
    losses: dict[str, float]
    elapsed_s: float

    def preview(self) -> Any: ...


def progress_snapshot(progress: ProgressLike) -> dict[str, Any]:
    """The record's ``progress`` field. ``percent`` is the share of the work done: the engine's ``work_done`` where
    it gives one (coarse to fine, whose iterations grow in cost), else iteration / iterations; ``eta_s``
    extrapolates the time per unit of work so far."""
    iterations = max(int(progress.iterations), 1)
    iteration = min(int(progress.iteration), iterations)
    work_done = getattr(progress, "work_done", None)
    done = min(max(float(work_done), 0.0), 1.0) if work_done is not None else iteration / iterations
    eta_s = None
    if done > 0:
        eta_s = round(progress.elapsed_s / done * (1.0 - done), 1)
    return {
        "iteration": iteration,
        "iterations": iterations,
        "percent": round(100.0 * done, 1),
        "losses": {name: float(value) for name, value in progress.losses.items()},
        "eta_s": eta_s,
        "elapsed_s": round(float(progress.elapsed_s), 2),
    }


class ProgressReporter:
    """The ``on_progress`` callback handed to the engine for one job."""

    def __init__(
        self,
        registry: Any,
        storage: Any,
        job_id: str,
        *,
        min_interval_s: float,
        preview_every: int,
        lease_lost: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.storage = storage
        self.job_id = job_id
        self.min_interval_s = min_interval_s
        self.preview_every = preview_every
        self.lease_lost = lease_lost
        self.clock = clock
        self.writes = 0
        self.previews: list[str] = []
        self.stop_reason: str | None = None  # "canceled" | "lease_lost" once the engine was asked to stop
        self._last_write_s: float | None = None
        self._last_preview_block = 0

    def __call__(self, progress: ProgressLike) -> bool:
        self._write_progress(progress)
        self._maybe_store_preview(progress)
        return self._should_stop()

    def _write_progress(self, progress: ProgressLike) -> None:
        now_s = self.clock()
        last = progress.iteration >= progress.iterations
        if not last and self._last_write_s is not None and now_s - self._last_write_s < self.min_interval_s:
            return
        try:
            self.registry.set_progress(self.job_id, progress_snapshot(progress))
        except Unavailable as exc:
            # Redis blinked (a restart): progress is advisory, so keep computing; the lease heartbeat decides
            # whether this process still owns the job, and the final record write is retried by the caller.
            log.warning("job %s: progress not written (%s); continuing", self.job_id, exc.message)
            return
        self._last_write_s = now_s
        self.writes += 1

    def _maybe_store_preview(self, progress: ProgressLike) -> None:
        if self.preview_every <= 0 or progress.iteration <= 0:
            return
        # Progress may come every 10 iterations and previews be wanted every 25: store one each time the count
        # passes another multiple of preview_every. The final image is the result, not a preview.
        block = progress.iteration // self.preview_every
        if block <= self._last_preview_block or progress.iteration >= progress.iterations:
            return
        self._last_preview_block = block
        key = preview_key(self.job_id, progress.iteration)
        self.storage.put(key, encode_png(progress.preview()), content_type="image/png")
        self.registry.add_preview(self.job_id, key)
        self.previews.append(key)

    def _should_stop(self) -> bool:
        if self.lease_lost is not None and self.lease_lost.is_set():
            self.stop_reason = "lease_lost"
            return True
        try:
            cancel = self.registry.cancel_requested(self.job_id)
        except Unavailable:
            return False  # cannot read the flag during an outage; the next report will
        if cancel:
            self.stop_reason = "canceled"
            return True
        return False
