"""The worker's Celery app: ``celery -A worker.celery_app worker --pool prefork --concurrency 1 -Q interactive,bulk``.

The configuration (prefetch 1, late acks, reject on worker lost, visibility timeout longer than the longest job, time
limits, a raised ``worker_proc_alive_timeout``) lives in ``shared/celery_config.py``, which the API's producer uses
too. Importing this module loads no TensorFlow: the engine is imported by the task on its first job, inside the
pool's child process (``services/commands.py`` explains why the worker uses a prefork pool of one).
"""

from __future__ import annotations

from shared.celery_config import make_celery
from shared.settings import Settings
from worker.signals import install as install_ops_hooks

settings = Settings.from_env()
app = make_celery(settings, include_worker_tasks=True)
app.conf.update(
    # Keep the pool's child for the worker's lifetime: it holds the built backbone and style-target cache.
    worker_max_tasks_per_child=None,
    # The record is ours (BRIEF §2); Celery's task events only add broker traffic. Flower still sees workers.
    worker_send_task_events=False,
)

# Readiness (backbone built before the first job), drain on SIGTERM, JSON logs with the job id, metrics in Redis.
install_ops_hooks(app, settings)
