"""The configuration behind "workers always take interactive work first" (the behaviour itself is proven through a
real worker in test_batch_e2e)."""

from __future__ import annotations

from services.commands import worker_argv
from shared.celery_config import celery_config
from shared.settings import Settings
from shared.tasks import BULK_QUEUE, INTERACTIVE_QUEUE


def test_workers_consume_interactive_then_bulk_without_rotation():
    conf = celery_config(Settings())
    # kombu's default "round_robin" rotates the BRPOP order after every message; "priority" keeps it fixed.
    assert conf["broker_transport_options"]["queue_order_strategy"] == "priority"
    assert [queue.name for queue in conf["task_queues"]] == [INTERACTIVE_QUEUE, BULK_QUEUE]
    argv = worker_argv()
    assert argv[argv.index("-Q") + 1] == f"{INTERACTIVE_QUEUE},{BULK_QUEUE}"
    # One message at a time, acknowledged at the end: a busy worker holds no bulk message that an interactive
    # job would have to wait behind.
    assert conf["worker_prefetch_multiplier"] == 1 and conf["task_acks_late"] is True
