"""Celery configuration shared by the API (producer) and the worker (consumer).

Both sides build their app with ``make_celery``, so they agree on broker, serializer and queues. The settings follow
BRIEF §4 for long GPU jobs; each one has its reason next to it. The API builds the app with
``include_worker_tasks=False`` and sends tasks by name, so it never imports worker code (or TensorFlow).
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu import Queue

from shared.settings import Settings
from shared.tasks import BULK_QUEUE, INTERACTIVE_QUEUE, STYLIZE_TASK, TRAIN_STYLE_TASK, VIDEO_SEGMENT_TASK, VIDEO_TASK

WORKER_TASK_MODULES: tuple[str, ...] = ("worker.tasks",)

# Seconds between the soft time limit (the task can still mark its job failed) and the hard kill.
HARD_LIMIT_GRACE_S = 60
# Loading TensorFlow and a backbone in a fresh child takes far longer than Celery's default of 4 s.
WORKER_PROC_ALIVE_TIMEOUT_S = 120.0


def celery_config(settings: Settings) -> dict[str, Any]:
    """The Celery settings as a plain mapping (tests read it; ``make_celery`` applies it)."""
    transport_options = {
        # Must exceed the longest job, or Redis hands an unacked (still running) message to a second worker.
        "visibility_timeout": settings.visibility_timeout_s,
        # Fail fast when Redis is down instead of hanging a request.
        "socket_connect_timeout": 5,
    }
    return {
        "broker_url": settings.redis_url,
        # kombu's Redis transport BRPOPs its queues in a list order that it rotates after each message by default
        # ("round_robin", for fairness), so a worker would alternate interactive and bulk work. "priority" keeps
        # the order in which the worker consumes them (interactive first: task_queues below and the -Q list of
        # services.commands.worker_argv), so BRPOP returns an interactive message whenever there is one.
        "broker_transport_options": {**transport_options, "queue_order_strategy": "priority"},
        "broker_connection_retry_on_startup": True,
        # Our job record, not Celery's result, is the source of truth (BRIEF §2); the backend exists only so that
        # any code that asks for a result sees consistent transport options.
        "result_backend": settings.redis_url,
        "result_backend_transport_options": dict(transport_options),
        "task_ignore_result": True,
        "result_expires": 24 * 3600,
        # JSON only: a message carries a job id, never pickled objects or image bytes.
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        # One job at a time per worker process, acknowledged only when done: a lost worker's job is redelivered.
        "worker_prefetch_multiplier": 1,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_soft_time_limit": settings.job_time_limit_s,
        "task_time_limit": settings.job_time_limit_s + HARD_LIMIT_GRACE_S,
        "worker_proc_alive_timeout": WORKER_PROC_ALIVE_TIMEOUT_S,
        # Separate queues instead of emulated priorities; interactive is the default.
        "task_queues": (Queue(INTERACTIVE_QUEUE), Queue(BULK_QUEUE)),
        "task_default_queue": INTERACTIVE_QUEUE,
        "task_create_missing_queues": False,
        # Video work is minutes to hours of frames: bulk, so a clip never holds up the images people wait for.
        "task_routes": {STYLIZE_TASK: {"queue": INTERACTIVE_QUEUE}, TRAIN_STYLE_TASK: {"queue": BULK_QUEUE},
                        VIDEO_TASK: {"queue": BULK_QUEUE}, VIDEO_SEGMENT_TASK: {"queue": BULK_QUEUE}},
        # Publishing happens inside an HTTP request: retry briefly, then let the API answer 503.
        "task_publish_retry": True,
        "task_publish_retry_policy": {"max_retries": 2, "interval_start": 0, "interval_step": 0.2,
                                      "interval_max": 0.5},
        "broker_connection_timeout": 5,
        "enable_utc": True,
        "timezone": "UTC",
    }


def make_celery(settings: Settings, include_worker_tasks: bool = False, *, main: str = "atelier") -> Celery:
    """A Celery app for ``settings``. With ``include_worker_tasks`` it also imports ``worker.tasks`` (worker only)."""
    include = list(WORKER_TASK_MODULES) if include_worker_tasks else []
    app = Celery(main, include=include)
    app.conf.update(celery_config(settings))
    return app
