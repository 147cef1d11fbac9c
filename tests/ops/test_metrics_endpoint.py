"""GET /metrics of the API (Flask test client, real Redis): Prometheus format, request metrics, cluster metrics."""

from __future__ import annotations

from pathlib import Path

import redis

from api.app import create_app
from services.registry import JobRegistry
from shared.jobs import new_job_id, new_job_record
from shared.settings import Settings

from .conftest import parse_metrics, sample


def test_metrics_show_cluster_numbers_and_this_apis_requests(isolated_redis_url: str, tmp_path: Path):
    settings = Settings(redis_url=isolated_redis_url, storage=f"file://{tmp_path / 'storage'}", auth="off")
    app = create_app(settings)
    client = app.test_client()
    registry = JobRegistry(redis.Redis.from_url(isolated_redis_url))
    job_id = new_job_id()
    registry.create(new_job_record(job_id, params={"backbone": "vgg19"}, content_key="c", style_keys=["s"],
                                   content_name=None, style_names=[None], queue="interactive"))
    registry.mark_running(job_id, "h", 1)
    registry.finish(job_id, "succeeded")

    before = parse_metrics(client.get("/metrics").get_data(as_text=True))[1]
    assert client.get(f"/v1/jobs/{job_id}").status_code == 200
    assert client.get("/v1/jobs/unknown-id").status_code == 404
    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    types, samples = parse_metrics(response.get_data(as_text=True))
    assert all(name.startswith("atelier_") for name in types)
    assert types["atelier_http_requests"] == "counter"
    assert types["atelier_http_request_duration_seconds"] == "histogram"
    route = {"method": "GET", "route": "/v1/jobs/<job_id>"}  # the route pattern: no series per job id
    for status in ("200", "404"):
        grew = (sample(samples, "atelier_http_requests_total", status=status, **route)
                - sample(before, "atelier_http_requests_total", status=status, **route))
        assert grew == 1
    assert sample(samples, "atelier_jobs_finished_total", status="succeeded", backbone="vgg19") == 1
    assert sample(samples, "atelier_jobs", status="succeeded") == 1
    registry.redis.close()
