"""A webhook receiver on 127.0.0.1 for the tests: ``http.server`` in a thread that records every request and answers
from a per-path script (``/ok`` -> 200; ``/flaky`` -> 500, 500, then 200; ``/gone`` -> 410; ``/always500``)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SCRIPTS: dict[str, list[int]] = {"/ok": [200], "/flaky": [500, 500, 200], "/gone": [410], "/always500": [500]}


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: str
    at_s: float  # time.time() on arrival


@dataclass
class Receiver:
    server: ThreadingHTTPServer
    requests: list[Received] = field(default_factory=list)
    _counts: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, path: str) -> int:
        with self.lock:
            script = SCRIPTS.get(path.split("?", 1)[0], [404])
            n = self._counts.get(path, 0)
            self._counts[path] = n + 1
            return script[min(n, len(script) - 1)]

    def on(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def wait_for(self, path: str, count: int, timeout_s: float = 20.0) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            got = self.on(path)
            if len(got) >= count:
                return got
            time.sleep(0.02)
        raise AssertionError(f"{path}: {len(self.on(path))} requests within {timeout_s} s, expected {count}")


def start_receiver() -> Receiver:
    holder: dict[str, Any] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            arrived = time.time()
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            receiver: Receiver = holder["receiver"]
            with receiver.lock:
                receiver.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                                                  arrived))
            self.send_response(receiver.answer(self.path))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder["receiver"] = Receiver(server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return holder["receiver"]
