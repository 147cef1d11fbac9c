"""Security test fixtures: the Flask app with authentication ON (the production default) on a real Redis.

``secure_api`` gives a test client, the app's settings, its Redis client and a ``KeyStore`` to mint keys with;
``make_secure_api(**overrides)`` builds one with other settings (rate limits, queued cap).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from PIL import Image

from api.app import create_app
from services.storage import Storage, open_storage
from services.tenants import KeyStore
from shared.settings import Settings


def jpeg_bytes(size: tuple[int, int] = (40, 32), color: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "JPEG")
    return buffer.getvalue()


@dataclass
class SecureApi:
    client: FlaskClient
    settings: Settings
    redis: redis.Redis
    keys: KeyStore
    storage: Storage

    def headers(self, token: str | None, **extra: str) -> dict[str, str]:
        return ({"Authorization": f"Bearer {token}"} if token else {}) | extra

    def submit(self, token: str | None, *, content: bytes | None = None, params: str = '{"size": 32}',
               headers: dict[str, str] | None = None, content_name: str = "c.jpg") -> Any:
        data = {"content": (io.BytesIO(content if content is not None else jpeg_bytes()), content_name),
                "style": (io.BytesIO(jpeg_bytes(color=(20, 20, 220))), "s.jpg"), "params": params}
        return self.client.post("/v1/jobs", data=data, content_type="multipart/form-data",
                                headers=self.headers(token) | (headers or {}))

    def job_records(self) -> list[str]:
        return sorted(key.decode() for key in self.redis.scan_iter("atelier:job:*"))


@pytest.fixture
def make_secure_api(isolated_redis_url: str, tmp_path: Any) -> Iterator[Callable[..., SecureApi]]:
    clients: list[redis.Redis] = []

    def build(**overrides: Any) -> SecureApi:
        settings = Settings(redis_url=isolated_redis_url, storage=f"file://{tmp_path / 'storage'}").replace(**overrides)
        assert settings.auth == "on" or "auth" in overrides  # the default everywhere but `atelier dev`
        app = create_app(settings)
        app.config["TESTING"] = True
        client = redis.Redis.from_url(isolated_redis_url)
        clients.append(client)
        return SecureApi(app.test_client(), settings, client, KeyStore(client), open_storage(settings))

    yield build
    for client in clients:
        client.close()


@pytest.fixture
def secure_api(make_secure_api: Callable[..., SecureApi]) -> SecureApi:
    return make_secure_api()
