"""Webhook test fixtures: the real webhook worker process (``services.commands.webhook_worker_argv``, the command
of docker-compose and ``atelier dev``) on the tests' Redis, and a receiver on 127.0.0.1 (``receiver.py``).

No GPU worker: a job's end is written the way a worker writes it, through ``JobRegistry.finish`` (the one
transition, which appends the terminal event in the same MULTI), so these tests take seconds. The whole path from
that event on is real: the stream, the relay's consumer group, Celery on Redis, HTTP, the signature.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from services.cli.dev import Child
from services.commands import webhook_worker_argv
from services.devstack import RedisServer
from services.registry import JobRegistry
from shared.jobs import JobRecord, new_job_id

from .receiver import Receiver, start_receiver

DB = 11
RETRY_ENV = {"ATELIER_WEBHOOK_RETRY_BASE_S": "0.2", "ATELIER_WEBHOOK_RETRY_FACTOR": "2",
             "ATELIER_WEBHOOK_MAX_ATTEMPTS": "4", "ATELIER_WEBHOOK_TIMEOUT_S": "3"}


class WebhookWorker:
    def __init__(self, redis_url: str, log_dir: Path) -> None:
        self.redis_url = redis_url
        self.log_dir = log_dir
        self.child: Child | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        env = {**os.environ, "ATELIER_REDIS_URL": self.redis_url, "ATELIER_WEBHOOK_ALLOWLIST": "127.0.0.1",
               "PYTHONUNBUFFERED": "1", **RETRY_ENV}
        argv = webhook_worker_argv(hostname=f"webhooks@{socket.gethostname()}", concurrency=4)
        self.child = Child("webhooks", argv, env, self.log_dir / f"webhooks{self.starts}.log", Path.cwd())
        deadline = time.monotonic() + 60
        while "ready." not in self.child.log_path.read_text(errors="replace"):
            assert self.child.alive(), self.child.log_tail()
            assert time.monotonic() < deadline, self.child.log_tail()
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL, no warm shutdown: the worst restart."""
        import signal

        if self.child is not None:
            self.child.stop(signal.SIGKILL, grace_s=0)
            self.child = None

    def stop(self) -> None:
        self.kill()  # the end of the module: nothing to drain


@pytest.fixture(scope="module")
def webhook_redis(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(f"redis://127.0.0.1:{redis_server.port}/{DB}")
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(scope="module")
def webhook_worker(webhook_redis: redis.Redis, redis_server: RedisServer,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebhookWorker]:
    worker = WebhookWorker(f"redis://127.0.0.1:{redis_server.port}/{DB}", tmp_path_factory.mktemp("webhooks"))
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = start_receiver()
    yield server
    server.server.shutdown()


@pytest.fixture
def registry(webhook_redis: redis.Redis) -> JobRegistry:
    return JobRegistry(webhook_redis)


def running_job(registry: JobRegistry, url: str | None, events: list[str] | None = None, **fields: Any
                ) -> JobRecord:
    """A job record as the API creates it, with its webhook, moved to running as a worker would."""
    record = JobRecord(id=new_job_id(), **fields)
    if url is not None:
        record.webhook = {"url": url, "events": events or ["succeeded", "failed", "canceled"]}
    registry.create(record)
    registry.mark_running(record.id, "test-host", 1)
    return record
