"""Session fixtures shared by every test package: a real Redis and a real S3 endpoint, started by the tests.

- ``redis_url``: our own ``redis-server`` on a free port (data in a temporary directory), database 0, for the whole
  session. Never the system Redis.
- ``isolated_redis_url``: the same server, database 1, flushed before each test that asks for it (we started this
  server, so flushing it is ours to do). Tests that count records or messages use it.
- ``s3_endpoint``: a moto S3 server over real HTTP on a free port; the AWS_* credential variables are set for the
  session so boto3 (in this process and in subprocesses that inherit the environment) can sign requests.
- ``s3_bucket``: a fresh bucket name per test (created on first use by ``S3Storage``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis

from services.devstack import MotoS3Server, RedisServer


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def isolated_redis_url(redis_server: RedisServer) -> str:
    url = f"redis://127.0.0.1:{redis_server.port}/1"
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()
    return url


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    saved = {name: os.environ.get(name) for name in MotoS3Server.aws_env}
    os.environ.update(MotoS3Server.aws_env)
    server = MotoS3Server().start()
    try:
        yield server.endpoint_url
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def s3_bucket() -> str:
    return "atelier-test-" + uuid.uuid4().hex[:12]
