"""Fixtures for the batch tests: the API on a real Redis (database flushed per test) with local storage and a real
Celery producer (messages land in Redis lists that nobody consumes), and tiny image folders."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import redis
from flask.testing import FlaskClient
from PIL import Image

from api.app import create_app
from services.registry import JobRegistry
from services.storage import LocalStorage, open_storage
from shared.settings import Settings


def image_bytes(seed: int, size: tuple[int, int] = (40, 30), fmt: str = "PNG") -> bytes:
    """A small image with random blocks (distinct per seed, so each has its own sha256)."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, size=(size[1] // 10 + 1, size[0] // 10 + 1, 3), dtype=np.uint8)
    pixels = np.kron(blocks, np.ones((10, 10, 1), np.uint8))[: size[1], : size[0]]
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


@dataclass
class BatchApi:
    client: FlaskClient
    settings: Settings
    registry: JobRegistry
    storage: LocalStorage
    redis: redis.Redis

    def create(self, styles: list[bytes] | None = None, params: str | None = None,
               contents: list[tuple[str, bytes]] | None = None):
        data: dict = {"style": [(io.BytesIO(b), f"style{i}.png") for i, b in enumerate(styles or [image_bytes(99)])]}
        if params is not None:
            data["params"] = params
        if contents:
            data["content"] = [(io.BytesIO(b), name) for name, b in contents]
        return self.client.post("/v1/batches", data=data, content_type="multipart/form-data")

    def add(self, batch_id: str, contents: list[tuple[str, bytes]]):
        data = {"content": [(io.BytesIO(b), name) for name, b in contents]}
        return self.client.post(f"/v1/batches/{batch_id}/items", data=data, content_type="multipart/form-data")

    def leftovers(self) -> dict:
        """Everything stored: Redis keys (ours and Celery's queues) and objects."""
        keys = sorted(k.decode() for k in self.redis.keys("*") if not k.startswith(b"_kombu"))
        return {"redis": keys, "objects": self.storage.list_keys()}


@pytest.fixture
def batch_api(isolated_redis_url: str, tmp_path: Path) -> Iterator[BatchApi]:
    settings = Settings(redis_url=isolated_redis_url, storage=f"file://{tmp_path / 'storage'}", auth="off")
    app = create_app(settings)
    app.config["TESTING"] = True
    client = redis.Redis.from_url(isolated_redis_url)
    try:
        yield BatchApi(app.test_client(), settings, JobRegistry.from_url(isolated_redis_url), open_storage(settings),
                       client)
    finally:
        client.close()
