"""The command lines that start the service's long-running processes, in one place.

``docker-compose.yml`` runs exactly these commands, and so do ``atelier dev`` and the end-to-end tests, natively;
``tests/worker/test_compose.py`` fails if the compose file drifts from them. Keeping them here (not in the worker
package) lets ``atelier dev`` build them without importing Celery tasks or TensorFlow.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from shared.settings import Settings
from shared.tasks import QUEUES

CELERY_APP = "worker.celery_app"
WSGI_APP = "api.wsgi:app"
API_BIND = "0.0.0.0:8000"
FLOWER_PORT = 5555


def worker_argv(*, hostname: str | None = None, loglevel: str = "INFO") -> list[str]:
    """One Celery worker per GPU.

    ``--pool prefork --concurrency 1``: the main process never touches TensorFlow; its single child builds the
    backbone lazily on the first job and keeps it for later jobs. If that child dies (OOM, SIGKILL) the main process
    notices, and ``task_reject_on_worker_lost`` puts the message back on the queue at once, for another worker or a
    fresh child. With ``--pool solo`` a killed worker would take its unacknowledged message with it until the Redis
    visibility timeout (hours) ran out.
    """
    argv = ["celery", "-A", CELERY_APP, "worker", "--pool", "prefork", "--concurrency", "1",
            "-Q", ",".join(QUEUES), "--loglevel", loglevel]
    if hostname:
        argv += ["--hostname", hostname]
    return argv


def api_argv(bind: str = API_BIND, *, workers: int = 2, threads: int = 4,
             sse_streams: int = Settings.sse_max_streams) -> list[str]:
    """The API under gunicorn. Threads because requests mostly wait on Redis and storage: ``threads`` for requests
    plus ``sse_streams`` for open event streams, each of which holds a thread while open; the API admits at most
    ``ATELIER_SSE_MAX_STREAMS`` (default ``sse_streams``) per process, so streams never take the request threads
    (api/sse.py, docs/events.md)."""
    return ["gunicorn", "--bind", bind, "--workers", str(workers), "--threads", str(threads + sse_streams),
            "--access-logfile", "-", WSGI_APP]


WEBHOOK_APP = "worker.webhook_app"


def webhook_worker_argv(*, hostname: str | None = None, concurrency: int = 8, loglevel: str = "INFO") -> list[str]:
    """The webhook worker (worker/webhook_app.py): the relay from terminal events plus the delivery tasks on its
    own ``webhooks`` queue. Threads: deliveries wait on the network, and it imports no TensorFlow (API image).
    No mingle or gossip: it shares no task state with other workers (its ids dedupe in Redis), and mingle's wait
    for peers would only slow its start."""
    argv = ["celery", "-A", WEBHOOK_APP, "worker", "--pool", "threads", "--concurrency", str(concurrency),
            "-Q", "webhooks", "--without-mingle", "--without-gossip", "--loglevel", loglevel]
    if hostname:
        argv += ["--hostname", hostname]
    return argv


def reconciler_argv() -> list[str]:
    """The reconciler (worker/reconciler.py): re-enqueues queued jobs without a message and recovers jobs whose
    worker died. Needs no TensorFlow: runs from the API image."""
    return ["python", "-m", "worker.reconciler"]


def flower_argv(port: int = FLOWER_PORT) -> list[str]:
    """Flower, the Celery monitor, on the same app (so it sees our queues)."""
    return ["celery", "-A", CELERY_APP, "flower", f"--port={port}"]


def resolve(argv: list[str]) -> list[str]:
    """Point ``argv[0]`` at the console script of the running interpreter's environment (a venv need not be on PATH)."""
    local = Path(sys.executable).parent / argv[0]
    if local.exists():
        return [str(local), *argv[1:]]
    found = shutil.which(argv[0])
    return [found or argv[0], *argv[1:]]
