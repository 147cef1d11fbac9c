"""Celery tasks of the worker: one per job kind, each a thin shell over ``worker.runner.JobRunner.run`` (which picks
the kind's handler from the record): ``atelier.stylize(job_id)``, ``atelier.train_style(job_id)``,
``atelier.video(job_id)`` and ``atelier.video_segment(job_id)``."""

from __future__ import annotations

import logging
import os
import socket
from functools import lru_cache, partial

from services.queue import JobQueue
from services.registry import JobRegistry
from services.storage import open_storage
from services.training_set import builtin_training_images
from shared.celery_config import HARD_LIMIT_GRACE_S
from shared.tasks import STYLIZE_TASK, TRAIN_STYLE_TASK, VIDEO_SEGMENT_TASK, VIDEO_TASK
from worker.celery_app import app, settings
from worker.runner import JobRunner, WorkerIdentity, _engine_stylize
from worker.style_cache import StyleTargetCache, _engine_compute
from worker.style_models import StyleModelCache, StyleTrainingHandler, signing_key
from worker.video.service import VideoHandler, VideoSegmentHandler, _engine_finetune, _engine_stylize_frames
from worker.weights_config import weight_source

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _runner(pid: int) -> JobRunner:
    """One runner (Redis client, storage client) per process, built after the fork: connections must not be shared
    between a parent and its children. Keyed by pid so a forked child never reuses its parent's."""
    registry = JobRegistry.from_url(settings.redis_url)
    storage = open_storage(settings)
    # The engine reads no environment: where its weights are comes from the settings, handed to every call.
    weights = weight_source(settings)
    key = lru_cache(maxsize=1)(lambda: signing_key(settings, registry.redis))
    runner = JobRunner(
        registry,
        storage,
        settings,
        WorkerIdentity(hostname=socket.gethostname(), pid=pid),
        stylize=partial(_engine_stylize, weights=weights),
        style_cache=StyleTargetCache(storage, registry.redis, compute=partial(_engine_compute, weights=weights)),
        style_models=StyleModelCache(storage, key),
    )
    runner.handlers["train_style"] = StyleTrainingHandler(runner, key=key, builtin_images=builtin_training_images,
                                                          weights=weights, queue=JobQueue(app))
    runner.handlers["video"] = VideoHandler(runner, queue=JobQueue(app), key=key,
                                            finetune=partial(_engine_finetune, weights=weights))
    runner.handlers["video_segment"] = VideoSegmentHandler(
        runner, queue=JobQueue(app), stylize_frames=partial(_engine_stylize_frames, weights=weights))
    return runner


@app.task(name=STYLIZE_TASK, bind=True)
def stylize_job(self, job_id: str) -> str:  # noqa: ANN001 - Celery's bound task
    """Run the job ``job_id`` (everything else is in its record). Returns the final status for the worker log."""
    log.info("job %s: delivery %s on %s", job_id, self.request.id, self.request.hostname)
    return _runner(os.getpid()).run(job_id)


@app.task(name=TRAIN_STYLE_TASK, bind=True, soft_time_limit=settings.train_time_limit_s,
          time_limit=settings.train_time_limit_s + HARD_LIMIT_GRACE_S)
def train_style_job(self, job_id: str) -> str:  # noqa: ANN001 - Celery's bound task
    """Train the style model ``job_id`` (a ``train_style`` job), resuming from its checkpoint after a lost worker."""
    log.info("style model %s: delivery %s on %s", job_id, self.request.id, self.request.hostname)
    return _runner(os.getpid()).run(job_id)


@app.task(name=VIDEO_TASK, bind=True)
def video_job(self, job_id: str) -> str:  # noqa: ANN001 - Celery's bound task
    """Plan the video ``job_id`` into segments, or (woken by its last segment) fail, cancel or assemble it."""
    log.info("video %s: delivery %s on %s", job_id, self.request.id, self.request.hostname)
    return _runner(os.getpid()).run(job_id)


@app.task(name=VIDEO_SEGMENT_TASK, bind=True)
def video_segment_job(self, job_id: str) -> str:  # noqa: ANN001 - Celery's bound task
    """Style one segment of a video's frames."""
    log.info("video segment %s: delivery %s on %s", job_id, self.request.id, self.request.hostname)
    return _runner(os.getpid()).run(job_id)
