"""Scaling benchmark: throughput with 1 and 2 worker processes, and the API's and Redis' CPU cost per job.

    python bench/scale.py                      # 12 small jobs per worker count, workers 1 and 2
    python bench/scale.py --jobs 20 --json var/bench/scale.json

On the real embedded stack (``services.cli.dev.DevStack``: our own redis-server, the API under gunicorn, N Celery
worker processes with real VGG19 weights), for each worker count it

1. warms every worker up (jobs at the benchmark's size, so later jobs trace nothing),
2. submits ``--jobs`` jobs through the HTTP client and polls each unfinished one every ``--poll-interval-s``
   (the client's default), as users would, until all have finished: throughput = jobs / wall time;
3. reads the CPU time (``/proc/<pid>/stat`` utime + stime, the process and its children) of the API (gunicorn
   master + workers) and of redis-server before and after: CPU per submitted-and-polled job;
4. times a burst of status polls on the idle stack (minus the idle stack's own background CPU) to get the cost of
   one poll, so the per-job cost can be split into a fixed part and a part that grows with the job's length.

From those it derives the ceiling: how many GPU workers one API process and one Redis (each one core at most) can
feed, for a few job lengths. README "Scaling" explains the model.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.cli.dev import DevStack  # noqa: E402
from services.client import Client  # noqa: E402
from services.devstack import free_port  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
CONTENT = ROOT / "examples" / "content" / "chelsea_cat.jpg"
STYLE = ROOT / "examples" / "style" / "munch_the_scream.jpg"
TERMINAL = ("succeeded", "failed", "canceled")
IDLE_POLLS = 300
JOB_LENGTHS_S = (5.0, 30.0, 120.0, 600.0)  # GPU job lengths for the ceiling table


# --- CPU accounting -----------------------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, float]:
    """(parent pid, utime + stime in seconds) of ``pid`` from /proc/<pid>/stat."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2:].split()  # the command name may contain spaces: skip past its ')'
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK


def tree_cpu_s(root_pid: int) -> float:
    """CPU seconds of ``root_pid`` and every live descendant (gunicorn's workers, Celery's pool)."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)], cpu[int(entry.name)] = _stat(int(entry.name))
            except (OSError, ValueError):
                continue  # exited meanwhile
    total, todo = 0.0, [root_pid]
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo += [child for child, parent in parents.items() if parent == pid]
    return total


@dataclass
class Probe:
    api_pid: int
    redis_pid: int
    worker_pids: tuple[int, ...] = ()

    def read(self) -> tuple[float, float]:
        return tree_cpu_s(self.api_pid), tree_cpu_s(self.redis_pid)

    def workers(self) -> float:
        """CPU seconds of every worker (Celery main process + its pool child)."""
        return sum(tree_cpu_s(pid) for pid in self.worker_pids)


# --- one run ------------------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    workers: int
    jobs: int
    wall_s: float
    jobs_per_min: float
    mean_run_s: float  # started -> finished, per job (what a GPU worker is busy for)
    mean_engine_s: float
    polls: int
    api_cpu_per_job_ms: float
    redis_cpu_per_job_ms: float
    api_cpu_submit_ms: float  # per job, measured over the submission burst
    api_cpu_per_poll_ms: float
    redis_cpu_per_poll_ms: float
    worker_cpu_per_job_s: float  # CPU the worker processes spent per job
    stack_cores_used: float  # CPU seconds per second the whole stack got: 2.0 would be both cores
    api_idle_ms_per_s: float  # the idle stack's own background (Celery's broker polling, heartbeats)
    redis_idle_ms_per_s: float
    failed: int


def _submit(client: Client, params: dict[str, Any]) -> str:
    return client.submit(CONTENT, [STYLE], params=params)["id"]


def _wait_all(client: Client, ids: list[str], poll_interval_s: float) -> tuple[list[Any], int]:
    pending, done, polls = set(ids), {}, 0
    while pending:
        for job_id in list(pending):
            job = client.get(job_id)
            polls += 1
            if job["status"] in TERMINAL:
                done[job_id] = job
                pending.discard(job_id)
        if pending:
            time.sleep(poll_interval_s)
    return [done[job_id] for job_id in ids], polls


def _poll_cost(client: Client, probe: Probe, job_id: str) -> tuple[float, float, float, float]:
    """CPU seconds per status poll (API, Redis), net of the idle stack's background (heartbeats, BRPOP timeouts),
    and that background itself (API, Redis CPU seconds per second)."""
    api0, redis0 = probe.read()
    t0 = time.monotonic()
    time.sleep(3.0)
    idle_s = time.monotonic() - t0
    api1, redis1 = probe.read()
    idle_api, idle_redis = (api1 - api0) / idle_s, (redis1 - redis0) / idle_s
    t0 = time.monotonic()
    for _ in range(IDLE_POLLS):
        client.get(job_id)
    busy_s = time.monotonic() - t0
    api2, redis2 = probe.read()
    return (max(0.0, (api2 - api1 - idle_api * busy_s)) / IDLE_POLLS,
            max(0.0, (redis2 - redis1 - idle_redis * busy_s)) / IDLE_POLLS, idle_api, idle_redis)


@dataclass
class Batch:
    """CPU and wall time of ``jobs`` jobs submitted at once and polled until all finished."""

    jobs: int
    wall_s: float
    mean_run_s: float
    mean_engine_s: float
    polls: int
    api_cpu_s: float
    redis_cpu_s: float
    api_cpu_submit_s: float
    failed: int
    workers_cpu_s: float = 0.0  # the worker processes' CPU over the batch


def run_batch(client: Client, probe: Probe, jobs: int, params: dict[str, Any], poll_interval_s: float) -> Batch:
    api0, redis0 = probe.read()
    workers0 = probe.workers()
    t0 = time.monotonic()
    ids = [_submit(client, params) for _ in range(jobs)]
    api_submitted, _ = probe.read()
    finished, polls = _wait_all(client, ids, poll_interval_s)
    wall_s = time.monotonic() - t0
    api1, redis1 = probe.read()
    workers_cpu_s = probe.workers() - workers0
    for job in finished:
        if job["status"] != "succeeded":
            print(f"job {job['id']} {job['status']}: {job.get('error')}", file=sys.stderr)
    run_s = [_seconds(job.get("started_at"), job.get("finished_at")) for job in finished]
    engine_s = [float((job.get("metrics") or {}).get("seconds") or 0.0) for job in finished]
    return Batch(jobs, wall_s, statistics.fmean(run_s), statistics.fmean(engine_s), polls, api1 - api0,
                 redis1 - redis0, api_submitted - api0, sum(job["status"] != "succeeded" for job in finished),
                 workers_cpu_s)


def run(workers: int, jobs: int, params: dict[str, Any], poll_interval_s: float, var_dir: Path,
        long_factor: int = 0, say: Any = print) -> tuple[RunResult, Batch | None]:
    """Throughput of ``workers`` workers on ``jobs`` jobs; with ``long_factor``, also a batch of jobs that many times
    longer (same size, more iterations) for the cost model."""
    stack = DevStack(port=free_port(), workers=workers, var_dir=var_dir / f"workers-{workers}")
    stack.start(say=lambda _line: None)
    long_batch = None
    try:
        api = next(child for child in stack.children if child.name == "api")
        assert stack.redis is not None and stack.redis.process is not None
        probe = Probe(api.pid, stack.redis.process.pid,
                      tuple(child.pid for child in stack.children if child.name != "api"))
        client = Client(stack.api_url)
        say(f"[{workers} worker(s)] stack up; warming up")
        _wait_all(client, [_submit(client, params) for _ in range(2 * workers)], poll_interval_s)
        say(f"[{workers} worker(s)] {jobs} jobs: size {params['size']} px, {params['iterations']} iterations")
        batch = run_batch(client, probe, jobs, params, poll_interval_s)
        if long_factor:
            long_params = params | {"iterations": params["iterations"] * long_factor}
            say(f"[{workers} worker(s)] {jobs} jobs: {long_params['iterations']} iterations (cost model)")
            long_batch = run_batch(client, probe, jobs, long_params, poll_interval_s)
        api_poll_s, redis_poll_s, idle_api, idle_redis = _poll_cost(client, probe, _submit(client, params))
    finally:
        stack.stop()
    result = RunResult(
        workers=workers, jobs=jobs, wall_s=round(batch.wall_s, 2), jobs_per_min=round(60.0 * jobs / batch.wall_s, 2),
        mean_run_s=round(batch.mean_run_s, 3), mean_engine_s=round(batch.mean_engine_s, 3), polls=batch.polls,
        api_cpu_per_job_ms=round(1000 * batch.api_cpu_s / jobs, 2),
        redis_cpu_per_job_ms=round(1000 * batch.redis_cpu_s / jobs, 2),
        api_cpu_submit_ms=round(1000 * batch.api_cpu_submit_s / jobs, 2),
        api_cpu_per_poll_ms=round(1000 * api_poll_s, 3),
        redis_cpu_per_poll_ms=round(1000 * redis_poll_s, 3),
        worker_cpu_per_job_s=round(batch.workers_cpu_s / jobs, 3),
        stack_cores_used=round((batch.workers_cpu_s + batch.api_cpu_s + batch.redis_cpu_s) / batch.wall_s, 2),
        api_idle_ms_per_s=round(1000 * idle_api, 3),
        redis_idle_ms_per_s=round(1000 * idle_redis, 3),
        failed=batch.failed + (long_batch.failed if long_batch else 0),
    )
    return result, long_batch


def _seconds(start: str | None, end: str | None) -> float:
    from shared.jobs import parse_iso

    if not start or not end:
        return 0.0
    return (parse_iso(end) - parse_iso(start)).total_seconds()


# --- the model ----------------------------------------------------------------------------------------------------


@dataclass
class CostModel:
    """CPU seconds one job costs the API and Redis.

    API:   fixed + polls * per_poll. The API does nothing for a job between requests, so two batches of the same
           jobs at two lengths (short, long: more polls per job) give both numbers:
           per_poll = (cost_long - cost_short) / (polls_long - polls_short).
    Redis: fixed + per_run_s * L + polls * per_poll. per_poll comes from a burst of polls on the idle stack; the two
           batches then give fixed and per_run_s (progress writes, cancel checks, lease renewals and the workers' own
           broker traffic while a job runs). The bench's client polls every job from submission on, queued or not,
           so the polls are counted, not assumed.
    """

    api_fixed_s: float
    api_per_poll_s: float
    redis_fixed_s: float
    redis_per_run_s: float
    redis_per_poll_s: float

    @classmethod
    def fit(cls, short: Batch, long: Batch, redis_poll_s: float) -> CostModel:
        polls1, polls2 = short.polls / short.jobs, long.polls / long.jobs
        api1, api2 = short.api_cpu_s / short.jobs, long.api_cpu_s / long.jobs
        api_poll = max(0.0, (api2 - api1) / max(polls2 - polls1, 1e-6))
        redis1 = short.redis_cpu_s / short.jobs - polls1 * redis_poll_s
        redis2 = long.redis_cpu_s / long.jobs - polls2 * redis_poll_s
        redis_slope = max(0.0, (redis2 - redis1) / max(long.mean_run_s - short.mean_run_s, 1e-6))
        return cls(max(0.0, api1 - polls1 * api_poll), api_poll, max(0.0, redis1 - redis_slope * short.mean_run_s),
                   redis_slope, redis_poll_s)


def ceiling(model: CostModel, poll_interval_s: float, job_lengths_s: tuple[float, ...]) -> list[dict[str, Any]]:
    """Workers one API process / one Redis (one core each) can feed with GPU jobs of each length L.

    A client polls its job every p seconds while it runs, so per job: c_api(L) = fixed + (L / p) * poll and
    c_redis(L) = fixed + per_run_s * L + (L / p) * poll.
    One worker finishes a job every L seconds; N workers need N * c(L) / L CPU-seconds per second <= 1 core, so
    N_max = L / c(L).
    """
    rows = []
    for length_s in job_lengths_s:
        c_api = model.api_fixed_s + length_s / poll_interval_s * model.api_per_poll_s
        c_redis = (model.redis_fixed_s + model.redis_per_run_s * length_s
                   + length_s / poll_interval_s * model.redis_per_poll_s)
        rows.append({"job_length_s": length_s, "api_cpu_per_job_ms": round(1000 * c_api, 2),
                     "redis_cpu_per_job_ms": round(1000 * c_redis, 2),
                     "max_workers_per_api_process": int(length_s / c_api) if c_api else None,
                     "max_workers_per_redis": int(length_s / c_redis) if c_redis else None})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Throughput with 1 and 2 workers; API and Redis CPU per job.")
    parser.add_argument("--jobs", type=int, default=12, help="jobs per worker count (default 12)")
    parser.add_argument("--size", type=int, default=64, help="long side in px (default 64)")
    parser.add_argument("--iterations", type=int, default=20, help="iterations per job (default 20)")
    parser.add_argument("--workers", default="1,2", help="worker counts to compare (default 1,2)")
    parser.add_argument("--poll-interval-s", type=float, default=0.5, help="client poll interval (default 0.5)")
    parser.add_argument("--long-factor", type=int, default=4,
                        help="the cost model's second batch runs this many times the iterations (0: skip)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    params = {"size": args.size, "iterations": args.iterations}
    counts = [int(n) for n in args.workers.split(",")]
    load_before = os.getloadavg()
    print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f} "
          f"on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="atelier-scale-") as tmp:
        runs = [run(n, args.jobs, params, args.poll_interval_s, Path(tmp), args.long_factor if i == 0 else 0)
                for i, n in enumerate(counts)]
    load_after = os.getloadavg()
    results = [result for result, _long in runs]
    first, long_batch = runs[0]

    print(f"\n{'workers':>7} {'jobs/min':>9} {'speedup':>8} {'run s/job':>10} {'API ms/job':>11} "
          f"{'Redis ms/job':>13} {'polls/job':>10} {'API ms/poll':>12} {'Redis ms/poll':>14} "
          f"{'worker CPU s/job':>17} {'cores used':>11} {'failed':>7}")
    for r in results:
        print(f"{r.workers:>7} {r.jobs_per_min:>9.1f} {r.jobs_per_min / results[0].jobs_per_min:>8.2f} "
              f"{r.mean_run_s:>10.2f} {r.api_cpu_per_job_ms:>11.1f} {r.redis_cpu_per_job_ms:>13.2f} "
              f"{r.polls / r.jobs:>10.1f} {r.api_cpu_per_poll_ms:>12.3f} {r.redis_cpu_per_poll_ms:>14.3f} "
              f"{r.worker_cpu_per_job_s:>17.2f} {r.stack_cores_used:>11.2f} {r.failed:>7}")
    output: dict[str, Any] = {"params": params, "poll_interval_s": args.poll_interval_s, "load_before": load_before,
                              "load_after": load_after, "runs": [asdict(r) for r in results]}
    if long_batch is not None:
        short = Batch(first.jobs, first.wall_s, first.mean_run_s, first.mean_engine_s, first.polls,
                      first.api_cpu_per_job_ms * first.jobs / 1000, first.redis_cpu_per_job_ms * first.jobs / 1000,
                      first.api_cpu_submit_ms * first.jobs / 1000, first.failed)
        model = CostModel.fit(short, long_batch, first.redis_cpu_per_poll_ms / 1000)
        per_job = 1000 / long_batch.jobs
        print(f"\nlong batch (1 worker): {long_batch.mean_run_s:.2f} s/job, API {long_batch.api_cpu_s * per_job:.1f} "
              f"ms/job, Redis {long_batch.redis_cpu_s * per_job:.2f} ms/job, "
              f"{long_batch.polls / long_batch.jobs:.1f} polls/job")
        print(f"cost model: API {1000 * model.api_fixed_s:.1f} ms/job + {1000 * model.api_per_poll_s:.2f} ms/poll "
              f"(idle burst: {first.api_cpu_per_poll_ms:.2f}); Redis {1000 * model.redis_fixed_s:.2f} ms/job + "
              f"{1000 * model.redis_per_run_s:.3f} ms per running s + {1000 * model.redis_per_poll_s:.3f} ms/poll "
              f"(idle stack: API {first.api_idle_ms_per_s:.2f}, Redis {first.redis_idle_ms_per_s:.2f} ms/s)")
        rows = ceiling(model, args.poll_interval_s, JOB_LENGTHS_S)
        print(f"\nceiling (one core each; clients poll every {args.poll_interval_s:g} s):")
        print(f"{'job s':>8} {'API ms/job':>11} {'Redis ms/job':>13} {'workers/API process':>20} "
              f"{'workers/Redis':>14}")
        for row in rows:
            print(f"{row['job_length_s']:>8} {row['api_cpu_per_job_ms']:>11.1f} "
                  f"{row['redis_cpu_per_job_ms']:>13.2f} {row['max_workers_per_api_process']!s:>20} "
                  f"{row['max_workers_per_redis']!s:>14}")
        output |= {"long_batch": asdict(long_batch), "model": asdict(model), "ceiling": rows}
    print(f"load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(output, indent=2))
    return 1 if any(r.failed for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
