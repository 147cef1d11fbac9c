"""The Celery producer on a real Redis broker: what lands in the queue, and the BRIEF §4 settings."""

from __future__ import annotations

import json
import time

import pytest
import redis

from services.devstack import free_port
from services.queue import JobQueue, queued_message_count, queued_messages
from shared.celery_config import celery_config, make_celery
from shared.errors import Unavailable
from shared.settings import Settings
from shared.tasks import BULK_QUEUE, INTERACTIVE_QUEUE, STYLIZE_TASK

pytestmark = pytest.mark.integration


@pytest.fixture
def broker(isolated_redis_url):
    client = redis.Redis.from_url(isolated_redis_url)
    yield isolated_redis_url, client
    client.close()


def test_enqueue_publishes_only_the_job_id_by_task_name(broker):
    url, client = broker
    queue = JobQueue(Settings(redis_url=url))
    queue.enqueue("job-123")
    assert queued_message_count(client, INTERACTIVE_QUEUE) == 1 == queue.queued_message_count()
    raw = json.loads(client.lrange(INTERACTIVE_QUEUE, 0, -1)[0])
    assert raw["content-type"] == "application/json"
    message = queued_messages(client, INTERACTIVE_QUEUE)[0]
    assert message["headers"]["task"] == STYLIZE_TASK and message["headers"]["id"] == "job-123"
    assert message["decoded_body"][0] == ["job-123"] and message["decoded_body"][1] == {}
    queue.close()


def test_enqueue_to_bulk_and_order_is_fifo(broker):
    url, client = broker
    queue = JobQueue(url)
    for job_id in ("a", "b", "c"):
        queue.enqueue(job_id, queue=BULK_QUEUE)
    assert queued_message_count(client, INTERACTIVE_QUEUE) == 0
    assert [m["headers"]["id"] for m in queued_messages(client, BULK_QUEUE)] == ["a", "b", "c"]
    with pytest.raises(ValueError):
        queue.enqueue("d", queue="urgent")


def test_enqueue_with_broker_down_is_unavailable_quickly():
    queue = JobQueue(f"redis://127.0.0.1:{free_port()}/0")
    started = time.monotonic()
    with pytest.raises(Unavailable) as info:
        queue.enqueue("job-1")
    assert info.value.code == "queue_unavailable" and "job-1" in info.value.message
    assert time.monotonic() - started < 5.0  # an HTTP request must not hang on a dead broker


def test_celery_settings_for_long_gpu_jobs():
    settings = Settings(redis_url="redis://127.0.0.1:1/0", job_time_limit_s=1800, train_time_limit_s=900)
    conf = celery_config(settings)
    assert conf["worker_prefetch_multiplier"] == 1
    assert conf["task_acks_late"] is True and conf["task_reject_on_worker_lost"] is True
    # Longer than the longest job (the image jobs here, longer than trainings), in both places Celery reads it.
    assert conf["broker_transport_options"]["visibility_timeout"] == 2 * 1800 + 600
    assert conf["result_backend_transport_options"]["visibility_timeout"] == 2 * 1800 + 600
    assert conf["task_soft_time_limit"] == 1800 < conf["task_time_limit"]
    assert conf["worker_proc_alive_timeout"] > 4.0
    assert conf["task_default_queue"] == INTERACTIVE_QUEUE
    assert conf["accept_content"] == ["json"] and conf["task_serializer"] == "json"
    assert {q.name for q in conf["task_queues"]} == {INTERACTIVE_QUEUE, BULK_QUEUE}


def test_make_celery_applies_the_settings_and_includes_worker_tasks_only_when_asked():
    settings = Settings(redis_url="redis://127.0.0.1:1/0")
    producer = make_celery(settings)
    consumer = make_celery(settings, include_worker_tasks=True)
    assert producer.conf.task_acks_late is True and producer.conf.broker_url == settings.redis_url
    assert list(producer.conf.include) == [] and "worker.tasks" in consumer.conf.include
