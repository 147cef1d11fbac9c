"""Celery tasks of the worker. ``atelier.stylize(job_id)`` is a thin shell over ``worker.runner.JobRunner``."""

from __future__ import annotations

import logging
import os
import socket
from functools import lru_cache, partial

from services.registry import JobRegistry
from services.storage import open_storage
from shared.tasks import STYLIZE_TASK
from worker.celery_app import app, settings
from worker.runner import JobRunner, WorkerIdentity, _engine_stylize
from worker.style_cache import StyleTargetCache, _engine_compute
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
    return JobRunner(
        registry,
        storage,
        settings,
        WorkerIdentity(hostname=socket.gethostname(), pid=pid),
        stylize=partial(_engine_stylize, weights=weights),
        style_cache=StyleTargetCache(storage, registry.redis, compute=partial(_engine_compute, weights=weights)),
    )


@app.task(name=STYLIZE_TASK, bind=True)
def stylize_job(self, job_id: str) -> str:  # noqa: ANN001 - Celery's bound task
    """Run the job ``job_id`` (everything else is in its record). Returns the final status for the worker log."""
    log.info("job %s: delivery %s on %s", job_id, self.request.id, self.request.hostname)
    return _runner(os.getpid()).run(job_id)
