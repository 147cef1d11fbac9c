"""Celery tasks of the worker. ``atelier.stylize(job_id)`` is a thin shell over ``worker.runner.JobRunner``."""

from __future__ import annotations

import logging
import os
import socket
from functools import lru_cache

from services.registry import JobRegistry
from services.storage import open_storage
from shared.tasks import STYLIZE_TASK
from worker.celery_app import app, settings
from worker.runner import JobRunner, WorkerIdentity
from worker.style_cache import StyleTargetCache

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _runner(pid: int) -> JobRunner:
    """One runner (Redis client, storage client) per process, built after the fork: connections must not be shared
    between a parent and its children. Keyed by pid so a forked child never reuses its parent's."""
    registry = JobRegistry.from_url(settings.redis_url)
    storage = open_storage(settings)
    return JobRunner(
        registry,
        storage,
        settings,
        WorkerIdentity(hostname=socket.gethostname(), pid=pid),
        style_cache=StyleTargetCache(storage, registry.redis),
    )


@app.task(name=STYLIZE_TASK, bind=True)
def stylize_job(self, job_id: str) -> str:  # noqa: ANN001 - Celery's bound task
    """Run the job ``job_id`` (everything else is in its record). Returns the final status for the worker log."""
    log.info("job %s: delivery %s on %s", job_id, self.request.id, self.request.hostname)
    return _runner(os.getpid()).run(job_id)
