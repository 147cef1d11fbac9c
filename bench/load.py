"""Load test of the API under gunicorn: status polling and submissions for a fixed time, on loopback only.

Starts its own Redis (a free port, data in a temporary directory) and the API with the compose command line
(``services.commands.api_argv``: gunicorn, 2 processes x 4 threads), authentication ON with a freshly created key.
No worker runs: submissions stay queued, which is what we measure (the API's cost to accept a job: validate and
decode the upload, store it, write the record, publish the message). Tenant limits are lifted for the run
(ATELIER_RATE_LIMIT_PER_MIN=0, ATELIER_MAX_QUEUED_JOBS=0) so that every answer is a real one.

    .venv/bin/python bench/load.py --duration-s 60 --threads 16 --submit-fraction 0.2

Prints one JSON object: requests, throughput (requests/s), p50/p99 latency per kind and overall, error count.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.commands import api_argv, resolve  # noqa: E402
from services.devstack import RedisServer, free_port  # noqa: E402
from services.redis_client import connect  # noqa: E402
from services.tenants import KeyStore  # noqa: E402


def tiny_jpeg(seed: int) -> bytes:
    rng = random.Random(seed)
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (rng.randrange(256), rng.randrange(256), rng.randrange(256))).save(buffer, "JPEG")
    return buffer.getvalue()


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies_ms: dict[str, list[float]] = {"poll": [], "submit": []}
        self.errors: dict[str, int] = {}
        self.job_ids: list[str] = []

    def add(self, kind: str, ms: float, error: str | None, job_id: str | None = None) -> None:
        with self.lock:
            self.latencies_ms[kind].append(ms)
            if error:
                self.errors[error] = self.errors.get(error, 0) + 1
            if job_id:
                self.job_ids.append(job_id)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def client_loop(api: str, token: str, stop_at: float, submit_fraction: float, recorder: Recorder, seed: int) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    rng = random.Random(seed)
    style = tiny_jpeg(10_000 + seed)
    n = 0
    while time.monotonic() < stop_at:
        n += 1
        submit = rng.random() < submit_fraction or not recorder.job_ids
        started = time.perf_counter()
        job_id = error = None
        try:
            if submit:
                response = session.post(f"{api}/v1/jobs", timeout=30, files=[
                    ("content", ("c.jpg", tiny_jpeg(seed * 1_000_000 + n))), ("style", ("s.jpg", style))],
                    data={"params": '{"size": 32, "iterations": 2}'})
                if response.status_code == 202:
                    job_id = response.json()["id"]
            else:
                response = session.get(f"{api}/v1/jobs/{rng.choice(recorder.job_ids)}", timeout=30)
            if response.status_code >= 400:
                error = f"http_{response.status_code}"
        except requests.RequestException as exc:
            error = type(exc).__name__
        recorder.add("submit" if submit else "poll", (time.perf_counter() - started) * 1000, error, job_id)


def wait_ready(api: str, process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited with {process.returncode}")
        try:
            if requests.get(api + "/readyz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit("the API was not ready in time")


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-s", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=16, help="concurrent client threads")
    parser.add_argument("--submit-fraction", type=float, default=0.2, help="share of requests that submit a job")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="atelier-load-") as tmp:
        redis_server = RedisServer(Path(tmp) / "redis").start()
        port = free_port()
        api = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ATELIER_")} | {
            "ATELIER_REDIS_URL": redis_server.url, "ATELIER_STORAGE": f"file://{tmp}/storage",
            "ATELIER_AUTH": "on", "ATELIER_RATE_LIMIT_PER_MIN": "0", "ATELIER_MAX_QUEUED_JOBS": "0",
            "ATELIER_LOG_FORMAT": "json", "PROMETHEUS_MULTIPROC_DIR": str(Path(tmp) / "prom")}
        Path(env["PROMETHEUS_MULTIPROC_DIR"]).mkdir()
        argv_api = [*api_argv(f"127.0.0.1:{port}"), "--access-logfile", "/dev/null"]
        argv_api.remove("-")
        argv_api.remove("--access-logfile")
        with open(Path(tmp) / "api.log", "wb") as log:
            process = subprocess.Popen(resolve(argv_api), env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_ready(api, process)
            token = KeyStore(connect(redis_server.url)).create("load").token
            recorder = Recorder()
            started = time.monotonic()
            stop_at = started + args.duration_s
            threads = [threading.Thread(target=client_loop, args=(api, token, stop_at, args.submit_fraction,
                                                                  recorder, i)) for i in range(args.threads)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed_s = time.monotonic() - started
        finally:
            process.terminate()
            process.wait(10)
            redis_server.stop()

    everything = recorder.latencies_ms["poll"] + recorder.latencies_ms["submit"]
    report: dict[str, object] = {
        "duration_s": round(elapsed_s, 1),
        "threads": args.threads,
        "requests": len(everything),
        "throughput_rps": round(len(everything) / elapsed_s, 1),
        "errors": sum(recorder.errors.values()),
        "errors_by_kind": recorder.errors,
        "latency_ms": {"p50": percentile(everything, 0.50), "p99": percentile(everything, 0.99)},
    }
    for kind, values in recorder.latencies_ms.items():
        report[kind] = {"requests": len(values), "rps": round(len(values) / elapsed_s, 1),
                        "p50_ms": percentile(values, 0.50), "p99_ms": percentile(values, 0.99)}
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
