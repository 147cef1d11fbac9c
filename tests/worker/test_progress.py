"""Progress reporting: throttled record writes, previews every N iterations, the cancel check."""

from __future__ import annotations

import threading

import numpy as np

from worker.progress import ProgressReporter, progress_snapshot

from .conftest import FakeProgress

IMAGE = np.zeros((8, 8, 3), np.uint8)
LOSSES = {"content": 1.0, "style": 2.0, "tv": 0.25, "total": 3.25}


class Clock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


def progress(iteration: int, iterations: int = 100, elapsed_s: float = 1.0) -> FakeProgress:
    return FakeProgress(iteration, iterations, dict(LOSSES), elapsed_s, IMAGE)


def running_job(registry, make_job) -> str:
    job_id = make_job()
    assert registry.mark_running(job_id, "h", 1)
    return job_id


def test_snapshot_percent_and_eta():
    snap = progress_snapshot(progress(25, 100, elapsed_s=5.0))
    assert snap["percent"] == 25.0
    assert snap["eta_s"] == 15.0  # 0.2 s per iteration, 75 to go
    assert snap["losses"] == LOSSES
    assert progress_snapshot(progress(0, 100))["eta_s"] is None


def test_snapshot_follows_the_engines_share_of_work_when_it_gives_one():
    # coarse to fine: 400 of 500 iterations run, but the last scale (100 iterations) is about half the work
    from worker.engine.results import Progress

    snap = progress_snapshot(Progress(400, 500, dict(LOSSES), 60.0, work_done=0.48))
    assert (snap["iteration"], snap["iterations"], snap["percent"]) == (400, 500, 48.0)
    assert snap["eta_s"] == 65.0  # 60 s for 48% of the work: 65 s for the other 52%, not 15 s


def test_writes_are_throttled_but_the_last_report_is_always_written(registry, storage, make_job):
    job_id = running_job(registry, make_job)
    clock = Clock()
    reporter = ProgressReporter(registry, storage, job_id, min_interval_s=1.0, preview_every=0, clock=clock)
    reporter(progress(10))
    clock.now_s = 0.5
    reporter(progress(20))  # within the interval: not written
    assert registry.get(job_id).progress["iteration"] == 10
    clock.now_s = 1.2
    reporter(progress(30))
    assert registry.get(job_id).progress["iteration"] == 30
    clock.now_s = 1.3
    reporter(progress(100))  # final report, inside the interval, still written
    assert registry.get(job_id).progress["iteration"] == 100
    assert reporter.writes == 3


def test_previews_each_time_a_multiple_is_passed(registry, storage, make_job):
    job_id = running_job(registry, make_job)
    reporter = ProgressReporter(registry, storage, job_id, min_interval_s=0, preview_every=25)
    calls = [progress(i) for i in (10, 20, 30, 40, 50, 60, 100)]
    for call in calls:
        reporter(call)
    expected = [f"results/{job_id}/previews/{i:06d}.png" for i in (30, 50)]
    assert reporter.previews == expected
    assert registry.get(job_id).previews == expected
    assert all(storage.exists(key) for key in expected)
    # previews are rendered only when stored
    assert [c.preview_calls for c in calls] == [0, 0, 1, 0, 1, 0, 0]


def test_returns_true_once_cancel_is_requested(registry, storage, make_job):
    job_id = running_job(registry, make_job)
    reporter = ProgressReporter(registry, storage, job_id, min_interval_s=0, preview_every=0)
    assert reporter(progress(10)) is False
    registry.request_cancel(job_id)
    assert reporter(progress(20)) is True
    assert reporter.stop_reason == "canceled"


def test_returns_true_when_the_lease_is_lost(registry, storage, make_job):
    job_id = running_job(registry, make_job)
    lost = threading.Event()
    reporter = ProgressReporter(registry, storage, job_id, min_interval_s=0, preview_every=0, lease_lost=lost)
    assert reporter(progress(10)) is False
    lost.set()
    assert reporter(progress(20)) is True
    assert reporter.stop_reason == "lease_lost"
