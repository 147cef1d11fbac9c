"""GET /v1/jobs/{id}, result and previews, cancel, and the paginated listing.

The worker's side is played through the same registry and storage calls the worker makes (mark_running,
set_progress, add_preview, finish), so these tests exercise the API alone; the end-to-end tests in tests/e2e run
the real worker.
"""

from __future__ import annotations

import urllib.request

import numpy as np
import pytest
from api_helpers import image_bytes

from shared.images import encode_png, load_rgb
from shared.jobs import JobStatus, preview_key, result_key

pytestmark = pytest.mark.integration


def _png(height: int, width: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    return encode_png(rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8))


def _fetch(api, path: str) -> tuple[int, bytes]:
    """GET through the API; follow a redirect to S3 over real HTTP, as a client would."""
    response = api.client.get(path)
    if response.status_code == 302:
        assert api.storage_kind == "s3"
        location = response.headers["Location"]
        assert "X-Amz-Expires=" in location and "X-Amz-Signature=" in location
        with urllib.request.urlopen(location, timeout=10) as s3_response:
            return s3_response.status, s3_response.read()
    assert api.storage_kind == "local"
    return response.status_code, response.get_data()


def test_unknown_job_is_404_everywhere(api):
    for method, path in [("get", "/v1/jobs/nope"), ("get", "/v1/jobs/nope/result"), ("post", "/v1/jobs/nope/cancel"),
                         ("get", "/v1/jobs/nope/previews/10")]:
        response = getattr(api.client, method)(path)
        assert response.status_code == 404, path
        assert response.json["error"]["code"] == "job_not_found" and "nope" in response.json["error"]["message"]


def test_job_shows_progress_worker_and_result(api):
    job_id = api.submit(params='{"size": 32, "iterations": 4}').json["id"]
    assert api.registry.mark_running(job_id, "gpu-host-1", 4242)
    progress = {"iteration": 2, "iterations": 4, "percent": 50.0, "losses": {"total": 1.5}, "eta_s": 0.4}
    api.registry.set_progress(job_id, progress)

    job = api.client.get(f"/v1/jobs/{job_id}").json
    assert job["status"] == "running" and job["progress"] == progress
    assert job["worker"] == {"hostname": "gpu-host-1", "pid": 4242} and job["started_at"]
    result = api.client.get(f"/v1/jobs/{job_id}/result")
    assert result.status_code == 409 and result.json["error"]["code"] == "not_ready"
    assert "running" in result.json["error"]["message"]

    png = _png(24, 32, seed=1)
    api.storage.put(result_key(job_id), png, content_type="image/png")
    api.registry.finish(job_id, JobStatus.SUCCEEDED, result={"key": result_key(job_id), "width": 32, "height": 24},
                        metrics={"seconds": 1.0})
    job = api.client.get(f"/v1/jobs/{job_id}").json
    assert job["status"] == "succeeded" and job["finished_at"] and job["metrics"] == {"seconds": 1.0}
    assert job["result"] == {"url": f"/v1/jobs/{job_id}/result", "width": 32, "height": 24}
    status, body = _fetch(api, job["result"]["url"])
    assert status == 200 and body == png
    assert load_rgb(body).shape == (24, 32, 3)


def test_result_is_409_while_queued(api):
    job_id = api.submit().json["id"]
    response = api.client.get(f"/v1/jobs/{job_id}/result")
    assert response.status_code == 409 and response.json["error"]["code"] == "not_ready"
    assert "queued" in response.json["error"]["message"]


def test_failed_job_shows_error_and_has_no_result(api):
    job_id = api.submit().json["id"]
    api.registry.mark_running(job_id, "h", 1)
    api.registry.finish(job_id, JobStatus.FAILED, error={"code": "weights_missing", "message": "no xception.h5"})
    job = api.client.get(f"/v1/jobs/{job_id}").json
    assert job["status"] == "failed" and job["error"] == {"code": "weights_missing", "message": "no xception.h5"}
    response = api.client.get(f"/v1/jobs/{job_id}/result")
    assert response.status_code == 409 and response.json["error"]["code"] == "no_result"
    assert "no xception.h5" in response.json["error"]["message"]


def test_previews_are_listed_and_served(api):
    job_id = api.submit().json["id"]
    api.registry.mark_running(job_id, "h", 1)
    pngs = {10: _png(8, 8, seed=10), 20: _png(8, 8, seed=20)}
    for iteration, png in pngs.items():
        api.storage.put(preview_key(job_id, iteration), png, content_type="image/png")
        api.registry.add_preview(job_id, preview_key(job_id, iteration))
    job = api.client.get(f"/v1/jobs/{job_id}").json
    assert job["previews"] == [f"/v1/jobs/{job_id}/previews/10", f"/v1/jobs/{job_id}/previews/20"]
    for iteration, url in zip(pngs, job["previews"], strict=True):
        assert _fetch(api, url) == (200, pngs[iteration])
    missing = api.client.get(f"/v1/jobs/{job_id}/previews/30")
    assert missing.status_code == 404 and missing.json["error"]["code"] == "preview_not_found"


def test_cancel_queued_job_is_final_and_the_worker_will_not_run_it(api):
    job_id = api.submit().json["id"]
    response = api.client.post(f"/v1/jobs/{job_id}/cancel")
    assert response.status_code == 200
    assert response.json["status"] == "canceled" and response.json["finished_at"]
    assert api.registry.mark_running(job_id, "h", 1) is False  # what the worker does on delivery
    assert api.client.get(f"/v1/jobs/{job_id}").json["status"] == "canceled"


def test_cancel_running_job_sets_the_flag_the_worker_polls(api):
    job_id = api.submit().json["id"]
    api.registry.mark_running(job_id, "h", 1)
    response = api.client.post(f"/v1/jobs/{job_id}/cancel")
    assert response.status_code == 202
    assert response.json["status"] == "running" and response.json["cancel_requested"] is True
    assert api.registry.cancel_requested(job_id) is True
    api.registry.finish(job_id, JobStatus.CANCELED)  # the worker stops at its next progress report
    assert api.client.get(f"/v1/jobs/{job_id}").json["status"] == "canceled"


def test_cancel_finished_job_changes_nothing(api):
    job_id = api.submit().json["id"]
    api.registry.mark_running(job_id, "h", 1)
    api.registry.finish(job_id, JobStatus.SUCCEEDED, result={"key": result_key(job_id), "width": 1, "height": 1})
    response = api.client.post(f"/v1/jobs/{job_id}/cancel")
    assert response.status_code == 200 and response.json["status"] == "succeeded"
    assert response.json["cancel_requested"] is False


def test_listing_is_newest_first_and_pages_with_a_stable_cursor(api):
    ids = [api.submit(content=image_bytes(color=(i, i, i))).json["id"] for i in range(5)]
    newest_first = ids[::-1]

    page1 = api.client.get("/v1/jobs?limit=2").json
    assert [job["id"] for job in page1["jobs"]] == newest_first[:2] and page1["next_cursor"]
    late = api.submit().json["id"]  # arrives between pages: must not shift the next page
    page2 = api.client.get(f"/v1/jobs?limit=2&cursor={page1['next_cursor']}").json
    assert [job["id"] for job in page2["jobs"]] == newest_first[2:4]
    page3 = api.client.get(f"/v1/jobs?limit=2&cursor={page2['next_cursor']}").json
    assert [job["id"] for job in page3["jobs"]] == newest_first[4:] and page3["next_cursor"] is None
    assert api.client.get("/v1/jobs").json["jobs"][0]["id"] == late


def test_listing_filters_by_status(api):
    ids = [api.submit().json["id"] for _ in range(3)]
    api.client.post(f"/v1/jobs/{ids[1]}/cancel")
    canceled = api.client.get("/v1/jobs?status=canceled").json["jobs"]
    queued = api.client.get("/v1/jobs?status=queued").json["jobs"]
    assert [job["id"] for job in canceled] == [ids[1]]
    assert [job["id"] for job in queued] == [ids[2], ids[0]]


@pytest.mark.parametrize(("query", "code"), [("limit=0", "bad_limit"), ("limit=abc", "bad_limit"),
                                             ("limit=1000", "bad_limit"), ("status=done", "bad_status"),
                                             ("cursor=%%%", "bad_cursor")])
def test_listing_refuses_bad_query(api, query, code):
    response = api.client.get(f"/v1/jobs?{query}")
    assert response.status_code == 400 and response.json["error"]["code"] == code


def test_unknown_route_and_method_are_json(api):
    assert api.client.get("/v2/nothing").json["error"]["code"] == "not_found"
    response = api.client.delete("/v1/jobs")
    assert response.status_code == 405 and response.json["error"]["code"] == "method_not_allowed"


def test_unexpected_error_is_500_json_without_traceback(make_harness, caplog):
    class BrokenRegistry:
        def require(self, job_id):
            raise RuntimeError("secret internal detail")

    api = make_harness(registry=BrokenRegistry())
    response = api.client.get("/v1/jobs/anything")
    assert response.status_code == 500 and response.json["error"]["code"] == "internal_error"
    assert "secret" not in response.get_data(as_text=True) and "Traceback" not in response.get_data(as_text=True)
    assert "secret internal detail" in caplog.text  # the trace goes to the log
