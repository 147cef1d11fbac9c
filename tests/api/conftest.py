"""API test fixtures: the Flask app on a real Redis (database flushed per test) with local or S3 storage.

``storage_kind`` is parametrised over both storage backends, so every API test runs against a local directory and
against the moto S3 endpoint. ``ApiHarness.leftovers()`` reports what a request left behind: job records, stored
objects, queued messages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from api_helpers import ApiHarness

from api.app import create_app
from services.registry import JobRegistry
from services.storage import open_storage
from shared.settings import Settings


@pytest.fixture(params=["local", "s3"])
def storage_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_settings(isolated_redis_url: str, storage_kind: str, tmp_path: Any,
                  request: pytest.FixtureRequest) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        if storage_kind == "s3":
            endpoint = request.getfixturevalue("s3_endpoint")
            bucket = request.getfixturevalue("s3_bucket")
            base = Settings(
                redis_url=isolated_redis_url, storage=f"s3://{bucket}", s3_endpoint_url=endpoint, auth="off"
            )
        else:
            base = Settings(redis_url=isolated_redis_url, storage=f"file://{tmp_path / 'storage'}", auth="off")
        return base.replace(**overrides)

    return build


@pytest.fixture
def make_harness(make_settings: Callable[..., Settings], storage_kind: str) -> Iterator[Callable[..., ApiHarness]]:
    clients: list[redis.Redis] = []

    def build(settings: Settings | None = None, **app_kwargs: Any) -> ApiHarness:
        settings = settings or make_settings()
        app = create_app(settings, **app_kwargs)
        app.config["TESTING"] = True
        client = redis.Redis.from_url(settings.redis_url)
        clients.append(client)
        return ApiHarness(app=app, client=app.test_client(), settings=settings,
                          registry=JobRegistry.from_url(settings.redis_url), storage=open_storage(settings),
                          redis=client, storage_kind=storage_kind)

    yield build
    for client in clients:
        client.close()


@pytest.fixture
def api(make_harness: Callable[..., ApiHarness]) -> ApiHarness:
    return make_harness()
