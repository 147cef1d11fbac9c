"""Per-tenant rate limit and queued-jobs cap (429 + Retry-After), and Idempotency-Key on job and batch creation."""

from __future__ import annotations

import io
import json

from .conftest import SecureApi, jpeg_bytes


def test_rate_limit_is_per_tenant_and_says_when_to_retry(make_secure_api):
    api: SecureApi = make_secure_api(rate_limit_per_min=3, max_queued_jobs=0)
    alice, bob = api.keys.create("alice").token, api.keys.create("bob").token
    codes = [api.submit(alice, content=jpeg_bytes(color=(i, 0, 0))).status_code for i in range(3)]
    assert codes == [202, 202, 202]
    refused = api.submit(alice, content=jpeg_bytes(color=(99, 0, 0)))
    assert refused.status_code == 429
    assert refused.get_json()["error"]["code"] == "rate_limited"
    assert "3 per minute" in refused.get_json()["error"]["message"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert len(api.job_records()) == 3  # the refused request stored nothing
    assert api.submit(bob).status_code == 202  # another tenant has its own budget


def test_queued_cap_counts_the_tenants_waiting_jobs(make_secure_api):
    api: SecureApi = make_secure_api(rate_limit_per_min=0, max_queued_jobs=2)
    alice, bob = api.keys.create("alice").token, api.keys.create("bob").token
    first = [api.submit(alice, content=jpeg_bytes(color=(i, 1, 1))) for i in range(2)]
    assert [r.status_code for r in first] == [202, 202]
    refused = api.submit(alice, content=jpeg_bytes(color=(50, 1, 1)))
    assert refused.status_code == 429 and refused.get_json()["error"]["code"] == "too_many_queued_jobs"
    assert int(refused.headers["Retry-After"]) >= 1
    assert api.submit(bob).status_code == 202
    # once one of alice's jobs leaves the queue, she may submit again
    job_id = first[0].get_json()["id"]
    assert api.client.post(f"/v1/jobs/{job_id}/cancel", headers=api.headers(alice)).status_code == 200
    assert api.submit(alice, content=jpeg_bytes(color=(51, 1, 1))).status_code == 202


def test_same_idempotency_key_and_body_give_the_same_job(secure_api: SecureApi):
    token = secure_api.keys.create("alice").token
    key = {"Idempotency-Key": "7d0c2a3e-first"}
    first = secure_api.submit(token, headers=key)
    again = secure_api.submit(token, headers=key)
    assert first.status_code == 202 and again.status_code == 200
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true" and again.headers["Location"] == first.headers["Location"]
    assert len(secure_api.job_records()) == 1
    # without the header, the same body is a new job
    assert secure_api.submit(token).get_json()["id"] != first.get_json()["id"]


def test_same_idempotency_key_with_another_body_is_422(secure_api: SecureApi):
    token = secure_api.keys.create("alice").token
    key = {"Idempotency-Key": "k-1"}
    assert secure_api.submit(token, headers=key, params='{"size": 32}').status_code == 202
    other_params = secure_api.submit(token, headers=key, params='{"size": 48}')
    other_image = secure_api.submit(token, headers=key, content=jpeg_bytes(color=(0, 255, 0)))
    for response in (other_params, other_image):
        assert response.status_code == 422
        assert response.get_json()["error"]["code"] == "idempotency_key_reused"
    assert len(secure_api.job_records()) == 1


def test_idempotency_keys_are_per_tenant(secure_api: SecureApi):
    alice, bob = secure_api.keys.create("alice").token, secure_api.keys.create("bob").token
    key = {"Idempotency-Key": "shared-name"}
    a = secure_api.submit(alice, headers=key).get_json()["id"]
    b = secure_api.submit(bob, headers=key, params='{"size": 64}')
    assert b.status_code == 202 and b.get_json()["id"] != a


def test_a_refused_request_does_not_burn_its_idempotency_key(make_secure_api):
    api: SecureApi = make_secure_api(rate_limit_per_min=1, max_queued_jobs=0)
    token = api.keys.create("alice").token
    assert api.submit(token).status_code == 202
    key = {"Idempotency-Key": "after-429"}
    assert api.submit(token, headers=key, params='{"size": 40}').status_code == 429
    api.redis.delete(*api.redis.keys("atelier:rate:*"))  # the next minute
    assert api.submit(token, headers=key, params='{"size": 40}').status_code == 202


def test_bad_idempotency_key_is_400(secure_api: SecureApi):
    token = secure_api.keys.create("alice").token
    response = secure_api.submit(token, headers={"Idempotency-Key": "x" * 300})
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "bad_idempotency_key"
    assert secure_api.job_records() == []


def test_batch_creation_is_idempotent(secure_api: SecureApi):
    token = secure_api.keys.create("alice").token

    def create(color: tuple[int, int, int]):
        data = {"style": (io.BytesIO(jpeg_bytes()), "s.jpg"), "content": (io.BytesIO(jpeg_bytes(color=color)), "a.jpg"),
                "params": '{"size": 32}'}
        return secure_api.client.post("/v1/batches", data=data, content_type="multipart/form-data",
                                      headers=secure_api.headers(token, **{"Idempotency-Key": "batch-1"}))

    first, again, other = create((1, 2, 3)), create((1, 2, 3)), create((4, 5, 6))
    assert first.status_code == 201 and again.status_code == 200
    assert again.get_json()["id"] == first.get_json()["id"]
    assert other.status_code == 422 and other.get_json()["error"]["code"] == "idempotency_key_reused"
    assert len(secure_api.job_records()) == 1  # one child job, created once
    assert json.loads(secure_api.redis.get(f"atelier:batch:{first.get_json()['id']}"))["tenant"] == "alice"
