"""The webhook worker: ``celery -A worker.webhook_app worker --pool threads --concurrency 8 -Q webhooks``.

A process of its own, never a GPU worker's time: deliveries are network waits (threads, not prefork), and it loads no
TensorFlow (it runs from the API image). It does two things (``services/webhooks`` explains the design):

- a bootstep starts the **relay** thread, which turns terminal events into ``atelier.deliver_webhook`` tasks;
- the task makes one delivery attempt and, on 429/5xx/connection errors, retries itself with the backoff of
  ``ATELIER_WEBHOOK_RETRY_*`` (``self.retry(countdown=...)``: the retry is a new message with the same task id).

Its Celery keys live under ``atelier:webhooks:celery:`` (kombu's ``global_keyprefix``), separate from the job queues,
so its visibility timeout can be the retry schedule's longest wait plus a margin (minutes to hours) instead of the
jobs' (hours): a webhook worker killed while it held a retry for later gets that message back after this timeout,
and it never restores a running GPU job's message.
"""

from __future__ import annotations

import logging
import threading
from functools import lru_cache
from typing import Any

from celery import bootsteps
from kombu import Queue

from services.redis_keys import WEBHOOK_CELERY_PREFIX
from services.registry import JobRegistry
from services.webhooks.delivery import RETRYING, Deliverer, Delivery, Schedule
from services.webhooks.relay import Relay
from services.webhooks.secrets import SecretStore
from shared.celery_config import make_celery
from shared.settings import Settings

log = logging.getLogger(__name__)

DELIVER_TASK = "atelier.deliver_webhook"
WEBHOOKS_QUEUE = "webhooks"
VISIBILITY_MARGIN_S = 120


def webhook_celery_config(settings: Settings) -> dict[str, Any]:
    """The job queues' configuration with the webhook worker's own queue, key prefix and time limits."""
    longest_wait_s = max(Schedule.from_settings(settings).delays_s(), default=0.0)
    attempt_s = settings.webhook_timeout_s + 30
    return {
        "broker_transport_options": {"visibility_timeout": int(longest_wait_s + attempt_s + VISIBILITY_MARGIN_S),
                                     "socket_connect_timeout": 5, "global_keyprefix": WEBHOOK_CELERY_PREFIX},
        "result_backend": None,
        "task_queues": (Queue(WEBHOOKS_QUEUE),),
        "task_default_queue": WEBHOOKS_QUEUE,
        "task_routes": {DELIVER_TASK: {"queue": WEBHOOKS_QUEUE}},
        "task_soft_time_limit": attempt_s,
        "task_time_limit": attempt_s + 30,
        "worker_prefetch_multiplier": 1,
        "worker_send_task_events": False,
    }


settings = Settings.from_env()
app = make_celery(settings, main="atelier-webhooks")
app.conf.update(webhook_celery_config(settings))


@lru_cache(maxsize=1)
def _deliverer() -> Deliverer:
    registry = JobRegistry.from_url(settings.redis_url)
    return Deliverer(registry.redis, settings,
                     secrets=SecretStore(registry.redis, grace_s=settings.webhook_secret_grace_s))


@app.task(name=DELIVER_TASK, bind=True, max_retries=None)
def deliver_webhook(self, delivery: dict[str, Any]) -> str:  # noqa: ANN001 - Celery's bound task
    """One attempt for ``delivery`` (``Delivery`` as a dict); attempt number = Celery's retries + 1."""
    attempt = _deliverer().attempt(Delivery(**delivery), self.request.retries + 1)
    if attempt is None:
        return "skipped"  # delivered or given up already, or another copy is posting it now
    log.info("webhook %s attempt %d: %s (%s)", attempt.webhook_id, attempt.attempt, attempt.outcome,
             attempt.status_code or attempt.error)
    if attempt.outcome == RETRYING:
        raise self.retry(countdown=attempt.next_attempt_in_s)
    return attempt.outcome


def publish(delivery: Delivery) -> None:
    """The relay's ``send``: the task id is the webhook id (a republished event is the same task)."""
    app.send_task(DELIVER_TASK, args=delivery.to_args(), task_id=delivery.msg_id, queue=WEBHOOKS_QUEUE)


class RelayStep(bootsteps.StartStopStep):
    """Runs the relay in a thread of the worker's main process from start to shutdown."""

    requires = {"celery.worker.components:Pool"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, worker: Any) -> None:
        relay = Relay(JobRegistry.from_url(settings.redis_url), publish, consumer=worker.hostname)
        self._thread = threading.Thread(target=relay.run, args=(self._stop,), name="webhook-relay", daemon=True)
        self._thread.start()
        log.info("webhook relay started as consumer %s", worker.hostname)

    def stop(self, worker: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


app.steps["worker"].add(RelayStep)
