"""The service as it runs in production, natively: the API under gunicorn and one Celery worker.

A ``Stack`` is started with the very command lines of ``docker-compose.yml`` (``services/commands.py``), talking to
the tests' own Redis (``redis_server``) and to either a local storage directory or the moto S3 endpoint over HTTP.
The worker loads the real VGG19 ImageNet weights: ``ATELIER_TEST_RANDOM_WEIGHTS`` is removed from its environment.
``ATELIER_WEIGHTS_DIR`` and ``KERAS_HOME`` point at empty folders, so an Xception job fails for real with
``weights_missing``.

Each stack uses its own Redis database, so a local-storage worker never takes a job of the S3 stack. The session
fixtures ``local_stack`` and ``s3_stack`` (tests/conftest.py) start each stack once for the whole run and every test
package that needs a real stack shares them (tests/e2e, tests/batch): a worker start costs seconds of CPU.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import requests

from services.cli.dev import Child
from services.client import Client
from services.commands import api_argv, worker_argv
from services.devstack import RedisServer, free_port
from services.registry import JobRegistry
from services.storage import LocalStorage, S3Storage, Storage
from shared.celery_config import make_celery
from shared.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CONTENT = EXAMPLES / "content" / "chelsea_cat.jpg"
STYLE = EXAMPLES / "style" / "vangogh_starry_night.jpg"

READY_TIMEOUT_S = 240.0
DB_BY_KIND = {"local": 5, "s3": 6}


@dataclass
class Stack:
    kind: str
    api_url: str
    redis_url: str
    settings: Settings
    storage: Storage
    registry: JobRegistry
    client: Client
    api: Child
    worker: Child

    def queued_messages(self) -> int:
        return sum(int(self.registry.redis.llen(queue)) for queue in ("interactive", "bulk"))

    def logs(self) -> str:
        return f"--- api ---\n{self.api.log_tail(15)}\n--- worker ---\n{self.worker.log_tail(30)}"


def _service_env(settings_env: dict[str, str], tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATELIER_")}
    env.pop("ATELIER_TEST_RANDOM_WEIGHTS", None)  # real weights (the prefix filter removed it already)
    empty = tmp / "no-weights"
    empty.mkdir(exist_ok=True)
    env.update(settings_env)
    env.update({"ATELIER_WEIGHTS_DIR": str(empty), "KERAS_HOME": str(empty), "PYTHONUNBUFFERED": "1"})
    return env


def _wait_ready(stack: Stack) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    celery = make_celery(stack.settings)
    try:
        api_ready = worker_ready = False
        while time.monotonic() < deadline:
            for child in (stack.api, stack.worker):
                if not child.alive():
                    raise RuntimeError(f"{child.name} exited early:\n{stack.logs()}")
            if not api_ready:
                try:
                    api_ready = requests.get(stack.api_url + "/readyz", timeout=2).status_code == 200
                except requests.RequestException:
                    pass
            if not worker_ready:
                worker_ready = bool(celery.control.ping(timeout=0.5))
            if api_ready and worker_ready:
                return
            time.sleep(0.2)
    finally:
        celery.close()
    raise RuntimeError(f"stack not ready within {READY_TIMEOUT_S} s:\n{stack.logs()}")


def start_stack(kind: str, redis_server: RedisServer, tmp: Path, s3_endpoint: str | None = None) -> Stack:
    redis_url = f"redis://127.0.0.1:{redis_server.port}/{DB_BY_KIND[kind]}"
    client = redis.Redis.from_url(redis_url)
    client.flushdb()  # our own server (tests started it), our own database
    settings_env = {
        "ATELIER_REDIS_URL": redis_url,
        "ATELIER_PROGRESS_MIN_INTERVAL_S": "0",
        "ATELIER_PREVIEW_EVERY": "4",
        # A killed worker's job is taken over 3 s after its last lease renewal (production default: 20 s).
        "ATELIER_LEASE_TTL_S": "3",
        "ATELIER_AUTH": "off",  # keys are tested in tests/security
    }
    if kind == "s3":
        assert s3_endpoint is not None
        settings_env.update({"ATELIER_STORAGE": f"s3://atelier-e2e-{uuid.uuid4().hex[:8]}",
                             "ATELIER_S3_ENDPOINT_URL": s3_endpoint})
    else:
        settings_env["ATELIER_STORAGE"] = "file://" + str(tmp / "storage")
    settings = Settings.from_env(settings_env)
    if kind == "s3":
        storage: Storage = S3Storage(settings.storage[len("s3://"):], s3_endpoint)
    else:
        storage = LocalStorage(tmp / "storage")
    env = _service_env(settings_env, tmp)
    port = free_port()
    api = Child("api", api_argv(f"127.0.0.1:{port}", workers=1, threads=4), env, tmp / "api.log", Path.cwd())
    worker = Child("worker", worker_argv(hostname=f"e2e-{kind}@%h"), env, tmp / "worker.log", Path.cwd())
    stack = Stack(kind, f"http://127.0.0.1:{port}", redis_url, settings, storage, JobRegistry(client),
                  Client(f"http://127.0.0.1:{port}"), api, worker)
    try:
        _wait_ready(stack)
    except BaseException:
        stop_stack(stack)
        raise
    return stack


def stop_stack(stack: Stack) -> None:
    stack.api.stop()
    stack.worker.stop()
    stack.registry.redis.close()


def wait_until(predicate: Callable[[], Any], timeout_s: float, interval_s: float = 0.1, what: str = "") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what or predicate}")


def descendants(root_pid: int) -> set[int]:
    """Every process below ``root_pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [root_pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
