"""The webhook fields at the door and the webhook routes, on the Flask app with a real Redis and local storage."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
import redis
from PIL import Image

from api.app import create_app
from services.registry import JobRegistry
from services.webhooks.secrets import SecretStore
from shared.settings import Settings


def _image(color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise((48, 40), 50).convert("RGB").save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def api(isolated_redis_url: str, tmp_path: Any) -> Any:
    def build(**overrides: Any) -> Any:
        settings = Settings(redis_url=isolated_redis_url, storage=f"file://{tmp_path / 'storage'}",
                            **{"auth": "off", **overrides})
        app = create_app(settings)
        app.config["TESTING"] = True
        return app.test_client()

    return build


def _submit(client: Any, **fields: str) -> Any:
    data = {"content": (io.BytesIO(_image((200, 0, 0))), "c.png"), "style": (io.BytesIO(_image((0, 0, 200))), "s.png"),
            "params": json.dumps({"size": 32, "iterations": 1}), **fields}
    return client.post("/v1/jobs", data=data, content_type="multipart/form-data")


def _nothing_created(redis_url: str, tmp_path: Any) -> bool:
    records, _ = JobRegistry.from_url(redis_url).list()
    stored = list((tmp_path / "storage").rglob("*")) if (tmp_path / "storage").exists() else []
    return not records and not [p for p in stored if p.is_file()]


@pytest.mark.parametrize(("url", "code"), [
    ("http://10.1.2.3/hook", "webhook_address_refused"),
    ("http://127.0.0.1:9/hook", "webhook_address_refused"),
    ("http://169.254.169.254/latest/meta-data", "webhook_address_refused"),
    ("http://[::1]/hook", "webhook_address_refused"),
    ("http://[::ffff:192.168.0.1]/hook", "webhook_address_refused"),
    ("ftp://8.8.8.8/hook", "bad_webhook_url"),
    ("http://user:pw@8.8.8.8/hook", "bad_webhook_url"),
    ("not a url", "bad_webhook_url"),
])
def test_refused_webhooks_are_422_and_leave_nothing_behind(api, isolated_redis_url, tmp_path, url, code):
    response = _submit(api(), webhook=url)
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == code and error["field"] == "webhook"
    assert url[:30] in error["message"]
    assert _nothing_created(isolated_redis_url, tmp_path)


def test_allowlisted_webhook_is_stored_on_the_record_with_its_events(api, isolated_redis_url):
    client = api(webhook_allowlist="127.0.0.1")
    response = _submit(client, webhook="http://127.0.0.1:9/hook", webhook_events="failed, succeeded")
    assert response.status_code == 202, response.get_json()
    job_id = response.get_json()["id"]
    record = JobRegistry.from_url(isolated_redis_url).require(job_id)
    assert record.webhook == {"url": "http://127.0.0.1:9/hook", "events": ["succeeded", "failed"]}
    log = client.get(f"/v1/jobs/{job_id}/webhooks").get_json()
    assert log["webhook"] == record.webhook and log["attempts"] == []
    assert log["retry_schedule_s"][:3] == [5.0, 20.0, 80.0]


def test_public_address_needs_no_allowlist_and_events_default_to_every_end(api, isolated_redis_url):
    response = _submit(api(), webhook="https://93.184.216.34/hook?token=x", webhook_events='["canceled"]')
    assert response.status_code == 202
    record = JobRegistry.from_url(isolated_redis_url).require(response.get_json()["id"])
    assert record.webhook["events"] == ["canceled"]
    response = _submit(api(), webhook="https://93.184.216.34/other")
    assert JobRegistry.from_url(isolated_redis_url).require(response.get_json()["id"]).webhook["events"] == [
        "succeeded", "failed", "canceled"]


@pytest.mark.parametrize(("fields", "status", "code"), [
    ({"webhook": "https://93.184.216.34/h", "webhook_events": "succeeded,running"}, 422, "bad_webhook_events"),
    ({"webhook": "https://93.184.216.34/h", "webhook_events": "[1]"}, 400, "bad_webhook_events"),
    ({"webhook_events": "succeeded"}, 400, "webhook_events_without_webhook"),
])
def test_bad_webhook_events(api, isolated_redis_url, tmp_path, fields, status, code):
    response = _submit(api(), **fields)
    assert response.status_code == status and response.get_json()["error"]["code"] == code
    assert _nothing_created(isolated_redis_url, tmp_path)


def test_batch_takes_batch_events_only(api):
    client = api()
    style = {"style": (io.BytesIO(_image((0, 0, 200))), "s.png")}
    ok = client.post("/v1/batches", data={**style, "webhook": "https://93.184.216.34/b", "webhook_events": "finished"},
                     content_type="multipart/form-data")
    assert ok.status_code == 201, ok.get_json()
    log = client.get(f"/v1/batches/{ok.get_json()['id']}/webhooks").get_json()
    assert log["webhook"] == {"url": "https://93.184.216.34/b", "events": ["finished"]}
    style = {"style": (io.BytesIO(_image((0, 0, 200))), "s.png")}
    bad = client.post("/v1/batches", data={**style, "webhook": "https://93.184.216.34/b",
                                           "webhook_events": "succeeded"}, content_type="multipart/form-data")
    assert bad.status_code == 422 and "finished, canceled" in bad.get_json()["error"]["message"]


def test_secret_is_stable_until_rotated_and_the_old_one_signs_during_the_grace(api, isolated_redis_url):
    client = api()
    first = client.get("/v1/webhooks/secret").get_json()["secret"]
    assert first.startswith("whsec_") and client.get("/v1/webhooks/secret").get_json()["secret"] == first
    rotated = client.post("/v1/webhooks/secret/rotate").get_json()
    assert rotated["secret"] != first and client.get("/v1/webhooks/secret").get_json()["secret"] == rotated["secret"]
    store = SecretStore(redis.Redis.from_url(isolated_redis_url), grace_s=86400)
    assert store.signing_secrets("default") == [rotated["secret"], first]
    assert store.signing_secrets("default", now_s=rotated["previous_valid_until_s"] + 1) == [rotated["secret"]]


def test_log_of_an_unknown_job_is_404(api):
    response = api().get("/v1/jobs/nope/webhooks")
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "job_not_found"


def test_video_log_route_and_payload(api, isolated_redis_url):
    from services.webhooks.payloads import job_event
    from shared.jobs import JobRecord, JobStatus, utc_now_iso

    registry = JobRegistry.from_url(isolated_redis_url)
    record = JobRecord(id="v" * 32, kind="video", webhook={"url": "https://93.184.216.34/v", "events": ["failed"]})
    registry.create(record)
    log = api().get(f"/v1/videos/{record.id}/webhooks").get_json()
    assert log["webhook"] == record.webhook and log["attempts"] == []
    record.status, record.finished_at = JobStatus.FAILED.value, utc_now_iso()
    event_type, body = job_event(record)
    payload = json.loads(body)
    assert event_type == payload["type"] == "video.failed"
    assert payload["data"]["links"]["self"] == f"/v1/videos/{record.id}" and payload["timestamp"] == record.finished_at


def test_each_tenant_has_its_own_secret(api, isolated_redis_url):
    from services.tenants import KeyStore

    keys = KeyStore(redis.Redis.from_url(isolated_redis_url))
    client = api(auth="on")
    secrets = []
    for tenant in ("acme", "globex"):
        token = keys.create(tenant).token
        answer = client.get("/v1/webhooks/secret", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200
        secrets.append(answer.get_json()["secret"])
    assert secrets[0] != secrets[1]
    assert client.get("/v1/webhooks/secret").status_code == 401
