"""The style-target cache on a real Redis (its lock) and local storage, with a stand-in for the engine's
``compute_style_targets`` (the real engine runs in test_batch_e2e)."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from services.storage import LocalStorage
from shared.params import StyleParams
from worker.style_cache import KEY_PREFIX, StyleTargetCache, cache_key_fields, storage_key


class FakeTargets:
    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def to_bytes(self) -> bytes:
        return self.payload


class Computer:
    def __init__(self, delay_s: float = 0.0) -> None:
        self.calls = 0
        self.delay_s = delay_s
        self.lock = threading.Lock()

    def __call__(self, styles, params):
        with self.lock:
            self.calls += 1
        time.sleep(self.delay_s)
        return FakeTargets(f"grams of {len(styles)} at {params.size}".encode())


def from_bytes(data: bytes) -> FakeTargets:
    if not data.startswith(b"grams"):
        raise ValueError("not targets")
    return FakeTargets(data)


@pytest.fixture
def make_cache(isolated_redis_url, tmp_path):
    clients = []
    storage = LocalStorage(tmp_path / "storage")

    def build(computer: Computer, **kwargs) -> StyleTargetCache:
        client = redis.Redis.from_url(isolated_redis_url)
        clients.append(client)
        return StyleTargetCache(storage, client, compute=computer, precision_of=lambda p: "float32",
                                from_bytes=from_bytes, **kwargs)

    yield build
    for client in clients:
        client.close()


STYLES = ["inputs/" + "a" * 64 + ".jpg"]
PARAMS = StyleParams.from_mapping({"size": 32})


def test_computed_once_then_reused_from_memory_and_by_other_workers(make_cache):
    computer = Computer()
    cache = make_cache(computer)
    targets, outcome = cache.targets_for(STYLES, ["style"], PARAMS)
    assert outcome.source == "computed" and outcome.state == "computed" and computer.calls == 1
    assert outcome.key.startswith(KEY_PREFIX) and cache.storage.get(outcome.key) == targets.payload
    _, again = cache.targets_for(STYLES, ["style"], PARAMS)
    assert again.source == "memory" and again.state == "reused"
    other_worker = make_cache(computer)
    reused, elsewhere = other_worker.targets_for(STYLES, ["style"], PARAMS)
    assert elsewhere.source == "storage" and reused.payload == targets.payload
    assert computer.calls == 1


def test_key_depends_on_styles_blend_and_size_not_on_content_params():
    base = cache_key_fields(STYLES * 2, StyleParams.from_mapping({"size": 32}), "float32")
    assert storage_key(base) == storage_key(cache_key_fields(
        STYLES * 2, StyleParams.from_mapping({"size": 32, "content_weight": 3.0, "iterations": 7}), "float32"))
    others = [
        cache_key_fields(STYLES * 2, StyleParams.from_mapping({"size": 64}), "float32"),
        cache_key_fields(STYLES * 2, StyleParams.from_mapping({"size": 32, "style_blend": [0.7, 0.3]}), "float32"),
        cache_key_fields([STYLES[0], "inputs/" + "b" * 64 + ".jpg"], StyleParams.from_mapping({"size": 32}),
                         "float32"),
        cache_key_fields(STYLES * 2, StyleParams.from_mapping({"size": 32}), "bfloat16"),
    ]
    assert len({storage_key(base)} | {storage_key(fields) for fields in others}) == 5
    assert cache_key_fields(STYLES, StyleParams.from_mapping({"preserve_color": "luminance"}), "float32") is None


def test_colour_modes_that_depend_on_the_content_bypass_the_cache(make_cache):
    computer = Computer()
    targets, outcome = make_cache(computer).targets_for(
        STYLES, ["style"], StyleParams.from_mapping({"size": 32, "preserve_color": "histogram"}))
    assert targets is None and outcome.source == "bypassed" and outcome.state == "computed" and computer.calls == 0


def test_two_workers_at_once_compute_once(make_cache):
    computer = Computer(delay_s=0.5)
    caches = [make_cache(computer) for _ in range(3)]
    outcomes = [None] * 3

    def run(index: int) -> None:
        outcomes[index] = caches[index].targets_for(STYLES, ["style"], PARAMS)[1]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert computer.calls == 1
    assert sorted(outcome.source for outcome in outcomes) == ["computed", "storage", "storage"]
    waited = [outcome.wait_s for outcome in outcomes if outcome.source == "storage"]
    assert min(waited) > 0.2  # they waited for the computation instead of doing it


def test_a_lock_left_by_a_dead_worker_expires(make_cache):
    computer = Computer()
    cache = make_cache(computer, lock_ttl_s=0.3)
    key = storage_key(cache_key_fields(STYLES, PARAMS, "float32"))
    cache.redis.set("atelier:style-targets:lock:" + key, "dead-worker", px=300)
    started = time.monotonic()
    _, outcome = cache.targets_for(STYLES, ["style"], PARAMS)
    assert outcome.source == "computed" and computer.calls == 1
    assert 0.2 < time.monotonic() - started < 5


def test_an_unreadable_stored_entry_is_recomputed(make_cache):
    computer = Computer()
    cache = make_cache(computer)
    key = storage_key(cache_key_fields(STYLES, PARAMS, "float32"))
    cache.storage.put(key, b"garbage")
    targets, outcome = cache.targets_for(STYLES, ["style"], PARAMS)
    assert outcome.source == "computed" and cache.storage.get(key) == targets.payload


def test_shared_through_s3_storage(isolated_redis_url, s3_endpoint, s3_bucket):
    from services.storage import S3Storage

    computer = Computer()
    clients = [redis.Redis.from_url(isolated_redis_url) for _ in range(2)]
    try:
        caches = [StyleTargetCache(S3Storage(s3_bucket, s3_endpoint), client, compute=computer,
                                   precision_of=lambda p: "float32", from_bytes=from_bytes) for client in clients]
        first, computed = caches[0].targets_for(STYLES, ["style"], PARAMS)
        second, reused = caches[1].targets_for(STYLES, ["style"], PARAMS)
    finally:
        for client in clients:
            client.close()
    assert (computed.source, reused.source, computer.calls) == ("computed", "storage", 1)
    assert second.payload == first.payload
