"""The optimizer layer on its own: no backbone, a quadratic stands in for the style objective."""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_info

from worker.engine import optimizers


def _blas_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def _tracker(iterations: int) -> optimizers.Tracker:
    return optimizers.Tracker(iterations, iterations, lambda *_: False, early_stop_tol=0.0, early_stop_window=10)


def test_lbfgs_minimises_a_quadratic_and_keeps_the_best_image():
    target = np.random.default_rng(0).uniform(0, 255, (6, 5, 3)).astype(np.float32)

    def evaluate(image):
        diff = image - target
        total = float(np.mean(np.square(diff)))
        return np.array([0.0, 0.0, 0.0, total]), (2 * diff / diff.size).astype(np.float32)

    tracker = _tracker(30)
    optimizers.run_lbfgs(evaluate, np.full_like(target, 127.5), tracker)
    assert tracker.iteration == 30
    assert tracker.best_losses[3] < 1e-3 * tracker.initial_losses[3]
    np.testing.assert_allclose(tracker.best_image, target, atol=0.5)


def test_lbfgs_runs_scipy_with_one_blas_thread_and_restores_the_pool():
    """OpenBLAS's idle threads busy-wait and take cores from TensorFlow between evaluations (optimizers.py)."""
    seen: list[list[int]] = []

    def evaluate(image):
        seen.append(_blas_threads())
        return np.array([0.0, 0.0, 0.0, float(np.sum(np.square(image)))]), (2 * image).astype(np.float32)

    before = _blas_threads()
    optimizers.run_lbfgs(evaluate, np.ones((4, 4, 3), np.float32), _tracker(3))
    assert seen and all(threads == [optimizers.LBFGS_BLAS_THREADS] * len(threads) for threads in seen)
    assert all(seen), "scipy's BLAS should be loaded and visible to threadpoolctl"
    assert _blas_threads() == before
