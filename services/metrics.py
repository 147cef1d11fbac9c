"""Atelier's Prometheus metrics: their definitions, where each is counted, and the collector the API exports.

Why most numbers live in Redis. In production the workers run on other hosts (one per GPU) than the API, so their
counts cannot sit in the API's memory, and asking Prometheus to find and scrape every short-lived GPU pod adds service
discovery for little gain. Every process already shares Redis, so the cluster's numbers are kept there:

- job outcomes are counted where a record becomes terminal (``JobRegistry.transition``), inside the same MULTI as
  the status change, so each job is counted exactly once whichever process ended it (a worker, or the API cancelling
  a queued job);
- a worker adds each delivery that ended a job to Redis counters and histograms (``record_delivery``, called from
  ``worker/signals.py``): a handful of HINCRBYs per job, nothing next to a job that runs for seconds to minutes;
- gauges (queue depth, jobs by status, jobs in flight, workers alive) are read from Redis when ``/metrics`` is scraped.

``RedisMetricsCollector`` turns those keys into Prometheus families at scrape time. The API's own request metrics
(``HTTP_REQUESTS``, ``HTTP_LATENCY``) are ordinary prometheus-client objects; under gunicorn they run in
prometheus-client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``). Every API replica exports the same
cluster-wide numbers, so dashboards and the KEDA query aggregate them with ``max()``, not ``sum()``.

Redis layout (all keys start with ``atelier:metrics:``):

- ``atelier:metrics:counter:<name>``: hash, field = label values joined by ``\\x1f``, value = the count;
- ``atelier:metrics:histogram:<name>``: hash, fields ``<labels>\\x1e<le>`` (per-bucket, not cumulative; cumulated
  when exported), ``<labels>\\x1esum`` and ``<labels>\\x1ecount``;
- ``atelier:metrics:workers``: sorted set, member = worker id, score = last heartbeat (epoch seconds).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import redis
from prometheus_client import Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from services.redis_keys import METRICS_KEY_PREFIX, METRICS_WORKERS_KEY
from shared.jobs import STATUS_VALUES, JobStatus, is_terminal, parse_iso
from shared.tasks import QUEUES

log = logging.getLogger(__name__)

KEY_PREFIX = METRICS_KEY_PREFIX
WORKERS_KEY = METRICS_WORKERS_KEY
LABEL_SEP = "\x1f"
FIELD_SEP = "\x1e"

# A worker beats every WORKER_HEARTBEAT_INTERVAL_S; it counts as alive while its last beat is younger than
# WORKER_ALIVE_WINDOW_S (three missed beats), so one slow Redis round trip does not make a worker vanish.
WORKER_HEARTBEAT_INTERVAL_S = 10.0
WORKER_ALIVE_WINDOW_S = 30.0
# Heartbeats of workers gone for this long are deleted at scrape time (the set stays small under autoscaling).
WORKER_FORGET_AFTER_S = 3600.0


@dataclass(frozen=True)
class ClusterMetric:
    """A counter or histogram kept in Redis. ``name`` is the exported name without ``_total``/``_bucket``."""

    name: str
    kind: str  # "counter" | "histogram"
    help: str
    labels: tuple[str, ...]
    buckets_s: tuple[float, ...] = ()  # histogram upper bounds, ascending (+Inf is implied)

    @property
    def key(self) -> str:
        return f"{KEY_PREFIX}{self.kind}:{self.name}"


# Job lengths span seconds (a 256 px preview) to an hour (print sizes on a slow backbone).
_DURATION_BUCKETS_S = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)
_WAIT_BUCKETS_S = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
_RATE_BUCKETS = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0)

JOBS_FINISHED = ClusterMetric(
    "atelier_jobs_finished", "counter", "Jobs that reached a final status, by status and backbone.",
    ("status", "backbone"))
STYLE_TARGET_LOOKUPS = ClusterMetric(
    "atelier_style_target_cache_lookups", "counter",
    "Style targets (Gram matrices) per finished job: hit = reused from the cache, miss = computed.", ("result",))
ENGINE_ITERATIONS = ClusterMetric(
    "atelier_engine_iterations", "counter", "Optimisation iterations run by finished jobs.", ("backbone",))
ENGINE_SECONDS = ClusterMetric(
    "atelier_engine_seconds", "counter",
    "Engine wall time of finished jobs; rate(iterations) / rate(seconds) is the cluster's iterations per second.",
    ("backbone",))
QUEUE_WAIT = ClusterMetric(
    "atelier_job_queue_wait_seconds", "histogram", "Time from submission to a worker starting the job.",
    ("queue",), _WAIT_BUCKETS_S)
RUN_TIME = ClusterMetric(
    "atelier_job_run_seconds", "histogram", "Time from a worker starting the job to its final status.",
    ("backbone", "status"), _DURATION_BUCKETS_S)
ITERATION_RATE = ClusterMetric(
    "atelier_job_iterations_per_second", "histogram", "Optimisation iterations per second of each finished job.",
    ("backbone",), _RATE_BUCKETS)

CLUSTER_METRICS: tuple[ClusterMetric, ...] = (
    JOBS_FINISHED, STYLE_TARGET_LOOKUPS, ENGINE_ITERATIONS, ENGINE_SECONDS, QUEUE_WAIT, RUN_TIME, ITERATION_RATE,
)

# The API process's own metrics (per gunicorn worker, merged by prometheus-client's multiprocess mode). Not
# registered in the global registry: /metrics builds a registry per scrape (see api/blueprints/metrics.py).
HTTP_REQUESTS = Counter("atelier_http_requests", "HTTP requests answered by the API, by route and status.",
                        ("method", "route", "status"), registry=None)
HTTP_LATENCY = Histogram("atelier_http_request_duration_seconds", "Time to answer an HTTP request, by route.",
                         ("method", "route"), registry=None,
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
API_PROCESS_METRICS = (HTTP_REQUESTS, HTTP_LATENCY)


# --- counting (writers) ----------------------------------------------------------------------------------------


def _labels_field(values: Iterable[Any]) -> str:
    return LABEL_SEP.join(str(value) for value in values)


def _backbone(record: Mapping[str, Any]) -> str:
    return str((record.get("params") or {}).get("backbone") or "unknown")


def count_job_finished(pipe: Any, record: Mapping[str, Any]) -> None:
    """Queue the outcome counter's increment on ``pipe`` (a MULTI pipeline that also writes the terminal record)."""
    pipe.hincrby(JOBS_FINISHED.key, _labels_field((record["status"], _backbone(record))), 1)


def _observe(pipe: Any, metric: ClusterMetric, labels: tuple[Any, ...], value: float) -> None:
    prefix = _labels_field(labels) + FIELD_SEP
    bucket = next((bound for bound in metric.buckets_s if value <= bound), math.inf)
    pipe.hincrby(metric.key, prefix + _le(bucket), 1)
    pipe.hincrbyfloat(metric.key, prefix + "sum", float(value))
    pipe.hincrby(metric.key, prefix + "count", 1)


def _seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    try:
        return max(0.0, (parse_iso(end) - parse_iso(start)).total_seconds())
    except ValueError:
        return None


def record_delivery(client: redis.Redis, record: Mapping[str, Any]) -> None:
    """Add a job that a worker has just ended (``record`` is its terminal record) to the cluster histograms and
    engine counters. Called once per job, by the delivery that ended it (not for skipped duplicate deliveries)."""
    if not is_terminal(record["status"]):
        raise ValueError(f"record_delivery needs a terminal record, got status {record['status']!r}")
    backbone = _backbone(record)
    metrics = record.get("metrics") or {}
    pipe = client.pipeline(transaction=True)  # a scrape never sees a bucket without its sum and count
    wait_s = _seconds_between(record.get("created_at"), record.get("started_at"))
    if wait_s is not None:
        _observe(pipe, QUEUE_WAIT, (record.get("queue") or "unknown",), wait_s)
    run_s = _seconds_between(record.get("started_at"), record.get("finished_at"))
    if run_s is not None:
        _observe(pipe, RUN_TIME, (backbone, record["status"]), run_s)
    iterations = int(metrics.get("iterations_run") or 0)
    engine_s = float(metrics.get("optimize_seconds") or metrics.get("seconds") or 0.0)
    if iterations > 0 and engine_s > 0:
        pipe.hincrby(ENGINE_ITERATIONS.key, _labels_field((backbone,)), iterations)
        pipe.hincrbyfloat(ENGINE_SECONDS.key, _labels_field((backbone,)), engine_s)
        _observe(pipe, ITERATION_RATE, (backbone,), iterations / engine_s)
    targets = metrics.get("style_targets")
    if targets in ("reused", "computed"):
        pipe.hincrby(STYLE_TARGET_LOOKUPS.key, _labels_field(("hit" if targets == "reused" else "miss",)), 1)
    pipe.execute()


def heartbeat(client: redis.Redis, worker_id: str, *, now_s: float | None = None) -> None:
    """Mark ``worker_id`` alive now (the worker calls this every WORKER_HEARTBEAT_INTERVAL_S)."""
    client.zadd(WORKERS_KEY, {worker_id: time.time() if now_s is None else now_s})


def forget_worker(client: redis.Redis, worker_id: str) -> None:
    """A worker that stops in an orderly way leaves at once instead of after WORKER_ALIVE_WINDOW_S."""
    client.zrem(WORKERS_KEY, worker_id)


# --- exporting (the API's collector) ---------------------------------------------------------------------------


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def _decode(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisMetricsCollector:
    """A prometheus-client collector reading the cluster's numbers from Redis in one round trip per scrape.

    If Redis cannot be read, the scrape still succeeds with ``atelier_redis_up 0`` (so an alert can fire) instead of
    failing as a whole.
    """

    def __init__(self, client: redis.Redis, *, queues: tuple[str, ...] = QUEUES,
                 clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.queues = queues
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        try:
            snapshot = self._read()
        except redis.RedisError as exc:
            log.warning("metrics: Redis unavailable during scrape: %s", exc)
            yield GaugeMetricFamily("atelier_redis_up", "1 if the API could read Redis during this scrape.", value=0)
            return
        yield GaugeMetricFamily("atelier_redis_up", "1 if the API could read Redis during this scrape.", value=1)
        yield from self._gauges(snapshot)
        for metric in CLUSTER_METRICS:
            values = snapshot["hashes"][metric.name]
            yield _counter(metric, values) if metric.kind == "counter" else _histogram(metric, values)

    def _read(self) -> dict[str, Any]:
        from services.redis_keys import status_index_key

        now_s = self.clock()
        pipe = self.client.pipeline(transaction=False)
        for queue in self.queues:
            pipe.llen(queue)
        for status in STATUS_VALUES:
            pipe.zcard(status_index_key(status))
        pipe.zremrangebyscore(WORKERS_KEY, "-inf", now_s - WORKER_FORGET_AFTER_S)
        pipe.zcount(WORKERS_KEY, now_s - WORKER_ALIVE_WINDOW_S, "+inf")
        for metric in CLUSTER_METRICS:
            pipe.hgetall(metric.key)
        results = pipe.execute()
        n_queues, n_statuses = len(self.queues), len(STATUS_VALUES)
        queue_depth = dict(zip(self.queues, results[:n_queues], strict=True))
        by_status = dict(zip(STATUS_VALUES, results[n_queues:n_queues + n_statuses], strict=True))
        workers_alive = results[n_queues + n_statuses + 1]
        hashes = {
            metric.name: {_decode(k): _decode(v) for k, v in raw.items()}
            for metric, raw in zip(CLUSTER_METRICS, results[n_queues + n_statuses + 2:], strict=True)
        }
        return {"queue_depth": queue_depth, "by_status": by_status, "workers_alive": workers_alive, "hashes": hashes}

    def _gauges(self, snapshot: dict[str, Any]) -> Iterator[Metric]:
        depth = GaugeMetricFamily("atelier_queue_depth", "Messages waiting in each Celery queue (Redis LLEN).",
                                  labels=["queue"])
        for queue, length in snapshot["queue_depth"].items():
            depth.add_metric([queue], int(length))
        yield depth
        jobs = GaugeMetricFamily("atelier_jobs", "Job records by status.", labels=["status"])
        for status, count in snapshot["by_status"].items():
            jobs.add_metric([status], int(count))
        yield jobs
        # What KEDA scales on: work queued plus work running. The broker's list alone undercounts, because a job
        # leaves the list the moment a worker takes it, although that worker stays busy until the job ends.
        inflight = int(snapshot["by_status"][JobStatus.QUEUED.value]) + int(
            snapshot["by_status"][JobStatus.RUNNING.value])
        yield GaugeMetricFamily("atelier_jobs_inflight", "Jobs queued or running (the autoscaling signal).",
                                value=inflight)
        yield GaugeMetricFamily(
            "atelier_workers_alive",
            f"Worker processes whose heartbeat is younger than {WORKER_ALIVE_WINDOW_S:g} s (ready: backbone built).",
            value=int(snapshot["workers_alive"]))


def _split_labels(field: str, n_labels: int) -> list[str]:
    values = field.split(LABEL_SEP) if field else []
    return values if len(values) == n_labels else (values + [""] * n_labels)[:n_labels]


def _counter(metric: ClusterMetric, values: dict[str, str]) -> Metric:
    family = CounterMetricFamily(metric.name, metric.help, labels=list(metric.labels))
    for field, value in sorted(values.items()):
        family.add_metric(_split_labels(field, len(metric.labels)), float(value))
    return family


def _histogram(metric: ClusterMetric, values: dict[str, str]) -> Metric:
    family = HistogramMetricFamily(metric.name, metric.help, labels=list(metric.labels))
    series: dict[str, dict[str, str]] = {}
    for field, value in values.items():
        labels, _, part = field.rpartition(FIELD_SEP)
        series.setdefault(labels, {})[part] = value
    bounds = [_le(bound) for bound in metric.buckets_s] + ["+Inf"]
    for labels, parts in sorted(series.items()):
        cumulative, buckets = 0, []
        for bound in bounds:
            cumulative += int(parts.get(bound, 0))
            buckets.append((bound, cumulative))
        family.add_metric(_split_labels(labels, len(metric.labels)), buckets, float(parts.get("sum", 0.0)))
    return family
