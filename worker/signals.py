"""The worker's operational hooks: JSON logs with the job id, metrics, readiness and drain.

``install(app)`` (called by ``worker/celery_app.py``) wires them into Celery:

Readiness: a worker builds its backbone before it takes its first job.
    The pool's child process builds the backbone in ``worker_process_init`` (after the fork: TensorFlow must never
    be initialised in the parent, BRIEF §4; ``worker_proc_alive_timeout`` is raised in ``shared/celery_config.py``
    because this takes far longer than Celery's default 4 s). Celery would still start its consumer meanwhile, and
    with prefetch 1 the main process would reserve a message and sit on it while the child loads. So a worker
    bootstep (``PreloadGate``), which starts after the pool and before the consumer, waits until the child says
    it is ready. Only then does the worker consume, answer ``celery inspect ping`` (the Kubernetes readiness
    probe and ``atelier dev``'s ready check) and send heartbeats (``atelier_workers_alive``). The first job then
    reports ``backbone_cached: true``. ``ATELIER_PRELOAD_BACKBONE=none`` turns this off.

Drain: a worker asked to stop finishes the job it is running.
    SIGTERM to the worker's main process is Celery's warm shutdown: it stops taking messages, lets the running
    task finish, acknowledges it and exits. Kubernetes and ``docker stop`` send SIGTERM to the container's PID 1
    (the Celery main process, started in exec form), then SIGKILL after the grace period, so the grace period
    (``terminationGracePeriodSeconds``, compose ``stop_grace_period``) must cover the longest job. A job cut off by
    SIGKILL is not lost: the reconciler (``worker/reconciler.py``) sees its lease expire and queues it again. Pool
    children die on SIGTERM (Celery resets it in them), which is why the signal must go to the main process only,
    not to the process group. SIGQUIT is a cold shutdown (the running job is interrupted).

Metrics and logs: ``task_prerun``/``task_postrun`` bind the job id to every log line and add the delivery that ended
a job to the cluster metrics in Redis (``services/metrics.py``); a heartbeat thread in the child marks the worker
alive.

Capabilities: the same heartbeat thread advertises what this worker can run (``services/capabilities.py``: its
queues, the backbones whose weight files it has, what ``precision=auto`` resolves to, its device), written once
the child has built its backbone and refreshed on every beat, so the key lives exactly as long as the worker. The
child deletes it when it stops; a killed worker's key expires after ``capabilities.TTL_S``.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import socket
import threading
import time
from typing import Any

import redis
from celery import Celery, bootsteps, signals

from services import capabilities, metrics
from services.redis_keys import job_key
from shared.jobs import STATUS_VALUES, is_terminal
from shared.logging import JOB_ID, json_handler_setup
from shared.settings import Settings
from shared.tasks import STYLIZE_TASK
from shared.weights import available_backbones
from worker.weights_config import weight_source

log = logging.getLogger(__name__)

# How long the main process waits for its pool child to build the backbone before consuming anyway (a child that
# is still loading then simply receives its first job later).
PRELOAD_WAIT_S = 600.0

_state: dict[str, Any] = {"settings": None, "ready": None, "heartbeat": None, "client": None, "client_pid": None,
                          "app": None}


def install(app: Celery, settings: Settings) -> None:
    """Connect the hooks for a worker app built from ``settings``."""
    _state["settings"] = settings
    _state["app"] = app
    # Created in the main process before the pool forks, so the child and the main process share it.
    _state["ready"] = multiprocessing.get_context("fork").Event()
    app.steps["worker"].add(PreloadGate)
    signals.after_setup_logger.connect(_json_logs, weak=False)
    signals.after_setup_task_logger.connect(_json_logs, weak=False)
    signals.worker_process_init.connect(_on_child_start, weak=False)
    signals.worker_process_shutdown.connect(_on_child_stop, weak=False)
    signals.task_prerun.connect(_on_task_start, weak=False)
    signals.task_postrun.connect(_on_task_end, weak=False)
    signals.worker_shutting_down.connect(_on_shutting_down, weak=False)


# --- logs -----------------------------------------------------------------------------------------------------


def _json_logs(logger: logging.Logger, **_: Any) -> None:
    settings: Settings = _state["settings"]
    for handler in logger.handlers:
        json_handler_setup(handler, "worker", settings.log_format)


def _job_id(sender: Any, args: tuple[Any, ...] | None) -> str | None:
    """The job a task delivery is about: the stylize task's only argument (its Celery task id is the same)."""
    if getattr(sender, "name", None) != STYLIZE_TASK or not args:
        return None
    return str(args[0])


def _on_task_start(sender: Any = None, args: tuple[Any, ...] | None = None, **_: Any) -> None:
    JOB_ID.set(_job_id(sender, args))


def _on_task_end(sender: Any = None, args: tuple[Any, ...] | None = None, retval: Any = None, **_: Any) -> None:
    try:
        job_id = _job_id(sender, args)
        # Only the delivery that ended the job returns its final status; skipped or duplicate deliveries return
        # another outcome (worker/runner.py) and must not be counted twice.
        if job_id and isinstance(retval, str) and retval in STATUS_VALUES and is_terminal(retval):
            _record_delivery(job_id)
    finally:
        JOB_ID.set(None)


def _redis() -> redis.Redis:
    """This process's Redis client for metrics (built after the fork: connections are never shared with a parent)."""
    client, pid = _state.get("client"), os.getpid()
    if client is None or _state.get("client_pid") != pid:
        client = redis.Redis.from_url(_state["settings"].redis_url, socket_connect_timeout=2, socket_timeout=5)
        _state["client"], _state["client_pid"] = client, pid
    return client


def _record_delivery(job_id: str) -> None:
    try:
        client = _redis()
        raw = client.get(job_key(job_id))
        record = json.loads(raw) if raw else None
        if record is not None and is_terminal(record["status"]):
            metrics.record_delivery(client, record)
    except Exception:  # metrics must never fail a job that has already finished
        log.exception("could not record metrics of job %s", job_id)


# --- readiness --------------------------------------------------------------------------------------------------


def preload_backbone(settings: Settings) -> str | None:
    """Build the backbone ``settings.preload_backbone`` names in this process; returns its name (None if off)."""
    choice = settings.preload_backbone.strip().lower()
    if choice == "none":
        return None
    from shared.params import StyleParams
    from worker.engine.backbones import get_backbone  # TensorFlow loads here, in the pool child
    from worker.engine.engine import resolve_precision

    params = StyleParams() if choice == "default" else StyleParams.from_mapping({"backbone": choice})
    started_s = time.monotonic()
    _backbone, cached = get_backbone(params.backbone, params.pooling, resolve_precision(params.precision),
                                     weight_source(settings))
    log.info("backbone %s ready in %.1f s (already built: %s)", params.backbone, time.monotonic() - started_s,
             cached, extra={"event": "backbone_ready", "backbone": params.backbone})
    return params.backbone


def _on_child_start(**_: Any) -> None:
    settings: Settings = _state["settings"]
    try:
        preload_backbone(settings)
    except Exception:
        # A backbone whose weights are missing must not crash-loop the worker: its jobs fail with the clear
        # error, and jobs for other backbones still run.
        log.exception("could not preload backbone %r; it will be built on the first job", settings.preload_backbone)
    finally:
        _state["ready"].set()
    _start_heartbeat(settings, _capabilities(settings))


def _consumed_queues() -> tuple[str, ...]:
    """The queues this worker consumes (``-Q``): Celery selects them on the app before the pool forks."""
    app = _state.get("app")
    if app is None:
        return ()
    queues = app.amqp.queues
    selected = getattr(queues, "consume_from", None)  # None or empty: no -Q, the worker consumes every queue
    return tuple(sorted(selected or queues))


def device_name() -> str:
    """``gpu:<name>`` for the first accelerator the engine's Keras backend sees, else ``cpu``. Called in the pool
    child only (it asks the backend, which loads TensorFlow or JAX)."""
    import keras

    try:
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            if gpus:
                return "gpu:" + str(tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name))
        elif keras.backend.backend() == "jax":
            import jax

            gpus = [d for d in jax.devices() if d.platform == "gpu"]
            if gpus:
                return "gpu:" + str(gpus[0].device_kind)
    except Exception:
        log.exception("could not name the accelerator; advertising cpu")
    return "cpu"


def _capabilities(settings: Settings) -> capabilities.WorkerCapabilities | None:
    """What this process can run (weights by file existence: no model is built for it)."""
    try:
        from worker.engine.engine import resolve_precision  # in the pool child: TensorFlow may load here

        precision = resolve_precision("auto")
        device = device_name()
    except Exception:
        log.exception("could not resolve precision=auto; advertising it as unknown")
        precision, device = "unknown", "unknown"
    return capabilities.WorkerCapabilities(
        hostname=socket.gethostname(),
        pid=os.getpid(),
        queues=_consumed_queues(),
        backbones=available_backbones(weight_source(settings)),
        precision=precision,
        device=device,
        started_at=capabilities.now_iso(),
    )


class PreloadGate(bootsteps.StartStopStep):
    """Worker bootstep between the pool and the consumer: wait for the pool child's preload (see the docstring).

    With a pool that does not fork (``--pool solo`` or ``threads``), the tasks run in this very process, so the
    backbone is built here instead."""

    requires = ("celery.worker.components:Pool",)

    def start(self, worker: Any) -> None:
        from celery.concurrency.prefork import TaskPool as PreforkPool

        started_s = time.monotonic()
        if not isinstance(worker.pool, PreforkPool):
            _on_child_start()
        elif not _state["ready"].wait(PRELOAD_WAIT_S):
            log.warning("pool process not ready after %.0f s; consuming anyway", PRELOAD_WAIT_S)
        log.info("worker ready after %.1f s: backbone built, consuming", time.monotonic() - started_s,
                 extra={"event": "worker_ready"})


# --- liveness: heartbeats -----------------------------------------------------------------------------------------


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Heartbeat(threading.Thread):
    """Writes this process's heartbeat (and its capabilities, when given) into Redis every ``interval_s`` until
    stopped (daemon thread)."""

    def __init__(
        self,
        redis_url: str,
        interval_s: float = metrics.WORKER_HEARTBEAT_INTERVAL_S,
        worker_capabilities: capabilities.WorkerCapabilities | None = None,
    ) -> None:
        super().__init__(name="atelier-heartbeat", daemon=True)
        self.client = redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=5)
        self.interval_s = interval_s
        self.worker_id = worker_id()
        self.capabilities = worker_capabilities
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                metrics.heartbeat(self.client, self.worker_id)
                if self.capabilities is not None:
                    # Rewritten every beat (TTL three beats): comes back by itself after Redis lost it.
                    capabilities.advertise(self.client, self.capabilities)
            except redis.RedisError as exc:
                log.warning("heartbeat failed: %s", exc)
            self.stopped.wait(self.interval_s)

    def stop(self) -> None:
        self.stopped.set()
        try:
            metrics.forget_worker(self.client, self.worker_id)
            if self.capabilities is not None:
                capabilities.withdraw(self.client, self.capabilities.worker_id)
        except redis.RedisError:
            pass  # both expire on their own


def _start_heartbeat(settings: Settings, worker_capabilities: capabilities.WorkerCapabilities | None = None) -> None:
    beat = Heartbeat(settings.redis_url, worker_capabilities=worker_capabilities)
    beat.start()
    _state["heartbeat"] = beat


def _on_child_stop(**_: Any) -> None:
    beat = _state.get("heartbeat")
    if beat is not None:
        beat.stop()


# --- drain ----------------------------------------------------------------------------------------------------


def _on_shutting_down(sig: str | None = None, how: str | None = None, exitcode: Any = None, **_: Any) -> None:
    # A worker that is stopping takes no new jobs: stop advertising it. (With a prefork pool the heartbeat lives in
    # the child, which withdraws in worker_process_shutdown; with --pool solo it lives here.)
    _on_child_stop()
    if how == "Warm":
        log.info("%s: warm shutdown, finishing the running job before exiting (drain)", sig,
                 extra={"event": "drain"})
    else:
        log.warning("%s: %s shutdown, a running job is interrupted and will be delivered again", sig, how,
                    extra={"event": "shutdown"})
