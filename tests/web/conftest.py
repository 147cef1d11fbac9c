"""Fixtures of the studio's browser tests: one headless Chromium per test module (tests/web/studio_browser.py),
and the API app served over real HTTP by werkzeug in a thread, on the session's real Redis and a local storage
directory (the page tests need no worker: they stop at the API's answers; the end-to-end test uses the shared
``local_stack``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from studio_browser import missing_browser, start_chromium
from werkzeug.serving import make_server

from api.app import create_app
from services.devstack import free_port
from services.registry import JobRegistry
from shared.settings import Settings


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(downloads: Path) -> Iterator[Any]:
    problem = missing_browser()
    if problem:
        pytest.fail(problem)  # never skipped: CI and `make test` install the browser
    driver = start_chromium(downloads)
    yield driver
    driver.quit()


@dataclass
class ServedApi:
    url: str
    settings: Settings
    registry: JobRegistry
    redis: redis.Redis


@pytest.fixture
def serve_api(isolated_redis_url: str, tmp_path: Path) -> Iterator[Callable[..., ServedApi]]:
    servers: list[tuple[Any, threading.Thread, redis.Redis]] = []

    def serve(**overrides: Any) -> ServedApi:
        settings = Settings(redis_url=isolated_redis_url, storage=f"file://{tmp_path / 'storage'}",
                            auth="off").replace(**overrides)
        app = create_app(settings)
        port = free_port()
        server = make_server("127.0.0.1", port, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, name="web-test-api", daemon=True)
        thread.start()
        client = redis.Redis.from_url(isolated_redis_url)
        servers.append((server, thread, client))
        return ServedApi(f"http://127.0.0.1:{port}", settings, JobRegistry(client), client)

    yield serve
    for server, thread, client in servers:
        server.shutdown()
        thread.join(10)
        client.close()
