"""Fixtures for the worker's unit tests: a real registry on the tests' own Redis, local storage in a temporary
folder, and a stand-in engine with the engine's interface (these tests are about the worker layer; the real engine
runs in tests/e2e)."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import redis
from PIL import Image

from services.registry import JobRegistry
from services.storage import LocalStorage
from shared.jobs import input_key, new_job_id, new_job_record
from shared.settings import Settings


@dataclass
class FakeProgress:
    iteration: int
    iterations: int
    losses: dict[str, float]
    elapsed_s: float
    image: np.ndarray
    preview_calls: int = 0

    def preview(self) -> np.ndarray:
        self.preview_calls += 1
        return self.image


@dataclass
class FakeResult:
    image: np.ndarray
    metrics: dict[str, Any]
    cancelled: bool = False


@dataclass
class FakeEngine:
    """Calls ``on_progress`` every ``progress_every`` iterations like the engine, honours a True return (cancel),
    and returns an image whose long side is ``params.size``. ``during`` runs at each report (to cancel, to fail)."""

    calls: int = 0
    during: Callable[[int], None] | None = None
    seconds_per_iteration: float = 0.0
    reports: list[int] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)  # the engine keywords of the last call

    def __call__(self, content: np.ndarray, styles: list[np.ndarray], params: Any, on_progress: Any = None,
                 **kwargs: Any) -> Any:
        self.calls += 1
        self.kwargs = kwargs
        h, w = content.shape[:2]
        scale = params.size / max(h, w)
        out_h, out_w = max(1, round(h * scale)), max(1, round(w * scale))
        image = np.full((out_h, out_w, 3), 128, np.uint8)
        started = time.monotonic()
        cancelled = False
        done = 0
        for done in range(params.progress_every, params.iterations + params.progress_every, params.progress_every):
            done = min(done, params.iterations)
            time.sleep(self.seconds_per_iteration * params.progress_every)
            if self.during is not None:
                self.during(done)
            self.reports.append(done)
            losses = {"content": 1.0, "style": 2.0, "tv": 0.5, "total": 3.5}
            progress = FakeProgress(done, params.iterations, losses, time.monotonic() - started, image)
            if on_progress is not None and on_progress(progress):
                cancelled = True
                break
        metrics = {"backbone": params.backbone, "iterations_run": done, "seconds": time.monotonic() - started,
                   "backbone_cached": self.calls > 1}
        return FakeResult(image=image, metrics=metrics, cancelled=cancelled)


def png_bytes(width: int, height: int, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def registry(isolated_redis_url: str) -> Iterator[JobRegistry]:
    client = redis.Redis.from_url(isolated_redis_url)
    yield JobRegistry(client)
    client.close()


@pytest.fixture
def storage(tmp_path: Any) -> LocalStorage:
    return LocalStorage(tmp_path / "storage")


@pytest.fixture
def settings(tmp_path: Any, isolated_redis_url: str) -> Settings:
    return Settings(redis_url=isolated_redis_url, storage="file://" + str(tmp_path / "storage"),
                    progress_min_interval_s=0.0, preview_every=20, max_deliveries=3)


@pytest.fixture
def make_job(registry: JobRegistry, storage: LocalStorage) -> Callable[..., str]:
    """Store a content and a style image and create a queued record; returns the job id."""

    def make(**params: Any) -> str:
        content, style = png_bytes(40, 20), png_bytes(16, 16, (10, 10, 240))
        import hashlib

        keys = []
        for data in (content, style):
            key = input_key(hashlib.sha256(data).hexdigest(), "PNG")
            storage.put(key, data, content_type="image/png")
            keys.append(key)
        values = {"size": 32, "iterations": 40, "progress_every": 10} | params
        job_id = new_job_id()
        registry.create(new_job_record(job_id, params=values, content_key=keys[0], style_keys=[keys[1]],
                                       content_name="c.png", style_names=["s.png"], queue="interactive"))
        return job_id

    return make
