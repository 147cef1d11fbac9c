"""Helpers for the API tests: sample image bytes, a PNG bomb, and the harness that reports leftovers."""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from typing import Any

import redis
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from services.registry import JobRegistry
from services.storage import Storage
from shared.settings import Settings
from shared.tasks import QUEUES


def image_bytes(fmt: str = "JPEG", size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (200, 40, 40),
                mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color if mode == "RGB" else None).save(buffer, format=fmt)
    return buffer.getvalue()


def png_bomb(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR claiming ``width`` x ``height`` pixels, with almost no data behind it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + chunk(b"IEND", b""))


@dataclass
class ApiHarness:
    app: Flask
    client: FlaskClient
    settings: Settings
    registry: JobRegistry
    storage: Storage
    redis: redis.Redis
    storage_kind: str

    def submit(self, content: bytes | None = None, styles: list[bytes] | None = None,
               params: str | None = None, **extra: Any) -> Any:
        data: dict[str, Any] = dict(extra)
        data["content"] = (io.BytesIO(image_bytes() if content is None else content), "content.jpg")
        style_list = [image_bytes(color=(20, 20, 220))] if styles is None else styles
        if style_list:
            data["style"] = [(io.BytesIO(blob), f"style{i}.jpg") for i, blob in enumerate(style_list)]
        if params is not None:
            data["params"] = params
        return self.client.post("/v1/jobs", data=data, content_type="multipart/form-data")

    def leftovers(self) -> dict[str, Any]:
        """What exists now: job records, stored objects and queued messages (all empty after a rejection)."""
        return {
            "records": sorted(key.decode() for key in self.redis.scan_iter("atelier:job:*")),
            "indexed": self.redis.zcard("atelier:jobs"),
            "objects": self.storage.list_keys(""),
            "messages": {queue: self.redis.llen(queue) for queue in QUEUES},
        }


NOTHING = {"records": [], "indexed": 0, "objects": [], "messages": {queue: 0 for queue in QUEUES}}


