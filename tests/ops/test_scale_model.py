"""bench/scale.py's arithmetic: CPU accounting from /proc and the cost model behind the README's ceiling table."""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path

import pytest

_path = Path(__file__).resolve().parents[2] / "bench" / "scale.py"
_spec = importlib.util.spec_from_file_location("bench_scale", _path)
scale = importlib.util.module_from_spec(_spec)
sys.modules["bench_scale"] = scale  # dataclasses look their module up there
_spec.loader.exec_module(scale)  # a script, not an installed package


def test_tree_cpu_counts_this_process_burning_cpu():
    before = scale.tree_cpu_s(os.getpid())
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass
    assert scale.tree_cpu_s(os.getpid()) - before >= 0.25


def test_cost_model_recovers_known_costs_and_gives_the_worker_ceiling():
    # Synthetic batches built from known costs: API 10 ms/job + 2 ms/poll; Redis 1 ms/job + 3 ms per running s
    # + 0.05 ms/poll. 10 jobs each; short jobs run 2 s with 8 polls, long ones 8 s with 20 polls.
    def batch(run_s: float, polls_per_job: int) -> scale.Batch:
        api_s = 10 * (0.010 + polls_per_job * 0.002)
        redis_s = 10 * (0.001 + 0.003 * run_s + polls_per_job * 0.00005)
        return scale.Batch(10, 10 * run_s, run_s, run_s, 10 * polls_per_job, api_s, redis_s, 0.0, 0)

    model = scale.CostModel.fit(batch(2.0, 8), batch(8.0, 20), redis_poll_s=0.00005)
    assert model.api_fixed_s == pytest.approx(0.010)
    assert model.api_per_poll_s == pytest.approx(0.002)
    assert model.redis_fixed_s == pytest.approx(0.001)
    assert model.redis_per_run_s == pytest.approx(0.003)

    (row,) = scale.ceiling(model, poll_interval_s=0.5, job_lengths_s=(60.0,))
    # API: 10 ms + 120 polls * 2 ms = 250 ms per 60 s job -> 240 workers; Redis: 1 + 180 + 6 ms -> 320 workers.
    assert row["api_cpu_per_job_ms"] == pytest.approx(250.0)
    assert row["max_workers_per_api_process"] == 240
    assert row["redis_cpu_per_job_ms"] == pytest.approx(187.0)
    assert row["max_workers_per_redis"] == 320
