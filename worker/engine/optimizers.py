"""L-BFGS (scipy) and Adam over the image pixels, plus the bookkeeping they share.

One *iteration* is one loss-and-gradient evaluation, for both optimizers. For Adam that is one step. For L-BFGS it
is one function evaluation, as jcjohnson/neural-style counts (its ``maxIter`` caps evaluations): an L-BFGS step may
take several evaluations in its line search, and counting evaluations makes the per-iteration cost equal to one
forward and backward pass for either optimizer, so ``seconds_per_iteration`` compares directly with the floor.

The ``Tracker`` sees every evaluation: it counts iterations, keeps the best image so far (the result is the best
evaluated image, so an L-BFGS line-search overshoot or an Adam oscillation never becomes the output), calls the
progress callback, and decides when to stop (iterations done, cancel requested, early stop).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.optimize
from threadpoolctl import ThreadpoolController

Evaluate = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # image -> (losses[4], gradient)

# Adam's usual moments; the step size is a parameter (learning_rate, in 0-255 pixel units).
ADAM_BETA1 = 0.9
ADAM_BETA2 = 0.999
ADAM_EPSILON = 1e-8
# L-BFGS history size (scipy's default is 10; jcjohnson/neural-style uses 100 at 10x the memory, with no
# visible gain at a few hundred iterations).
LBFGS_HISTORY = 10
# RMS pixel change (0-255 units) of L-BFGS's first step; see run_lbfgs.
FIRST_STEP_RMS_PX = 1.0
# Threads scipy's BLAS may use inside L-BFGS. Its work is a few vector operations over the pixels per evaluation,
# far too small to gain from threads; but OpenBLAS's idle threads busy-wait after each call and take cores from
# the backbone's forward and backward pass. On 2 cores that cost about 0.05 s of a 0.49 s iteration at 256 px
# (0.475-0.497 s per iteration with the default threads, 0.430-0.439 s with one; docs/engine.md).
LBFGS_BLAS_THREADS = 1
# Finds the loaded BLAS libraries once (about 10 ms); limiting through it then costs microseconds per run.
_THREADPOOLS = ThreadpoolController()


class StopOptimization(Exception):
    """Raised by the tracker inside an evaluation to end the optimizer loop."""


class Tracker:
    def __init__(
        self,
        iterations: int,
        progress_every: int,
        report: Callable[[int, np.ndarray, np.ndarray], bool],
        early_stop_tol: float,
        early_stop_window: int,
    ) -> None:
        self.iterations = iterations
        self.progress_every = progress_every
        self.report = report  # (iteration, image, losses) -> True to cancel
        self.early_stop_tol = early_stop_tol
        self.early_stop_window = early_stop_window
        self.iteration = 0
        self.initial_losses: np.ndarray | None = None
        self.best_losses: np.ndarray | None = None
        self.best_image: np.ndarray | None = None
        self.best_history: list[float] = []  # best total after each iteration (monotone)
        self.cancelled = False
        self.stopped_early_at: int | None = None
        self.last_reported = 0

    def observe(self, image: np.ndarray, losses: np.ndarray) -> None:
        """Record one evaluation; raise ``StopOptimization`` when the run must end."""
        self.iteration += 1
        if self.initial_losses is None:
            self.initial_losses = losses
        if np.isfinite(losses[3]) and (self.best_losses is None or losses[3] < self.best_losses[3]):
            self.best_losses, self.best_image = losses, image
        self.best_history.append(float(self.best_losses[3]) if self.best_losses is not None else float("inf"))
        if self.iteration % self.progress_every == 0 or self.iteration == self.iterations:
            self.last_reported = self.iteration
            if self.report(self.iteration, image, losses):
                self.cancelled = True
                raise StopOptimization
        if self.iteration >= self.iterations:
            raise StopOptimization
        if self._improvement_stalled():
            self.stopped_early_at = self.iteration
            raise StopOptimization

    def _improvement_stalled(self) -> bool:
        window = self.early_stop_window
        if self.early_stop_tol <= 0 or len(self.best_history) <= window:
            return False
        before, now = self.best_history[-window - 1], self.best_history[-1]
        return before > 0 and (before - now) / before < self.early_stop_tol

    def finish(self, image: np.ndarray, losses: np.ndarray) -> None:
        """Final progress report when the last iteration was not reported already (early stop, line-search end);
        a cancel requested here changes nothing: the run is over."""
        if self.iteration != self.last_reported and not self.cancelled:
            self.last_reported = self.iteration
            self.report(self.iteration, image, losses)


def run_lbfgs(evaluate: Evaluate, image0: np.ndarray, tracker: Tracker) -> None:
    """Minimise with scipy's L-BFGS-B (no bounds: pixels are clipped to 0-255 once at the end, as neural-style
    does; box constraints would cost an O(n log n) breakpoint sort per iteration for no visible gain)."""
    shape = image0.shape
    # scipy's first step has length 1 / |gradient| along the gradient, i.e. a total move of one pixel unit over
    # the whole image; the line search then needs several evaluations to grow it. Optimising x / scale makes that
    # first step move each pixel by about one unit (RMS) instead. Uniform scaling changes nothing else in L-BFGS.
    scale = float(np.sqrt(image0.size)) * FIRST_STEP_RMS_PX

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        # Scale and cast in one pass each way (this runs once per evaluation, between backbone passes).
        image = np.multiply(x.reshape(shape), scale, dtype=np.float32)
        losses, grad = evaluate(image)
        tracker.observe(image, losses)
        return float(losses[3]), np.multiply(grad.reshape(-1), scale, dtype=np.float64)

    with _THREADPOOLS.limit(limits=LBFGS_BLAS_THREADS, user_api="blas"):
        _lbfgs_with_restarts(fun, image0, scale, tracker)


def _lbfgs_with_restarts(fun: Callable, start: np.ndarray, scale: float, tracker: Tracker) -> None:
    """scipy's L-BFGS-B from ``start`` until the tracker stops it, restarting when scipy gives up on its own."""
    while True:
        before = tracker.iteration
        try:
            # ftol/gtol 0: never declare convergence ourselves; iterations, cancel and early stop decide.
            scipy.optimize.minimize(
                fun,
                start.reshape(-1).astype(np.float64) / scale,
                jac=True,
                method="L-BFGS-B",
                options={
                    "maxiter": tracker.iterations,
                    "maxfun": tracker.iterations + 1,
                    "maxcor": LBFGS_HISTORY,
                    "ftol": 0.0,
                    "gtol": 0.0,
                },
            )
        except StopOptimization:
            return
        # scipy ended on its own (a line search that found no decrease). Restart from the best image with a fresh
        # history, unless that attempt made no progress at all.
        if tracker.iteration - before <= 1 or tracker.best_image is None:
            return
        start = tracker.best_image


def run_adam(evaluate: Evaluate, image0: np.ndarray, tracker: Tracker, learning_rate: float) -> None:
    """Adam on the pixels, clipped to 0-255 after every step."""
    image = image0.astype(np.float32)
    m = np.zeros_like(image)
    v = np.zeros_like(image)
    step = 0
    while True:
        losses, grad = evaluate(image)
        try:
            tracker.observe(image, losses)
        except StopOptimization:
            return
        step += 1
        m *= ADAM_BETA1
        m += (1 - ADAM_BETA1) * grad
        v *= ADAM_BETA2
        v += (1 - ADAM_BETA2) * np.square(grad)
        m_hat_scale = learning_rate / (1 - ADAM_BETA1**step)
        v_hat_scale = 1.0 / (1 - ADAM_BETA2**step)
        # A new array each step: the tracker may hold the previous image as the best one.
        image = np.clip(image - m_hat_scale * m / (np.sqrt(v * v_hat_scale) + ADAM_EPSILON), 0, 255).astype(np.float32)
