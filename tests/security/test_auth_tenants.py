"""API keys and tenants: 401 without a valid key, keys stored hashed, every job and batch visible to its tenant only."""

from __future__ import annotations

import io
import json
import os

import pytest
from click.testing import CliRunner

from api.app import create_app
from services.cli.main import cli
from shared.settings import Settings

from .conftest import SecureApi, jpeg_bytes


def test_v1_routes_need_a_key_and_public_routes_do_not(secure_api: SecureApi):
    for method, path in [("get", "/v1/jobs"), ("get", "/v1/jobs/abc"), ("post", "/v1/jobs/abc/cancel"),
                         ("get", "/v1/batches/abc"), ("post", "/v1/batches")]:
        response = getattr(secure_api.client, method)(path)
        assert response.status_code == 401, path
        assert response.get_json()["error"]["code"] == "missing_api_key"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    for path in ("/healthz", "/readyz", "/v1/openapi.json"):
        assert secure_api.client.get(path).status_code == 200, path


@pytest.mark.parametrize("header, code", [
    ("Bearer atl_0123456789abcdef_not-a-real-secret", "invalid_api_key"),
    ("Bearer nonsense", "invalid_api_key"),
    ("Basic dXNlcjpwYXNz", "bad_authorization"),
    ("Bearer ", "bad_authorization"),
])
def test_bad_keys_are_401_json_and_never_echoed(secure_api: SecureApi, header: str, code: str):
    response = secure_api.client.get("/v1/jobs", headers={"Authorization": header})
    assert response.status_code == 401
    error = response.get_json()["error"]
    assert error["code"] == code and error["field"] == "Authorization"
    assert header.split(" ", 1)[-1].strip() not in error["message"] or not header.split(" ", 1)[-1].strip()


def test_a_key_works_until_revoked(secure_api: SecureApi):
    key = secure_api.keys.create("acme")
    assert secure_api.client.get("/v1/jobs", headers=secure_api.headers(key.token)).status_code == 200
    secure_api.keys.revoke(key.key_id)
    response = secure_api.client.get("/v1/jobs", headers=secure_api.headers(key.token))
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "invalid_api_key"


def test_keys_are_stored_hashed(secure_api: SecureApi):
    key = secure_api.keys.create("acme")
    secret = key.token.split("_", 2)[2]  # atl_<key id>_<secret>; the secret itself may contain "_"
    dump = b"".join(secure_api.redis.dump(k) or b"" for k in secure_api.redis.scan_iter("*"))
    dump += b"".join(k for k in secure_api.redis.scan_iter("*"))
    assert secret.encode() not in dump and key.token.encode() not in dump
    assert "sha256" not in secure_api.keys.list()[0]


def test_jobs_are_visible_to_their_tenant_only(secure_api: SecureApi):
    alice, bob = secure_api.keys.create("alice").token, secure_api.keys.create("bob").token
    created = secure_api.submit(alice)
    assert created.status_code == 202, created.get_json()
    job_id = created.get_json()["id"]
    assert json.loads(secure_api.redis.get(f"atelier:job:{job_id}"))["tenant"] == "alice"
    own = secure_api.client.get(f"/v1/jobs/{job_id}", headers=secure_api.headers(alice))
    assert own.status_code == 200
    for method, path in [("get", f"/v1/jobs/{job_id}"), ("post", f"/v1/jobs/{job_id}/cancel"),
                         ("get", f"/v1/jobs/{job_id}/result"), ("get", f"/v1/jobs/{job_id}/previews/1")]:
        response = getattr(secure_api.client, method)(path, headers=secure_api.headers(bob))
        assert response.status_code == 404, path
        # indistinguishable from an id that does not exist
        missing = getattr(secure_api.client, method)(path.replace(job_id, "f" * 32), headers=secure_api.headers(bob))
        assert response.get_json()["error"]["code"] == missing.get_json()["error"]["code"]
    assert json.loads(secure_api.redis.get(f"atelier:job:{job_id}"))["cancel_requested"] is False
    bob_list = secure_api.client.get("/v1/jobs", headers=secure_api.headers(bob)).get_json()
    alice_list = secure_api.client.get("/v1/jobs?status=queued", headers=secure_api.headers(alice)).get_json()
    assert bob_list["jobs"] == [] and [job["id"] for job in alice_list["jobs"]] == [job_id]


def test_batches_are_visible_to_their_tenant_only(secure_api: SecureApi):
    alice, bob = secure_api.keys.create("alice").token, secure_api.keys.create("bob").token
    data = {"style": (io.BytesIO(jpeg_bytes()), "s.jpg"), "content": (io.BytesIO(jpeg_bytes(color=(1, 2, 3))), "a.jpg"),
            "params": '{"size": 32}'}
    created = secure_api.client.post("/v1/batches", data=data, content_type="multipart/form-data",
                                     headers=secure_api.headers(alice))
    assert created.status_code == 201, created.get_json()
    batch = created.get_json()
    child_id = batch["items"][0]["job_id"]
    assert json.loads(secure_api.redis.get(f"atelier:job:{child_id}"))["tenant"] == "alice"
    for method, path in [("get", f"/v1/batches/{batch['id']}"), ("post", f"/v1/batches/{batch['id']}/cancel"),
                         ("get", f"/v1/batches/{batch['id']}/results.zip"), ("get", f"/v1/jobs/{child_id}")]:
        assert getattr(secure_api.client, method)(path, headers=secure_api.headers(bob)).status_code == 404, path
    more = {"content": (io.BytesIO(jpeg_bytes(color=(9, 9, 9))), "b.jpg")}
    added = secure_api.client.post(f"/v1/batches/{batch['id']}/items", data=more, content_type="multipart/form-data",
                                   headers=secure_api.headers(bob))
    assert added.status_code == 404
    assert secure_api.client.get(f"/v1/batches/{batch['id']}", headers=secure_api.headers(alice)).status_code == 200


def test_auth_off_puts_everyone_in_the_default_tenant(make_secure_api):
    api = make_secure_api(auth="off")
    created = api.submit(None)
    assert created.status_code == 202
    assert json.loads(api.redis.get(f"atelier:job:{created.get_json()['id']}"))["tenant"] == "default"


def test_redis_down_with_auth_on_is_503_json(tmp_path):
    app = create_app(Settings(redis_url="redis://127.0.0.1:1/0", storage=f"file://{tmp_path}"))
    response = app.test_client().get("/v1/jobs", headers={"Authorization": "Bearer atl_x_y"})
    assert response.status_code == 503 and response.get_json()["error"]["code"] == "redis_unavailable"


def test_keys_cli_create_list_revoke(isolated_redis_url: str, secure_api: SecureApi):
    runner = CliRunner()
    env = {"ATELIER_REDIS_URL": isolated_redis_url}
    created = runner.invoke(cli, ["keys", "create", "--tenant", "acme", "--json"], env=env)
    assert created.exit_code == 0, created.output
    new = json.loads(created.output.strip().splitlines()[-1])
    assert new["tenant"] == "acme" and new["key"].startswith("atl_")
    assert secure_api.client.get("/v1/jobs", headers=secure_api.headers(new["key"])).status_code == 200
    listed = runner.invoke(cli, ["keys", "list"], env=env)
    assert new["key_id"] in listed.output and new["key"] not in listed.output
    revoked = runner.invoke(cli, ["keys", "revoke", new["key_id"]], env=env)
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    assert secure_api.client.get("/v1/jobs", headers=secure_api.headers(new["key"])).status_code == 401
    bad = runner.invoke(cli, ["keys", "create", "--tenant", "Not A Name"], env=env)
    assert bad.exit_code != 0 and "tenant=" in bad.output
    unknown = runner.invoke(cli, ["keys", "revoke", "0123456789abcdef"], env=env)
    assert unknown.exit_code != 0 and "no API key" in unknown.output


def test_auth_is_on_by_default_and_off_only_in_the_embedded_dev_stack(tmp_path):
    from services.cli.dev import DevStack

    assert Settings().auth == "on" and Settings.from_env({}).auth == "on"
    saved = os.environ.pop("ATELIER_AUTH", None)
    try:
        assert DevStack(port=1, var_dir=tmp_path)._env()["ATELIER_AUTH"] == "off"
        os.environ["ATELIER_AUTH"] = "on"  # `ATELIER_AUTH=on atelier dev` keeps it on
        assert DevStack(port=1, var_dir=tmp_path)._env()["ATELIER_AUTH"] == "on"
    finally:
        os.environ.pop("ATELIER_AUTH", None)
        if saved is not None:
            os.environ["ATELIER_AUTH"] = saved
    with pytest.raises(Exception, match="ATELIER_AUTH"):
        Settings.from_env({"ATELIER_AUTH": "maybe"})
