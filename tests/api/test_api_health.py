"""/healthz and /readyz: readiness names the dependency that is down."""

from __future__ import annotations

import pytest

from services.devstack import free_port
from services.registry import JobRegistry
from services.storage import LocalStorage, S3Storage

pytestmark = pytest.mark.integration


def test_healthz_and_readyz_when_all_is_up(api):
    assert api.client.get("/healthz").json == {"status": "ok"}
    response = api.client.get("/readyz")
    assert response.status_code == 200
    assert response.json["checks"] == {"redis": "ok", "storage": "ok"}


def test_readyz_names_redis_when_redis_is_down(make_harness):
    closed = f"redis://127.0.0.1:{free_port()}/0"
    api = make_harness(registry=JobRegistry.from_url(closed))
    response = api.client.get("/readyz")
    assert response.status_code == 503
    assert response.json["error"]["code"] == "redis_unavailable"
    assert "redis" in response.json["error"]["message"].lower()
    assert response.json["checks"]["storage"] == "ok" and response.json["checks"]["redis"] != "ok"
    assert api.client.get("/healthz").status_code == 200  # alive, just not ready


def test_readyz_names_storage_when_local_storage_is_unusable(make_harness, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    api = make_harness(storage=LocalStorage(blocker / "storage"))
    response = api.client.get("/readyz")
    assert response.status_code == 503
    assert response.json["error"]["code"] == "storage_unavailable"
    assert str(blocker) in response.json["error"]["message"]
    assert response.json["checks"]["redis"] == "ok"


def test_readyz_names_storage_when_s3_is_unreachable(make_harness, s3_endpoint):
    endpoint = f"http://127.0.0.1:{free_port()}"
    api = make_harness(storage=S3Storage("atelier-down", endpoint))
    response = api.client.get("/readyz")
    assert response.status_code == 503
    assert response.json["error"]["code"] == "storage_unavailable"
    assert endpoint in response.json["error"]["message"]


def test_readyz_names_both_when_both_are_down(make_harness, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    api = make_harness(registry=JobRegistry.from_url(f"redis://127.0.0.1:{free_port()}/0"),
                       storage=LocalStorage(blocker / "storage"))
    response = api.client.get("/readyz")
    assert response.status_code == 503 and response.json["error"]["code"] == "dependencies_unavailable"
    assert "redis" in response.json["error"]["message"] and "storage" in response.json["error"]["message"]
