"""The cluster metrics kept in Redis: counted where they happen, exported by the collector (real Redis)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from prometheus_client import CollectorRegistry, generate_latest
from redis.backoff import NoBackoff
from redis.retry import Retry

from services import metrics
from services.metrics import RedisMetricsCollector
from services.registry import JobRegistry
from shared.jobs import new_job_id, new_job_record

from .conftest import parse_metrics, sample


@pytest.fixture
def client(isolated_redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(isolated_redis_url)
    yield connection
    connection.close()


def scrape(client: redis.Redis, now_s: float | None = None) -> tuple[dict, dict]:
    registry = CollectorRegistry()
    kwargs = {} if now_s is None else {"clock": lambda: now_s}
    registry.register(RedisMetricsCollector(client, **kwargs))
    return parse_metrics(generate_latest(registry).decode())


def make_record(registry: JobRegistry, backbone: str = "vgg19", queue: str = "interactive") -> str:
    job_id = new_job_id()
    registry.create(new_job_record(job_id, params={"backbone": backbone, "size": 32}, content_key="inputs/c.png",
                                   style_keys=["inputs/s.png"], content_name="c.png", style_names=["s.png"],
                                   queue=queue))
    return job_id


def test_each_job_outcome_is_counted_once_where_the_record_becomes_terminal(client: redis.Redis):
    registry = JobRegistry(client)
    done, canceled, failed = make_record(registry), make_record(registry), make_record(registry, "xception")
    registry.mark_running(done, "host", 1)
    assert registry.finish(done, "succeeded", result={"key": "k"})
    assert not registry.finish(done, "failed")  # a duplicate delivery cannot end it (or count it) again
    registry.request_cancel(canceled)  # queued -> canceled in the API, never touched by a worker
    registry.mark_running(failed, "host", 1)
    registry.finish(failed, "failed", error={"code": "weights_missing", "message": "m"})

    types, samples = scrape(client)
    assert types["atelier_jobs_finished"] == "counter"
    assert sample(samples, "atelier_jobs_finished_total", status="succeeded", backbone="vgg19") == 1
    assert sample(samples, "atelier_jobs_finished_total", status="failed", backbone="vgg19") == 0
    assert sample(samples, "atelier_jobs_finished_total", status="canceled", backbone="vgg19") == 1
    assert sample(samples, "atelier_jobs_finished_total", status="failed", backbone="xception") == 1


def test_a_finished_delivery_fills_the_histograms_and_engine_counters(client: redis.Redis):
    record = {"status": "succeeded", "queue": "bulk", "params": {"backbone": "vgg19"},
              "created_at": "2026-01-01T00:00:00.000Z", "started_at": "2026-01-01T00:00:03.000Z",
              "finished_at": "2026-01-01T00:00:45.000Z",
              "metrics": {"iterations_run": 100, "optimize_seconds": 40.0, "style_targets": "reused"}}
    metrics.record_delivery(client, record)
    metrics.record_delivery(client, record | {"metrics": {"iterations_run": 10, "optimize_seconds": 1.0,
                                                          "style_targets": "computed"}})

    types, samples = scrape(client)
    assert types["atelier_job_queue_wait_seconds"] == types["atelier_job_run_seconds"] == "histogram"
    wait = {"queue": "bulk"}
    assert sample(samples, "atelier_job_queue_wait_seconds_count", **wait) == 2
    assert sample(samples, "atelier_job_queue_wait_seconds_sum", **wait) == pytest.approx(6.0)
    # buckets are cumulative: a 3 s wait is above le=2 and within le=5
    assert sample(samples, "atelier_job_queue_wait_seconds_bucket", le="2.0", **wait) == 0
    assert sample(samples, "atelier_job_queue_wait_seconds_bucket", le="5.0", **wait) == 2
    assert sample(samples, "atelier_job_queue_wait_seconds_bucket", le="+Inf", **wait) == 2
    run = {"backbone": "vgg19", "status": "succeeded"}
    assert sample(samples, "atelier_job_run_seconds_sum", **run) == pytest.approx(84.0)
    assert sample(samples, "atelier_job_run_seconds_bucket", le="30.0", **run) == 0
    assert sample(samples, "atelier_job_run_seconds_bucket", le="60.0", **run) == 2
    assert sample(samples, "atelier_engine_iterations_total", backbone="vgg19") == 110
    assert sample(samples, "atelier_engine_seconds_total", backbone="vgg19") == pytest.approx(41.0)
    # per-job rates 2.5 and 10 iterations/s
    assert sample(samples, "atelier_job_iterations_per_second_bucket", le="5.0", backbone="vgg19") == 1
    assert sample(samples, "atelier_job_iterations_per_second_bucket", le="10.0", backbone="vgg19") == 2
    assert sample(samples, "atelier_style_target_cache_lookups_total", result="hit") == 1
    assert sample(samples, "atelier_style_target_cache_lookups_total", result="miss") == 1


def test_record_delivery_refuses_a_job_that_is_not_finished(client: redis.Redis):
    with pytest.raises(ValueError, match="running"):
        metrics.record_delivery(client, {"status": "running"})


def test_gauges_read_queue_depth_jobs_in_flight_and_live_workers_at_scrape_time(client: redis.Redis):
    registry = JobRegistry(client)
    queued = [make_record(registry) for _ in range(3)]
    registry.mark_running(queued[0], "host", 1)
    registry.mark_running(queued[1], "host", 1)
    registry.finish(queued[1], "succeeded")
    client.lpush("interactive", "m1", "m2")
    client.lpush("bulk", "m3")
    now_s = 1_000_000.0
    metrics.heartbeat(client, "gpu-a:1", now_s=now_s - 5)
    metrics.heartbeat(client, "gpu-b:1", now_s=now_s - metrics.WORKER_ALIVE_WINDOW_S - 1)  # missed three beats
    metrics.heartbeat(client, "gone:1", now_s=now_s - metrics.WORKER_FORGET_AFTER_S - 1)

    types, samples = scrape(client, now_s)
    assert types["atelier_queue_depth"] == "gauge"
    assert sample(samples, "atelier_queue_depth", queue="interactive") == 2
    assert sample(samples, "atelier_queue_depth", queue="bulk") == 1
    assert sample(samples, "atelier_jobs", status="queued") == 1
    assert sample(samples, "atelier_jobs", status="running") == 1
    assert sample(samples, "atelier_jobs_inflight") == 2  # queued + running: what KEDA scales on
    assert sample(samples, "atelier_workers_alive") == 1
    assert sample(samples, "atelier_redis_up") == 1
    assert client.zscore(metrics.WORKERS_KEY, "gone:1") is None  # pruned at scrape time
    metrics.forget_worker(client, "gpu-a:1")
    assert sample(scrape(client, now_s)[1], "atelier_workers_alive") == 0


def test_a_scrape_with_redis_down_still_answers_with_redis_up_zero():
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    types, samples = scrape(dead)
    assert sample(samples, "atelier_redis_up") == 0
    assert "atelier_jobs_finished" not in types
