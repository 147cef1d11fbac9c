"""Webhook delivery latency after a job ends: ``finished_at`` of the record -> arrival at a receiver on 127.0.0.1.

It starts its own Redis and the real webhook worker process (``services.commands.webhook_worker_argv``), then ends
``--jobs`` jobs one by one through ``JobRegistry.finish`` (the transition a GPU worker makes, which appends the
terminal event in the same MULTI), ``--gap-s`` apart, and prints the latency distribution (p50, p95, max, in ms)
and, with ``--json``, every sample. No GPU worker is needed: the path measured starts at the committed status change.

    .venv/bin/python bench/webhook_latency.py --jobs 50
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.cli.dev import Child  # noqa: E402
from services.commands import webhook_worker_argv  # noqa: E402
from services.devstack import RedisServer  # noqa: E402
from services.registry import JobRegistry  # noqa: E402
from shared.jobs import JobRecord, JobStatus, new_job_id, parse_iso  # noqa: E402


def _receiver() -> tuple[ThreadingHTTPServer, dict[str, float]]:
    arrivals: dict[str, float] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            now = time.time()
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            arrivals[self.headers["webhook-id"]] = now
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, arrivals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--gap-s", type=float, default=0.1, help="pause between two job ends")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, RedisServer(Path(tmp) / "redis") as redis_server:
        server, arrivals = _receiver()
        env = {**os.environ, "ATELIER_REDIS_URL": redis_server.url, "ATELIER_WEBHOOK_ALLOWLIST": "127.0.0.1"}
        worker = Child("webhooks", webhook_worker_argv(hostname=f"bench@{socket.gethostname()}"), env,
                       Path(tmp) / "webhooks.log", Path.cwd())
        try:
            while "ready." not in worker.log_path.read_text(errors="replace"):
                time.sleep(0.1)
            registry = JobRegistry.from_url(redis_server.url)
            url = f"http://127.0.0.1:{server.server_address[1]}/hook"
            ids = []
            for _ in range(args.jobs):
                record = JobRecord(id=new_job_id(), webhook={"url": url, "events": ["succeeded"]})
                registry.create(record)
                registry.mark_running(record.id, "bench", 1)
                registry.finish(record.id, JobStatus.SUCCEEDED)
                ids.append(record.id)
                time.sleep(args.gap_s)
            deadline = time.monotonic() + 30
            while len(arrivals) < len(ids) and time.monotonic() < deadline:
                time.sleep(0.05)
            samples_ms = [(arrivals[f"msg_{job_id}_succeeded"] - parse_iso(registry.require(job_id).finished_at)
                           .timestamp()) * 1000 for job_id in ids if f"msg_{job_id}_succeeded" in arrivals]
        finally:
            worker.stop()
            server.shutdown()
    samples_ms.sort()
    summary = {"jobs": len(ids), "delivered": len(samples_ms), "p50_ms": round(statistics.median(samples_ms), 1),
               "p95_ms": round(samples_ms[int(0.95 * (len(samples_ms) - 1))], 1), "max_ms": round(samples_ms[-1], 1),
               "cpu_count": os.cpu_count()}
    print(json.dumps({**summary, "samples_ms": [round(s, 1) for s in samples_ms]} if args.json else summary))


if __name__ == "__main__":
    main()
