"""When a fast style pays: the break-even batch size of "train a network, then apply it" against "optimise every
image" (issue 11, ``mode=auto``). Pure Python, no TensorFlow: the API and the batch planner import it.

With measured costs on one worker type, for a batch of ``n`` images,

    fast(n)     = train_s + n * apply_s          (train once, then one forward pass per image)
    optimize(n) = n * optimize_s                 (one Gatys job per image, at its parameters)

fast is cheaper exactly when ``n * (optimize_s - apply_s) > train_s``, so the break-even batch size is

    n* = floor(train_s / (optimize_s - apply_s)) + 1        (None when optimize_s <= apply_s: never)

and ``n* = 1`` when a model already exists (``train_s = 0``). Costs the two modes share (decoding, storage,
queueing) cancel and are left out. ``bench/fast.py breakeven`` prints these figures from costs measured side by side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class FastCosts:
    """Seconds on one worker: training one model (setup included), one forward pass, one Gatys job."""

    train_s: float
    apply_s: float
    optimize_s: float

    def __post_init__(self) -> None:
        for name in ("train_s", "apply_s", "optimize_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value < 0:
                raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value!r}")

    def fast_s(self, n: int) -> float:
        return self.train_s + n * self.apply_s

    def optimize_total_s(self, n: int) -> float:
        return n * self.optimize_s


def break_even_batch(costs: FastCosts) -> int | None:
    """The smallest batch size for which training plus applying costs less than optimising every image."""
    saving = costs.optimize_s - costs.apply_s
    if saving <= 0:
        return None
    return math.floor(costs.train_s / saving) + 1


def choose_mode(n: int, costs: FastCosts) -> tuple[str, str]:
    """``("fast" | "optimize", reason)`` for a batch of ``n`` images; the reason quotes the figures."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    fast, optimize = costs.fast_s(n), costs.optimize_total_s(n)
    even = break_even_batch(costs)
    mode = "fast" if fast < optimize else "optimize"
    when = f"{even} images" if even is not None else "no batch size (a forward pass costs no less than optimizing)"
    relation = "<" if mode == "fast" else ">="
    return mode, (f"{n} images: train {costs.train_s:.0f} s + {n} x {costs.apply_s:.3g} s = {fast:.0f} s "
                  f"{relation} {n} x {costs.optimize_s:.3g} s = {optimize:.0f} s optimizing; break-even at {when}")


__all__ = ["FastCosts", "break_even_batch", "choose_mode"]
