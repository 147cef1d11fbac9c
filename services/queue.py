"""The queue adapter: how the API hands a job to the workers.

``JobQueue.enqueue`` sends the task **by name** (``send_task``), so the API never imports worker code or TensorFlow.
The message carries ``[job_id]`` only, and the Celery task id is the job id, so a message in Redis can be matched to
its job record.
"""

from __future__ import annotations

import json
from typing import Any

import redis
from celery import Celery

from shared.celery_config import make_celery
from shared.errors import Unavailable
from shared.settings import Settings
from shared.tasks import INTERACTIVE_QUEUE, QUEUES, TASK_FOR_KIND

__all__ = ["JobQueue", "make_celery", "queued_message_count", "queued_messages"]


class JobQueue:
    """Producer side of the Celery queue. Accepts a Celery app, a ``Settings`` or a broker URL."""

    def __init__(self, celery_app_or_broker_url: Celery | Settings | str) -> None:
        source = celery_app_or_broker_url
        if isinstance(source, Celery):
            self.celery = source
        elif isinstance(source, Settings):
            self.celery = make_celery(source)
        else:
            self.celery = make_celery(Settings(redis_url=source))

    def enqueue(self, job_id: str, queue: str = INTERACTIVE_QUEUE, kind: str = "stylize") -> None:
        """Publish the task of ``kind`` for ``job_id``; ``Unavailable`` (code ``queue_unavailable``) if the broker
        is down after Celery's short publish retries."""
        if queue not in QUEUES:
            raise ValueError(f"unknown queue {queue!r}; expected one of {', '.join(QUEUES)}")
        if kind not in TASK_FOR_KIND:
            raise ValueError(f"unknown job kind {kind!r}; expected one of {', '.join(TASK_FOR_KIND)}")
        try:
            self.celery.send_task(TASK_FOR_KIND[kind], args=[job_id], queue=queue, task_id=job_id, ignore_result=True)
        except Exception as exc:  # kombu raises OperationalError, redis raises ConnectionError, ...
            raise Unavailable("queue_unavailable", f"could not queue job {job_id}: broker unavailable ({exc})") from exc

    def queued_message_count(self, queue: str = INTERACTIVE_QUEUE) -> int:
        """LLEN of ``queue`` on this producer's broker (for tests and diagnostics)."""
        client = redis.Redis.from_url(self.celery.conf.broker_url, socket_connect_timeout=2)
        try:
            return queued_message_count(client, queue)
        finally:
            client.close()

    def close(self) -> None:
        self.celery.close()


def queued_messages(redis_client: redis.Redis, queue: str) -> list[dict[str, Any]]:
    """The messages waiting in ``queue`` (the Redis list Celery's transport uses), decoded, oldest first.
    For tests and diagnostics: each is Celery's envelope with ``headers`` and the JSON ``body`` decoded."""
    messages = []
    for raw in reversed(redis_client.lrange(queue, 0, -1)):  # kombu LPUSHes, workers BRPOP: the tail is oldest
        envelope = json.loads(raw)
        body = envelope.get("body")
        if envelope.get("properties", {}).get("body_encoding") == "base64":
            import base64

            body = base64.b64decode(body).decode()
        envelope["decoded_body"] = json.loads(body)
        messages.append(envelope)
    return messages


def queued_message_count(redis_client: redis.Redis, queue: str) -> int:
    """LLEN of the queue's Redis list: messages published and not yet taken by a worker."""
    return int(redis_client.llen(queue))
