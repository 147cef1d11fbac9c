"""``GET /metrics`` in Prometheus' text format, and the per-request hooks that feed it and the logs' job id.

A scrape returns two kinds of numbers (``services/metrics.py`` explains the design):

- the cluster's, read from Redis at scrape time by ``RedisMetricsCollector``: job outcomes, queue depth, jobs in
  flight, workers alive, queue-wait/run-time/iteration-rate histograms. Identical on every API replica.
- this API's own request counts and latencies. Under gunicorn each worker process writes them to files in
  ``PROMETHEUS_MULTIPROC_DIR`` and any process merges all of them on scrape (prometheus-client's multiprocess mode;
  the directory must be empty when the API starts, which ``atelier dev``, the tests and the manifests ensure).
  Without that variable (one process, e.g. the Flask test client) they are read from this process's memory. The
  API keeps no gauges in process memory (the cluster's gauges come from Redis), so gunicorn needs no ``child_exit``
  hook to mark dead workers' gauge files.
"""

from __future__ import annotations

import os
import time

from flask import Blueprint, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from api.context import api_context
from services.metrics import API_PROCESS_METRICS, HTTP_LATENCY, HTTP_REQUESTS, RedisMetricsCollector
from shared.logging import JOB_ID

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def scrape() -> Response:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        for metric in API_PROCESS_METRICS:
            registry.register(metric)
    registry.register(RedisMetricsCollector(api_context().registry.redis))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


@bp.before_app_request
def _start_request() -> None:
    g.atelier_request_started_s = time.perf_counter()
    # Requests about one job (/v1/jobs/<job_id>/...) log with its id; POST /v1/jobs binds the new id itself.
    JOB_ID.set((request.view_args or {}).get("job_id"))


@bp.after_app_request
def _count_request(response: Response) -> Response:
    # The route's pattern, not the path: one series per endpoint, not one per job id.
    route = request.url_rule.rule if request.url_rule is not None else "unmatched"
    HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
    started_s = g.get("atelier_request_started_s")
    if started_s is not None:
        HTTP_LATENCY.labels(request.method, route).observe(time.perf_counter() - started_s)
    return response


@bp.teardown_app_request
def _forget_job_id(_exc: BaseException | None) -> None:
    JOB_ID.set(None)  # gunicorn threads serve many requests: the next one must not inherit this id
