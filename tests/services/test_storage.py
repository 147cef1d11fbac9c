"""Storage: the same tests run against LocalStorage (a directory) and S3Storage (moto server over real HTTP)."""

from __future__ import annotations

import os
import urllib.request

import boto3
import pytest

from services.devstack import free_port
from services.storage import LocalStorage, S3Storage, open_storage
from shared.errors import NotFound, Unavailable
from shared.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path):
    if request.param == "local":
        return LocalStorage(tmp_path / "objects")
    endpoint = request.getfixturevalue("s3_endpoint")
    return S3Storage(request.getfixturevalue("s3_bucket"), endpoint)


def test_put_get_roundtrip_and_overwrite(storage):
    storage.put("results/job1/result.png", b"first", content_type="image/png")
    assert storage.get("results/job1/result.png") == b"first"
    storage.put("results/job1/result.png", b"second")  # deterministic keys: a redelivery overwrites
    assert storage.get("results/job1/result.png") == b"second"


def test_missing_key_is_not_found(storage):
    with pytest.raises(NotFound) as info:
        storage.get("inputs/missing.png")
    assert "inputs/missing.png" in info.value.message
    assert storage.exists("inputs/missing.png") is False
    with pytest.raises(NotFound):
        storage.open_stream("inputs/missing.png")


def test_exists_and_delete(storage):
    storage.put("inputs/a.jpg", b"a")
    assert storage.exists("inputs/a.jpg")
    storage.delete("inputs/a.jpg")
    assert not storage.exists("inputs/a.jpg")
    storage.delete("inputs/a.jpg")  # deleting twice is fine


def test_stream_returns_all_bytes_in_chunks(storage):
    data = os.urandom(300_000)
    storage.put("results/big/result.png", data)
    chunks = list(storage.open_stream("results/big/result.png"))
    assert len(chunks) > 1 and b"".join(chunks) == data


def test_list_keys_by_prefix_sorted(storage):
    for key in ["results/j2/result.png", "inputs/b.png", "inputs/a.png", "results/j1/previews/000010.png"]:
        storage.put(key, b"x")
    assert storage.list_keys("inputs/") == ["inputs/a.png", "inputs/b.png"]
    assert storage.list_keys("results/j1/") == ["results/j1/previews/000010.png"]
    assert len(storage.list_keys("")) == 4


def test_check_passes_on_a_healthy_backend(storage):
    storage.check()


@pytest.mark.parametrize("key", ["../escape.png", "/etc/passwd", "inputs/../../x", "a//b", "space name.png", ""])
def test_keys_that_could_escape_are_refused(storage, key):
    with pytest.raises(ValueError):
        storage.put(key, b"x")


def test_presigned_url_is_none_locally_and_fetchable_on_s3(storage):
    storage.put("results/j/result.png", b"png bytes", content_type="image/png")
    url = storage.presigned_url("results/j/result.png", ttl_s=60)
    if isinstance(storage, LocalStorage):
        assert url is None
        return
    assert "X-Amz-Expires=60" in url
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"png bytes"
        assert response.headers["Content-Type"] == "image/png"


def test_local_writes_are_atomic_and_leave_no_temporary_files(tmp_path):
    storage = LocalStorage(tmp_path)
    storage.put("inputs/x.png", b"data")
    files = [p.name for p in tmp_path.rglob("*") if p.is_file()]
    assert files == ["x.png"]


def test_s3_bucket_is_created_when_missing(s3_endpoint, s3_bucket):
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    assert s3_bucket not in [b["Name"] for b in client.list_buckets()["Buckets"]]
    storage = S3Storage(s3_bucket, s3_endpoint)
    assert storage.list_keys("") == []  # listing a bucket that does not exist yet is empty, not an error
    storage.put("inputs/a.png", b"x")
    assert s3_bucket in [b["Name"] for b in client.list_buckets()["Buckets"]]
    S3Storage(s3_bucket, s3_endpoint).check()  # an existing bucket is fine too


def test_local_storage_unusable_is_unavailable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    storage = LocalStorage(blocker / "root")
    for call in (storage.check, lambda: storage.put("inputs/a.png", b"x")):
        with pytest.raises(Unavailable) as info:
            call()
        assert info.value.code == "storage_unavailable" and str(blocker) in info.value.message


def test_s3_unreachable_is_unavailable(s3_endpoint):
    endpoint = f"http://127.0.0.1:{free_port()}"
    storage = S3Storage("atelier-nowhere", endpoint)
    for call in (storage.check, lambda: storage.get("inputs/a.png"), lambda: storage.put("inputs/a.png", b"x")):
        with pytest.raises(Unavailable) as info:
            call()
        assert info.value.code == "storage_unavailable" and endpoint in info.value.message


def test_open_storage_follows_settings(tmp_path, s3_endpoint):
    local = open_storage(Settings(storage=f"file://{tmp_path}"))
    assert isinstance(local, LocalStorage) and local.root_dir == tmp_path.resolve()
    s3 = open_storage(Settings(storage="s3://my-bucket", s3_endpoint_url=s3_endpoint))
    assert isinstance(s3, S3Storage) and s3.bucket == "my-bucket" and s3.endpoint_url == s3_endpoint
