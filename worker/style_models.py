"""Style models on the worker: training one (the ``train_style`` kind's handler) and loading one to apply it.

Training runs under the job runner (``worker.runner``) like every kind: its lease, delivery cap, cancel and progress.
What is particular to it:

- **Checkpoints.** Every ``checkpoint_every`` steps the trainer's state (network, Adam, step, augmentation RNG) goes
  to ``models/<id>/checkpoint.atls``. A redelivery after the worker was killed finds it and resumes at the next step
  (the trainer refuses a checkpoint of other params or inputs), so a kill costs at most ``checkpoint_every`` steps.
  The checkpoint is deleted once the model is stored.
- **One model file.** The model is written once, at ``models/<id>/model.atls``, after the last step, then the job
  becomes ``succeeded``: a duplicate delivery that also got there overwrites the same key with the same bytes.
- **Only our files load.** Models and checkpoints are signed with HMAC-SHA256 under the deployment's key
  (``ATELIER_MODEL_SIGNING_KEY``, or a random key made once and kept in Redis) and refused unsigned or forged
  (``worker/engine/feedforward.py``): the service never loads a file it did not write, and no file format we read
  can run code.
- **Loss curve.** ``models/<id>/curve.json`` holds ``[[step, elapsed_s, total_loss], ...]``, rewritten with each
  progress write (throttled like progress), kept across a resume.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import redis

from services.batches import BatchRegistry
from services.redis_keys import MODEL_SIGNING_KEY
from shared.errors import NotFound
from shared.images import load_rgb
from shared.jobs import JobRecord, JobStatus, checkpoint_key, curve_key, model_key
from shared.settings import Settings
from shared.train_params import TrainParams
from worker.runner import LEASE_LOST

log = logging.getLogger(__name__)

MODEL_CONTENT_TYPE = "application/vnd.atelier.fast-style"
LOADED_MODELS = 4  # a width-0.5 network is about 0.5 MB of weights; keeping a few avoids re-reading per job


def signing_key(settings: Settings, client: redis.Redis) -> bytes:
    """The deployment's model signing key: the setting, or one random key shared by every worker through Redis
    (``SET NX``: the first worker makes it, the others read it)."""
    if settings.model_signing_key:
        return settings.model_signing_key.encode()
    client.set(MODEL_SIGNING_KEY, secrets.token_hex(32), nx=True)
    return bytes(client.get(MODEL_SIGNING_KEY) or b"")


def _engine() -> Any:
    # Imported on first use: TensorFlow must load in the process that runs the job, never before a fork.
    from worker.engine import feedforward, trainer

    return feedforward, trainer


class StyleModelCache:
    """Loaded models by storage key, least recently used dropped first (models are immutable once written)."""

    def __init__(self, storage: Any, key: Callable[[], bytes], entries: int = LOADED_MODELS) -> None:
        self.storage, self.key, self.entries = storage, key, entries
        self._models: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def load(self, storage_key: str) -> Any:
        with self._lock:
            if storage_key in self._models:
                self._models.move_to_end(storage_key)
                return self._models[storage_key]
        feedforward, _trainer = _engine()
        model = feedforward.model_from_bytes(self.storage.get(storage_key), key=self.key())
        with self._lock:
            self._models[storage_key] = model
            while len(self._models) > self.entries:
                self._models.popitem(last=False)
        return model


class StyleTrainingHandler:
    """The ``train_style`` handler for ``JobRunner(handlers=...)``; ``train`` is the engine's (injectable)."""

    def __init__(self, runner: Any, *, key: Callable[[], bytes], builtin_images: Callable[[], list[Any]],
                 train: Callable[..., Any] | None = None, weights: Any = None, queue: Any = None) -> None:
        self.runner, self.key, self.builtin_images = runner, key, builtin_images
        self.train, self.weights = train, weights
        self.queue = queue  # services.queue.JobQueue: releases a fast batch's children once its model exists

    def __call__(self, record: JobRecord, lease: Any, task_started_s: float) -> str:
        runner, storage, job_id = self.runner, self.runner.storage, record.id
        feedforward, trainer = _engine()
        train = self.train or trainer.train
        inputs = record.inputs
        styles = [load_rgb(storage.get(key), field="style") for key in inputs["styles"]]
        contents = [load_rgb(storage.get(key), field="train") for key in inputs["train"]] or self.builtin_images()
        params = TrainParams.from_mapping(record.params).with_styles(len(styles))
        resume = self._checkpoint(job_id, trainer)
        curve = CurveWriter(storage, job_id, runner.settings.progress_min_interval_s,
                            resumed_at=resume.step if resume else 0)
        reporter = runner.progress_reporter(job_id, lease)

        def on_progress(progress: Any) -> bool:
            curve.add(progress.iteration, progress.elapsed_s, progress.losses.get("total"))
            return reporter(progress)

        def on_checkpoint(state: Any) -> None:
            runner.store(checkpoint_key(job_id), state.to_bytes(key=self.key()), MODEL_CONTENT_TYPE,
                         f"style model {job_id} checkpoint at step {state.step}")

        engine_started_s = time.monotonic()
        result = train(styles, contents, params, on_progress, on_checkpoint=on_checkpoint, resume=resume,
                       weights=self.weights)
        engine_wall_s = time.monotonic() - engine_started_s
        curve.flush()
        if reporter.stop_reason == "lease_lost" or lease.lost.is_set():
            log.error("style model %s: lease lost mid-run; another delivery owns it now", job_id)
            return LEASE_LOST
        if result.cancelled:
            return runner.finish_canceled(job_id, dict(result.metrics))
        runner.store(model_key(job_id), feedforward.model_to_bytes(result.model, key=self.key()),
                     MODEL_CONTENT_TYPE, f"style model {job_id}")
        try:
            storage.delete(checkpoint_key(job_id))
        except Exception:  # a leftover checkpoint costs storage, not correctness: the model exists
            log.warning("style model %s: checkpoint not deleted", job_id, exc_info=True)
        metrics = dict(result.metrics)
        metrics.update(engine_wall_s=round(engine_wall_s, 3), deliveries=int(record.deliveries or 1),
                       training_images=len(contents), resumed_from_step=resume.step if resume else 0,
                       previews_stored=len(reporter.previews))
        runner.registry.finish(job_id, JobStatus.SUCCEEDED, result={"key": model_key(job_id)}, metrics=metrics)
        log.info("style model %s trained: %d steps in %.1f s", job_id, params.steps, engine_wall_s)
        if inputs.get("for_batch"):
            self._release_batch(inputs["for_batch"])
        return JobStatus.SUCCEEDED.value

    def _release_batch(self, batch_id: str) -> None:
        """Enqueue the batch's children that waited for this model (queued, no message yet). A child added while
        this runs and missed here is enqueued by the reconciler once it sees the model's training has ended."""
        if self.queue is None:
            return
        batches = BatchRegistry(self.runner.registry)
        for child in batches.children(batches.items(batch_id)):
            if child is not None and child.status == JobStatus.QUEUED:
                self.queue.enqueue(child.id, queue=child.queue, kind=child.kind)

    def _checkpoint(self, job_id: str, trainer: Any) -> Any:
        try:
            data = self.runner.storage.get(checkpoint_key(job_id))
        except NotFound:
            return None
        state = trainer.TrainState.from_bytes(data, key=self.key())
        log.info("style model %s: resuming from the checkpoint at step %d", job_id, state.step)
        return state


class CurveWriter:
    """The loss curve in storage, written at most every ``min_interval_s`` (and on ``flush``)."""

    def __init__(self, storage: Any, job_id: str, min_interval_s: float, *, resumed_at: int) -> None:
        self.storage, self.job_id, self.min_interval_s = storage, job_id, min_interval_s
        self.points: list[list[float]] = self._earlier(resumed_at)
        self._last_write_s: float | None = None

    def _earlier(self, resumed_at: int) -> list[list[float]]:
        """A resumed training keeps the points up to its checkpoint (later ones were lost with the worker)."""
        if not resumed_at:
            return []
        try:
            points = json.loads(self.storage.get(curve_key(self.job_id)))
        except (NotFound, ValueError):
            return []
        return [point for point in points if point[0] <= resumed_at]

    def add(self, step: int, elapsed_s: float, total: float | None) -> None:
        if total is None:
            return
        self.points.append([int(step), round(float(elapsed_s), 2), float(total)])
        now_s = time.monotonic()
        if self._last_write_s is None or now_s - self._last_write_s >= self.min_interval_s:
            self.flush()
            self._last_write_s = now_s

    def flush(self) -> None:
        try:
            self.storage.put(curve_key(self.job_id), json.dumps(self.points).encode(),
                             content_type="application/json")
        except Exception:  # advisory, like progress: never fail a training over its curve
            log.warning("style model %s: loss curve not written", self.job_id, exc_info=True)
