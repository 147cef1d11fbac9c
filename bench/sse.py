"""Open event streams against the latency of ordinary requests, on the real gunicorn command line (docs/events.md).

Starts its own Redis and the API with ``services.commands.api_argv`` (gunicorn, 2 processes, authentication on),
then for each N in ``--streams``: opens N event streams (``GET /v1/jobs/{id}/events`` of queued jobs a fake
"worker" thread keeps writing progress into, through the real registry, so the streams carry events), and while
they are open measures ``GET /v1/jobs/{id}`` from ``--clients`` threads for ``--measure-s`` seconds: p50, p95,
max and requests that failed or took over 2 s. Reports how many streams got 200 and how many 503.

Two configurations side by side, in one run:

- ``capped`` (the default deployment): ``--threads 4 + ATELIER_SSE_MAX_STREAMS 8`` = 12 threads, at most 8
  streams per process; the 4 request threads are never taken by streams;
- ``uncapped``: the same 12 threads, but streams may take all of them (ATELIER_SSE_MAX_STREAMS=12): what happens
  without the reservation.

With ``--first-progress`` it also starts ``atelier dev``'s stack (DevStack: Redis, API, one real worker with VGG19)
and times submit -> the first ``progress`` event a client sees, for a job on a warm worker.

    .venv/bin/python bench/sse.py --streams 0 8 16 17 24 32 --measure-s 3 [--first-progress]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import percentile, wait_ready  # noqa: E402
from services import sse_client  # noqa: E402
from services.commands import api_argv, resolve  # noqa: E402
from services.devstack import RedisServer, free_port  # noqa: E402
from services.redis_client import connect  # noqa: E402
from services.registry import JobRegistry  # noqa: E402
from services.tenants import KeyStore  # noqa: E402
from shared.jobs import new_job_id, new_job_record  # noqa: E402

SLOW_MS = 2000.0
# Short heartbeats so one row's closed streams have freed their slots before the next row (production: 15 s).
HEARTBEAT_S = 1.0
CONFIGS = {  # name -> (request threads, stream threads, ATELIER_SSE_MAX_STREAMS)
    "capped": (4, 8, 8),
    "uncapped": (0, 12, 12),
}


class Streams:
    """N open streams, each read by its own thread (so the server keeps writing to a live client)."""

    def __init__(self, api: str, token: str, job_ids: list[str]) -> None:
        self.responses: list[requests.Response] = []
        self.refused = self.failed = 0
        self.events = 0
        self._lock = threading.Lock()
        for job_id in job_ids:
            try:
                response = sse_client.open_stream(f"{api}/v1/jobs/{job_id}/events", token=token, timeout_s=5)
            except requests.RequestException:
                self.failed += 1
                continue
            if response.status_code != 200:
                self.refused += response.status_code == 503
                self.failed += response.status_code != 503
                response.close()
                continue
            self.responses.append(response)
            threading.Thread(target=self._read, args=(response,), daemon=True).start()

    def _read(self, response: requests.Response) -> None:
        try:
            for _ in sse_client.events(response):
                with self._lock:
                    self.events += 1
        except (requests.RequestException, ValueError, AttributeError):
            pass

    def close(self) -> None:
        for response in self.responses:
            response.close()


def measure_gets(api: str, token: str, job_id: str, clients: int, seconds: float) -> dict[str, Any]:
    latencies, slow = [], [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def loop() -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            try:
                ok = session.get(f"{api}/v1/jobs/{job_id}", timeout=SLOW_MS / 1000).status_code == 200
            except requests.RequestException:
                ok = False
            ms = (time.perf_counter() - started) * 1000
            with lock:
                latencies.append(ms)
                slow[0] += (not ok) or ms > SLOW_MS

    threads = [threading.Thread(target=loop) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"requests": len(latencies), "p50_ms": percentile(latencies, 0.5), "p95_ms": percentile(latencies, 0.95),
            "max_ms": percentile(latencies, 1.0), "failed_or_over_2s": slow[0]}


def fake_worker(registry: JobRegistry, job_ids: list[str], stop: threading.Event) -> None:
    """Progress on every streamed job twice a second, through the real registry (so real events flow)."""
    for job_id in job_ids:
        registry.mark_running(job_id, "bench", os.getpid())
    iteration = 0
    while not stop.wait(0.5):
        iteration += 1
        for job_id in job_ids:
            registry.set_progress(job_id, {"iteration": iteration, "iterations": 10**6, "percent": 0.0,
                                           "losses": {"total": 1.0}, "eta_s": None, "elapsed_s": iteration / 2})


def run_config(name: str, stream_counts: list[int], clients: int, measure_s: float) -> dict[str, Any]:
    request_threads, stream_threads, cap = CONFIGS[name]
    with tempfile.TemporaryDirectory(prefix="atelier-sse-") as tmp:
        redis_server = RedisServer(Path(tmp) / "redis").start()
        port = free_port()
        api = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ATELIER_")} | {
            "ATELIER_REDIS_URL": redis_server.url, "ATELIER_STORAGE": f"file://{tmp}/storage", "ATELIER_AUTH": "on",
            "ATELIER_SSE_MAX_STREAMS": str(cap), "ATELIER_SSE_HEARTBEAT_S": str(HEARTBEAT_S),
            "PROMETHEUS_MULTIPROC_DIR": str(Path(tmp) / "prom")}
        Path(env["PROMETHEUS_MULTIPROC_DIR"]).mkdir()
        argv = api_argv(f"127.0.0.1:{port}", threads=request_threads, sse_streams=stream_threads)
        argv[argv.index("--access-logfile") + 1] = "/dev/null"
        with open(Path(tmp) / "api.log", "wb") as log:
            process = subprocess.Popen(resolve(argv), env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        client = connect(redis_server.url)
        registry = JobRegistry(client)
        rows = []
        try:
            wait_ready(api, process)
            token = KeyStore(client).create("bench").token
            probe = _queued_job(registry)
            for count in stream_counts:
                job_ids = [_queued_job(registry) for _ in range(count)]
                stop = threading.Event()
                worker = threading.Thread(target=fake_worker, args=(registry, job_ids, stop), daemon=True)
                worker.start()
                streams = Streams(api, token, job_ids)
                time.sleep(0.5)
                row = {"streams_asked": count, "streams_open": len(streams.responses), "refused_503": streams.refused,
                       "other_failures": streams.failed, **measure_gets(api, token, probe, clients, measure_s)}
                row["stream_events_received"] = streams.events
                streams.close()
                stop.set()
                worker.join()
                # A closed stream frees its slot when the server next writes to it and fails: within a heartbeat.
                time.sleep(HEARTBEAT_S * 2 + 1)
                rows.append(row)
        finally:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:  # graceful shutdown waits for open streams: not worth waiting for
                process.kill()
                process.wait(10)
            client.close()
            redis_server.stop()
    return {"config": name, "gunicorn": f"2 processes x {request_threads + stream_threads} threads",
            "sse_max_streams_per_process": cap, "rows": rows}


def _queued_job(registry: JobRegistry) -> str:
    job_id = new_job_id()
    registry.create(new_job_record(job_id, params={"size": 32}, content_key="inputs/c.jpg",
                                   style_keys=["inputs/s.jpg"], content_name="c.jpg", style_names=["s.jpg"],
                                   queue="interactive", tenant="bench"))
    return job_id


def first_progress(jobs: int = 2) -> dict[str, Any]:
    """Submit -> first progress event on ``atelier dev``'s stack with one real worker; the first job warms it."""
    from services.cli.dev import DevStack

    content = ROOT / "examples" / "content" / "chelsea_cat.jpg"
    style = ROOT / "examples" / "style" / "vangogh_starry_night.jpg"
    with tempfile.TemporaryDirectory(prefix="atelier-sse-dev-") as tmp:
        stack = DevStack(port=free_port(), workers=1, var_dir=tmp).start(say=lambda _line: None)
        try:
            timings = []
            for _ in range(jobs):
                started = time.monotonic()
                with open(content, "rb") as c, open(style, "rb") as s:
                    job = requests.post(f"{stack.api_url}/v1/jobs", files=[("content", c), ("style", s)],
                                        data={"params": '{"size": 64, "iterations": 20}'}, timeout=30).json()
                response = sse_client.open_stream(f"{stack.api_url}/v1/jobs/{job['id']}/events", timeout_s=120)
                seen = None
                for event in sse_client.events(response):
                    if event.name == "progress" and seen is None:
                        seen = time.monotonic() - started
                    if event.name == "done":
                        break
                response.close()
                timings.append(round(seen, 3) if seen is not None else None)
        finally:
            stack.stop()
    return {"submit_to_first_progress_s": timings, "note": "first job on a cold worker, then warm"}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[0, 8, 16, 17, 24, 32])
    parser.add_argument("--clients", type=int, default=4, help="threads doing GET /v1/jobs/{id}")
    parser.add_argument("--measure-s", type=float, default=3.0)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--first-progress", action="store_true")
    args = parser.parse_args(argv)
    report: dict[str, Any] = {"clients": args.clients, "measure_s": args.measure_s,
                              "results": [run_config(name, args.streams, args.clients, args.measure_s)
                                          for name in args.configs]}
    if args.first_progress:
        report["first_progress"] = first_progress()
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
