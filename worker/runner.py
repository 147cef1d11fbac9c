"""The job runner: read the record, fetch inputs, call the engine, store outputs, update the record.

It is deliberately free of Celery so it can be tested with a real Redis and storage and a stand-in engine; the
Celery task in ``worker/tasks.py`` is a few lines around ``JobRunner.run``.

What makes a run safe to repeat (late acks redeliver messages, BRIEF §4):

- outputs go to deterministic keys (``results/<job_id>/...``), so a second run overwrites rather than duplicates;
- a terminal job is skipped, and ``registry.finish`` refuses to overwrite a terminal status;
- the job's lease (``worker/lease.py``) keeps two deliveries from running at the same time;
- ``mark_running`` counts deliveries; a job whose worker keeps dying (a picture that runs the GPU out of memory and
  gets the process killed) fails with ``worker_lost`` after ``max_deliveries`` starts instead of looping forever.

Errors become ``failed`` with the error's stable ``code`` and a readable ``message``; the traceback goes to the worker
log only, never into the record.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.errors import AtelierError, EngineError, Unavailable
from shared.images import encode_png, load_rgb
from shared.jobs import JobKind, JobRecord, JobStatus, metrics_key, parse_iso, result_key
from shared.params import StyleParams
from shared.settings import Settings, engine_memory_budget_bytes
from worker.faults import crash_if_requested
from worker.lease import JobLease
from worker.progress import ProgressReporter
from worker.retry import with_backoff
from worker.style_cache import StyleTargetCache

log = logging.getLogger(__name__)

# Outcomes of JobRunner.run besides the terminal statuses.
SKIPPED = "skipped"  # missing, already terminal, or canceled before it started
LEFT_TO_OTHER = "left_to_other_worker"  # a live worker holds the lease (duplicate delivery)
LEASE_LOST = "lease_lost"  # we stopped because another delivery took the job over


def _engine_stylize(*args: Any, **kwargs: Any) -> Any:
    # Imported on first use: TensorFlow must load in the process that runs the job, never before a fork.
    from worker.engine import stylize

    return stylize(*args, **kwargs)


def _engine_apply_fast(*args: Any, **kwargs: Any) -> Any:
    from worker.engine.feedforward import stylize_fast

    return stylize_fast(*args, **kwargs)


@dataclass
class _Outcome:
    """What a stylize job's engine call produced (the Gatys engine's ``StyleResult`` has the same three fields)."""

    image: Any
    metrics: dict[str, Any]
    cancelled: bool


@dataclass
class _Done:
    """The single progress report of a one-pass job (the progress reporter's ``ProgressLike``)."""

    image: Any
    iteration: int = 1
    iterations: int = 1
    losses: dict[str, float] = field(default_factory=dict)
    elapsed_s: float = 0.0

    def preview(self) -> Any:
        return self.image


@dataclass(frozen=True)
class WorkerIdentity:
    hostname: str
    pid: int

    @property
    def owner(self) -> str:
        return f"{self.hostname}:{self.pid}"


# What runs one kind of job once its delivery is claimed: (record, lease, task start on the monotonic clock) ->
# the final status or an outcome above. It reads its inputs, calls the engine, stores its outputs (``store``) and
# ends the job (``registry.finish``, ``finish_canceled``); everything around it (the lease, the delivery cap, cancel
# before start, turning exceptions into ``fail`` with a stable code) is the runner's and the same for every kind.
KindHandler = Callable[[JobRecord, JobLease, float], str]


class JobRunner:
    """Runs jobs for one worker process. ``stylize`` is the engine entry point (injectable for tests); ``handlers``
    adds kinds of work besides ``stylize`` (``worker/tasks.py`` registers them)."""

    def __init__(
        self,
        registry: Any,
        storage: Any,
        settings: Settings,
        identity: WorkerIdentity,
        *,
        stylize: Callable[..., Any] = _engine_stylize,
        lease_ttl_s: float | None = None,
        style_cache: StyleTargetCache | None = None,
        handlers: Mapping[str, KindHandler] | None = None,
        style_models: Any = None,
        apply_fast: Callable[..., Any] = _engine_apply_fast,
    ) -> None:
        self.registry = registry
        self.storage = storage
        self.settings = settings
        self.identity = identity
        self.stylize = stylize
        self.lease_ttl_s = lease_ttl_s or settings.lease_ttl_s
        # Shares style targets between jobs, workers and batches (worker/style_cache.py); None: the engine computes
        # them inside every stylize call.
        self.style_cache = style_cache
        # Trained style models by storage key (worker/style_models.py) and the engine's one-pass apply.
        self.style_models, self.apply_fast = style_models, apply_fast
        self.handlers: dict[str, KindHandler] = {JobKind.STYLIZE.value: self._stylize_and_store, **(handlers or {})}

    def run(self, job_id: str) -> str:
        """Run one delivery of ``job_id``; returns the job's final status or one of the outcomes above.

        Raises only ``Unavailable`` when Redis itself is down, so that nothing can be recorded; every other error
        ends the job as ``failed``.
        """
        record = self.registry.get(job_id)
        if record is None:
            log.warning("job %s: no record (deleted?); dropping the message", job_id)
            return SKIPPED
        if record.terminal:
            log.info("job %s is already %s; nothing to do", job_id, record.status)
            return SKIPPED
        lease = JobLease(self.registry, job_id, owner=self.identity.owner, ttl_s=self.lease_ttl_s)
        if not lease.claim():
            log.warning("job %s is being run by a live worker (its lease keeps being renewed); leaving it", job_id)
            return LEFT_TO_OTHER
        with lease.held():
            return self._run_claimed(job_id, lease)

    # --- one claimed run ------------------------------------------------------------------------------------

    def _run_claimed(self, job_id: str, lease: JobLease) -> str:
        task_started_s = time.monotonic()
        if not self.registry.mark_running(job_id, self.identity.hostname, self.identity.pid):
            log.info("job %s was canceled or finished before it started", job_id)
            return SKIPPED
        record = self.registry.get(job_id)
        if record is None:
            log.warning("job %s: record deleted after it was claimed; dropping the message", job_id)
            return SKIPPED
        deliveries = int(record.deliveries or 0)
        if deliveries > self.settings.max_deliveries:
            return self.fail(job_id, "worker_lost",
                              f"the job was started {deliveries} times and its worker was lost each time (killed or "
                              f"out of memory?); giving up after {self.settings.max_deliveries} attempts")
        crash_if_requested(record)  # test-only switch (worker/faults.py); does nothing unless its variable is set
        if record.cancel_requested:
            return self.finish_canceled(job_id, None)
        handler = self.handlers.get(record.kind)
        if handler is None:
            return self.fail(job_id, "unsupported_kind", f"this worker does not run jobs of kind {record.kind!r}; "
                             f"it runs: {', '.join(sorted(self.handlers))}")
        try:
            return handler(record, lease, task_started_s)
        except Unavailable as exc:
            # Storage down (or Redis, in which case this _fail raises too and the task errors out in the log).
            log.exception("job %s failed: %s", job_id, exc.code)
            return self.fail(job_id, exc.code, exc.message)
        except Exception as exc:  # the job fails; the worker lives on for the next one
            code, message = describe_failure(exc)
            log.exception("job %s failed: %s", job_id, code)
            return self.fail(job_id, code, message)

    def progress_reporter(self, job_id: str, lease: JobLease) -> ProgressReporter:
        """The reporter every kind hands its engine call: throttled progress, previews, cancel and lease checks."""
        return ProgressReporter(
            self.registry, self.storage, job_id,
            min_interval_s=self.settings.progress_min_interval_s,
            preview_every=self.settings.preview_every,
            lease_lost=lease.lost,
        )

    def store(self, key: str, data: bytes, content_type: str, what: str) -> None:
        """Put an output with the configured retries (outputs are at deterministic keys: a rerun overwrites)."""
        with_backoff(lambda: self.storage.put(key, data, content_type=content_type),
                     attempts=self.settings.storage_retry_attempts, what=what)

    def _stylize_and_store(self, record: JobRecord, lease: JobLease, task_started_s: float) -> str:
        job_id = record.id
        inputs = record.inputs
        storage_s = 0.0
        t0 = time.monotonic()
        content = load_rgb(self.storage.get(inputs["content"]), field="content")
        styles = [load_rgb(self.storage.get(key), field="style") for key in inputs["styles"]]
        storage_s += time.monotonic() - t0
        params = StyleParams.from_mapping(record.params).with_styles(len(styles))

        reporter = self.progress_reporter(job_id, lease)
        engine_started_s = time.monotonic()
        targets_outcome = None
        if params.style_model is not None:
            result = self._apply_style_model(record, params, content, reporter)
        else:
            engine_kwargs: dict[str, Any] = {"memory_budget_bytes": engine_memory_budget_bytes(self.settings)}
            if self.style_cache is not None:
                targets, targets_outcome = self.style_cache.targets_for(list(inputs["styles"]), styles, params)
                if targets is not None:
                    engine_kwargs["style_targets"] = targets
            result = self.stylize(content, styles, params, on_progress=reporter, **engine_kwargs)
        engine_wall_s = time.monotonic() - engine_started_s

        if reporter.stop_reason == "lease_lost" or lease.lost.is_set():
            log.error("job %s: lease lost mid-run; another delivery owns it now, discarding this run", job_id)
            return LEASE_LOST
        if result.cancelled:
            return self.finish_canceled(job_id, result.metrics)

        t0 = time.monotonic()
        height, width = int(result.image.shape[0]), int(result.image.shape[1])
        png = encode_png(result.image)
        self.store(result_key(job_id), png, "image/png", f"job {job_id} result upload")
        metrics = dict(result.metrics)
        if targets_outcome is not None:
            metrics.update(targets_outcome.metrics())
            # The engine says "reused" for targets it was handed; if this job computed them (through the cache),
            # say so. If the engine recomputed (its key check failed), its "computed" stands.
            if metrics.get("style_targets") != "computed":
                metrics["style_targets"] = targets_outcome.state
        metrics["queue_wait_s"] = _queue_wait_s(record)
        metrics["engine_wall_s"] = round(engine_wall_s, 3)
        metrics["storage_s"] = round(storage_s + time.monotonic() - t0, 3)
        metrics["deliveries"] = int(record.deliveries or 1)
        metrics["previews_stored"] = len(reporter.previews)
        # Everything this task spent beyond the engine call: record reads/writes, decoding, storage, PNG encoding.
        metrics["worker_overhead_s"] = round(time.monotonic() - task_started_s - engine_wall_s, 3)
        metrics_json = json.dumps(metrics, indent=2).encode()
        self.store(metrics_key(job_id), metrics_json, "application/json", f"job {job_id} metrics upload")
        self.registry.finish(
            job_id, JobStatus.SUCCEEDED,
            result={"key": result_key(job_id), "width": width, "height": height},
            metrics=metrics,
        )
        log.info("job %s succeeded: %dx%d in %.1f s (engine %.1f s)", job_id, width, height,
                 time.monotonic() - task_started_s, engine_wall_s)
        return JobStatus.SUCCEEDED.value

    def _apply_style_model(self, record: JobRecord, params: StyleParams, content: Any, reporter: Any) -> Any:
        """One forward pass of the trained model (Johnson et al.), then ``refine_iterations`` of Gatys from its output
        against the model's own style images and blend, if asked."""
        if self.style_models is None:
            raise EngineError("style_models_unavailable", "this worker was started without style-model support")
        started_s = time.monotonic()
        model = self.style_models.load(record.inputs["style_model"])
        load_s = time.monotonic() - started_s
        # "none" (the default) leaves the model's own colour rule (the one it was trained with) in force.
        preserve = None if params.preserve_color == "none" else params.preserve_color
        image = self.apply_fast(model, content, size=params.size, preserve_color=preserve)
        apply_s = time.monotonic() - started_s - load_s
        metrics: dict[str, Any] = {"mode": "fast", "style_model": params.style_model, "model_load_s": round(load_s, 4),
                                   "apply_s": round(apply_s, 4), "seconds": round(apply_s, 4), "size_px": params.size}
        if not params.refine_iterations:
            reporter(_Done(image))
            return _Outcome(image, metrics, cancelled=False)
        trained = self.registry.require(params.style_model)
        styles = [load_rgb(self.storage.get(key), field="style") for key in trained.inputs["styles"]]
        refine = params.replace(iterations=params.refine_iterations, style_model=None, refine_iterations=0,
                                style_blend=tuple(trained.params["style_blend"]) if trained.params.get("style_blend")
                                else None)
        result = self.stylize(content, styles, refine.with_styles(len(styles)), on_progress=reporter,
                              init_image=image, memory_budget_bytes=engine_memory_budget_bytes(self.settings))
        return _Outcome(result.image, {**result.metrics, **metrics, "mode": "fast+refine",
                                       "seconds": round(time.monotonic() - started_s - load_s, 4)},
                        cancelled=result.cancelled)

    # --- endings ----------------------------------------------------------------------------------------------

    def finish_canceled(self, job_id: str, metrics: dict[str, Any] | None) -> str:
        self.registry.finish(job_id, JobStatus.CANCELED,
                             error={"code": "canceled", "message": "the job was canceled at the client's request"},
                             metrics=metrics)
        log.info("job %s canceled", job_id)
        return JobStatus.CANCELED.value

    def fail(self, job_id: str, code: str, message: str) -> str:
        self.registry.finish(job_id, JobStatus.FAILED, error={"code": code, "message": message})
        return JobStatus.FAILED.value


def describe_failure(exc: BaseException) -> tuple[str, str]:
    """A stable code and a message for people (no traceback) for an exception raised while running a job."""
    if isinstance(exc, AtelierError):
        return exc.code, exc.message
    name = type(exc).__name__
    if name == "SoftTimeLimitExceeded":  # Celery's soft time limit; matched by name to keep Celery out of here
        return "time_limit_exceeded", "the job ran past ATELIER_JOB_TIME_LIMIT_S and was stopped"
    if isinstance(exc, MemoryError) or name == "ResourceExhaustedError":
        return "out_of_memory", f"the worker ran out of memory ({name}); try a smaller size"
    return "internal_error", f"the worker failed with {name}; the worker log has the details"


def _queue_wait_s(record: JobRecord) -> float | None:
    if not record.started_at:
        return None
    try:
        return round((parse_iso(record.started_at) - parse_iso(record.created_at)).total_seconds(), 3)
    except ValueError:
        return None
