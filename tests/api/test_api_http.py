"""The API as deployed: gunicorn serving ``api.wsgi:app`` (the compose command line) over real HTTP, with settings
from ATELIER_* variables, Redis started by the tests and S3 storage on the moto endpoint."""

from __future__ import annotations

import io
import os
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
import requests
from api_helpers import image_bytes
from PIL import Image

from services.commands import api_argv, resolve
from services.devstack import free_port
from services.queue import queued_messages
from services.registry import JobRegistry
from services.storage import S3Storage
from shared.jobs import JobStatus, result_key
from shared.tasks import INTERACTIVE_QUEUE

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # starts gunicorn (two workers)

ROOT = Path(__file__).resolve().parents[2]
UPLOAD_LIMIT_BYTES = 200_000


@pytest.fixture(scope="module")
def served(redis_server, s3_endpoint, tmp_path_factory):
    redis_url = f"redis://127.0.0.1:{redis_server.port}/2"  # this module's own database
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    bucket = "atelier-http-" + uuid.uuid4().hex[:8]
    port = free_port()
    env = {**os.environ, "ATELIER_AUTH": "off", "ATELIER_REDIS_URL": redis_url, "ATELIER_STORAGE": f"s3://{bucket}",
           "ATELIER_S3_ENDPOINT_URL": s3_endpoint, "ATELIER_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT_BYTES),
           "PYTHONPATH": str(ROOT)}
    log_path = tmp_path_factory.mktemp("gunicorn") / "api.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(resolve(api_argv(f"127.0.0.1:{port}", workers=2, threads=4)), cwd=ROOT, env=env,
                                   stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(base + "/readyz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:  # not listening yet, or still booting
                pass
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "gunicorn not ready: " + log_path.read_text()
            time.sleep(0.1)
        yield base, client, S3Storage(bucket, s3_endpoint)
    finally:
        process.terminate()
        process.wait(10)
        client.close()


def _files(content: bytes) -> list[tuple[str, tuple[str, io.BytesIO, str]]]:
    return [("content", ("c.jpg", io.BytesIO(content), "image/jpeg")),
            ("style", ("s.jpg", io.BytesIO(image_bytes(color=(0, 0, 255))), "image/jpeg"))]


def test_submit_poll_and_fetch_over_http(served):
    base, client, storage = served
    response = requests.post(base + "/v1/jobs", files=_files(image_bytes()), data={"params": '{"size": 32}'},
                             timeout=10)
    assert response.status_code == 202 and response.headers["Content-Type"] == "application/json"
    job_id = response.json()["id"]
    assert response.headers["Location"] == f"/v1/jobs/{job_id}"
    assert requests.get(base + response.headers["Location"], timeout=5).json()["status"] == "queued"
    assert client.llen(INTERACTIVE_QUEUE) >= 1

    # Play the worker's last step, then follow the result link: a 302 to a presigned S3 URL.
    png = io.BytesIO()
    Image.new("RGB", (32, 24), "green").save(png, "PNG")
    storage.put(result_key(job_id), png.getvalue(), content_type="image/png")
    registry = JobRegistry(client)
    registry.mark_running(job_id, "h", 1)
    registry.finish(job_id, JobStatus.SUCCEEDED, result={"key": result_key(job_id), "width": 32, "height": 24})
    redirect = requests.get(base + f"/v1/jobs/{job_id}/result", allow_redirects=False, timeout=5)
    assert redirect.status_code == 302 and "X-Amz-Signature=" in redirect.headers["Location"]
    followed = requests.get(base + f"/v1/jobs/{job_id}/result", timeout=5)
    assert followed.status_code == 200 and followed.content == png.getvalue()


def test_upload_over_the_limit_is_a_413_json_answer_over_http(served):
    base, client, _ = served
    before = client.dbsize()
    noise = io.BytesIO()
    Image.effect_noise((400, 400), 80).convert("RGB").save(noise, "PNG")
    assert len(noise.getvalue()) > UPLOAD_LIMIT_BYTES
    response = requests.post(base + "/v1/jobs", files=_files(noise.getvalue()), timeout=10)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "upload_too_large"
    assert str(UPLOAD_LIMIT_BYTES) in response.json()["error"]["message"]
    assert client.dbsize() == before


def test_concurrent_submissions_each_get_one_record_and_one_message(served):
    base, client, _ = served
    client.delete(INTERACTIVE_QUEUE)
    before = client.zcard("atelier:jobs")

    def submit(index: int) -> requests.Response:
        return requests.post(base + "/v1/jobs", files=_files(image_bytes(color=(index, 0, 0))), timeout=30)

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(submit, range(16)))
    assert [r.status_code for r in responses] == [202] * 16
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 16
    assert client.zcard("atelier:jobs") == before + 16
    queued = {message["headers"]["id"] for message in queued_messages(client, INTERACTIVE_QUEUE)}
    assert queued == ids


def test_health_and_docs_over_http(served):
    base, _, _ = served
    assert requests.get(base + "/healthz", timeout=5).json() == {"status": "ok"}
    assert requests.get(base + "/readyz", timeout=5).json()["checks"] == {"redis": "ok", "storage": "ok"}
    assert "/v1/jobs" in requests.get(base + "/v1/openapi.json", timeout=5).json()["paths"]
