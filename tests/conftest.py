"""Session fixtures shared by every test package: a real Redis and a real S3 endpoint, started by the tests.

- ``redis_url``: our own ``redis-server`` on a free port (data in a temporary directory), database 0, for the whole
  session. Never the system Redis.
- ``isolated_redis_url``: the same server, database 1, flushed before each test that asks for it (we started this
  server, so flushing it is ours to do). Tests that count records or messages use it.
- ``s3_endpoint``: a moto S3 server over real HTTP on a free port; the AWS_* credential variables are set for the
  session so boto3 (in this process and in subprocesses that inherit the environment) can sign requests.
- ``s3_bucket``: a fresh bucket name per test (created on first use by ``S3Storage``).
- ``local_stack`` / ``s3_stack``: the real service (gunicorn API + one Celery worker with the real VGG19 weights, see
  tests/e2e/stack.py) over local storage / over S3, started once per session on first use and shared by every test
  package that needs one (tests/e2e, tests/batch). Under pytest-xdist every file that uses them runs in the one
  process that holds them (``pytest_xdist_make_scheduler`` below).

Markers (pyproject.toml): ``integration`` is added here to every test that uses the real Redis or S3 endpoint, and
``slow`` and ``integration`` to every test on a shared stack, so a new test is marked correctly without remembering
to. ``make test-fast`` runs ``-m "not slow"``.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from services.devstack import MotoS3Server, RedisServer

# A test using one of these talks to a real server (our own, cheap to start once per session): integration.
SERVICE_FIXTURES = frozenset({"redis_server", "redis_url", "isolated_redis_url", "s3_endpoint"})
# A test using one of these runs jobs on a real worker with the real weights: slow and integration, and under
# pytest-xdist in the one process that started the stacks.
STACK_FIXTURES = frozenset({"local_stack", "s3_stack"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & STACK_FIXTURES:
            item.add_marker(pytest.mark.slow)
        if names & (SERVICE_FIXTURES | STACK_FIXTURES) and not item.get_closest_marker("integration"):
            item.add_marker(pytest.mark.integration)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under pytest-xdist (``make test``): one work unit per test file, so module fixtures (a fault stack, a worker,
    a JAX run) start once and ordered tests keep their order; and one unit for every file that uses the shared
    stacks, so they start once. (xdist's own ``--dist loadgroup`` cannot do the second on pytest 9: it renames
    node ids through an attribute pytest no longer reads.) The controller sees node ids only, so a file is on the
    stacks when its source names one of STACK_FIXTURES."""
    from xdist.scheduler import LoadScopeScheduling

    class FileAndStackScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "shared-stacks" if _uses_stacks(config.rootpath / path) else path

    return FileAndStackScheduling(config, log)


@functools.cache
def _uses_stacks(path: Path) -> bool:
    try:
        source = path.read_text(errors="replace")
    except OSError:
        return False
    return any(name in source for name in STACK_FIXTURES)


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


@pytest.fixture(scope="session")
def local_stack(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from e2e.stack import start_stack, stop_stack

    stack = start_stack("local", redis_server, tmp_path_factory.mktemp("e2e-local"))
    yield stack
    stop_stack(stack)


@pytest.fixture(scope="session")
def s3_stack(redis_server: RedisServer, s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from e2e.stack import start_stack, stop_stack

    stack = start_stack("s3", redis_server, tmp_path_factory.mktemp("e2e-s3"), s3_endpoint)
    yield stack
    stop_stack(stack)
