"""Fault-test fixtures: a whole stack of real processes (``atelier dev``'s DevStack: Redis with the append-only file,
gunicorn API, two Celery workers, the reconciler) over S3 (moto) reached through a TCP proxy that a test can cut.

The workers use random backbone weights (``ATELIER_TEST_RANDOM_WEIGHTS=1``, test-only) so jobs take seconds; the
lease TTL, delivery cap and reconcile interval are shortened so that recoveries happen within a test's patience.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
import requests

from services.cli.dev import DevStack
from services.devstack import RedisServer, free_port
from worker.faults import CRASH_ENV

CRASH_NAME = "crash-me.jpg"


def load_corpus() -> Any:
    """tests/security/corpus.py (the two test packages are separate top-level packages for pytest)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "security" / "corpus.py"
    spec = importlib.util.spec_from_file_location("atelier_test_corpus", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
MAX_DELIVERIES = 2


class TcpProxy:
    """127.0.0.1:port -> target, one thread per direction. ``down()`` drops every connection and refuses new ones
    (they are accepted and closed at once) until ``up()``: storage "unavailable" without losing its state."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.available = threading.Event()
        self.available.set()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def down(self) -> None:
        self.available.clear()
        with self._lock:
            for sock in self._sockets:
                _close(sock)
            self._sockets.clear()

    def up(self) -> None:
        self.available.set()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if not self.available.is_set():
                _close(client)
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                _close(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(src, dst), daemon=True).start()

    def close(self) -> None:
        _close(self._server)
        self.down()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while chunk := src.recv(65536):
            dst.sendall(chunk)
    except OSError:
        pass
    finally:
        _close(src)
        _close(dst)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


@dataclass
class FaultStack:
    dev: DevStack
    proxy: TcpProxy
    redis: redis.Redis

    @property
    def api(self) -> str:
        return self.dev.api_url

    def submit(self, content: bytes, style: bytes, params: dict[str, Any], *, name: str = "c.jpg") -> str:
        import json

        files = [("content", (name, content)), ("style", ("s.jpg", style))]
        response = requests.post(self.api + "/v1/jobs", files=files, data={"params": json.dumps(params)}, timeout=30)
        assert response.status_code == 202, response.text
        return response.json()["id"]

    def job(self, job_id: str) -> dict[str, Any]:
        response = requests.get(f"{self.api}/v1/jobs/{job_id}", timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def wait(self, job_id: str, timeout_s: float = 180, until: Any = None) -> dict[str, Any]:
        """Poll until the job is terminal (or ``until(job)`` is true); Redis may be briefly down meanwhile."""
        deadline = time.monotonic() + timeout_s
        job: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                response = requests.get(f"{self.api}/v1/jobs/{job_id}", timeout=10)
            except requests.RequestException:
                response = None
            if response is not None and response.status_code == 200:
                job = response.json()
                if (until(job) if until else job["status"] in ("succeeded", "failed", "canceled")):
                    return job
            time.sleep(0.3)
        raise AssertionError(f"job {job_id} did not get there within {timeout_s} s; last seen: {job}")

    def restart_redis(self, down_s: float = 1.0) -> None:
        """Stop Redis (SIGTERM: it writes its append-only file), stay down ``down_s``, start it on the same port."""
        server = self.dev.redis
        assert server is not None and server.persistent
        server.stop()
        time.sleep(down_s)
        self.dev.redis = RedisServer(server.data_dir, port=server.port, persistent=True).start()


@pytest.fixture(scope="module")
def fault_stack(s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultStack]:
    proxy = TcpProxy(int(s3_endpoint.rsplit(":", 1)[1]))
    var_dir = tmp_path_factory.mktemp("fault-stack")
    env = {
        "ATELIER_STORAGE": f"s3://atelier-faults-{uuid.uuid4().hex[:8]}",
        "ATELIER_S3_ENDPOINT_URL": proxy.url,
        "ATELIER_TEST_RANDOM_WEIGHTS": "1",
        "ATELIER_PRELOAD_BACKBONE": "none",
        "ATELIER_LEASE_TTL_S": "5",
        "ATELIER_MAX_DELIVERIES": str(MAX_DELIVERIES),
        "ATELIER_RECONCILE_INTERVAL_S": "1",
        "ATELIER_RECONCILE_GRACE_S": "8",
        "ATELIER_PROGRESS_MIN_INTERVAL_S": "0",
        "ATELIER_PREVIEW_EVERY": "0",
        "ATELIER_STORAGE_RETRY_ATTEMPTS": "8",
        "ATELIER_LOG_FORMAT": "text",
        CRASH_ENV: CRASH_NAME,
    }
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("ATELIER_")}
    dev = DevStack(port=free_port(), workers=2, var_dir=var_dir, extra_env=env)
    try:
        dev.start(say=lambda line: None)
        client = redis.Redis.from_url(dev.redis.url if dev.redis else "")
        yield FaultStack(dev, proxy, client)
        client.close()
    finally:
        dev.stop()
        proxy.close()
        os.environ.update(saved)
