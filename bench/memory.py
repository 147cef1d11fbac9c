"""Where the engine's memory goes at one size, and against pastiche's, side by side in one run (issue 13, item 4).

    python bench/memory.py [--size 512] [--iterations 4] [--pastiche /tmp/pastiche-venv/bin/pastiche]
                           [--variants base,tiled] [--out bench/results/memory/512.json]

Every run is its own child process, one after another (never concurrent), so each peak resident set (``wait4``
rusage) is that run's alone. Our runs go through the engine's phases one by one and read the peak RSS of each phase
from ``/proc/self/status`` (VmHWM, reset between phases through ``/proc/self/clear_refs``), so the record says where
the peak is: the imports, the backbone and its weights, the style targets, the content targets and normalisers, and
the optimisation (the loss-and-gradient passes plus scipy's L-BFGS state). A run's peak is its largest phase peak:
after the resets, ``wait4``'s ru_maxrss of our child only covers its last phase. Variants (``VARIANTS``) change one
thing each: a memory budget that makes the engine tile, or a documented allocator setting of glibc or TensorFlow.

pastiche (PyTorch) runs with its defaults, as in ``bench/peer_pastiche.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CONTENT = ROOT / "examples" / "content" / "chelsea_cat.jpg"
STYLE = ROOT / "examples" / "style" / "vangogh_starry_night.jpg"
MIB = 1024 * 1024
# name -> (environment overrides, memory budget in bytes or None). glibc reads MALLOC_* at start-up (mallopt(3)):
# MALLOC_ARENA_MAX caps the per-thread arenas, a fixed MALLOC_MMAP_THRESHOLD_ keeps large blocks in mmap so a freed
# activation goes back to the kernel instead of staying in an arena (the dynamic threshold rises to 32 MiB).
VARIANTS: dict[str, tuple[dict[str, str], int | None]] = {
    "base": ({}, None),
    "arena2": ({"MALLOC_ARENA_MAX": "2"}, None),
    "mmap1m": ({"MALLOC_MMAP_THRESHOLD_": str(1 * MIB)}, None),
    "tiled": ({}, 300 * MIB),
}


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


class Phases:
    """Peak RSS of each phase: VmHWM is reset at the start of a phase and read at its end."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self._reset()

    def _reset(self) -> None:
        Path("/proc/self/clear_refs").write_text("5")  # Linux: reset VmHWM to the current RSS
        self.started = time.perf_counter()

    def end(self, name: str) -> None:
        self.rows.append({"phase": name, "peak_mib": round(_status_kib("VmHWM") / 1024, 1),
                          "rss_after_mib": round(_status_kib("VmRSS") / 1024, 1),
                          "seconds": round(time.perf_counter() - self.started, 2)})
        self._reset()


def child(args: argparse.Namespace) -> None:
    """One engine run in phases (this process); prints one JSON line."""
    phases = Phases()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    from PIL import Image

    from shared.params import StyleParams
    from worker.engine import engine

    phases.end("imports (TensorFlow, Keras, numpy)")
    content = np.asarray(Image.open(args.content).convert("RGB"))
    style = np.asarray(Image.open(args.style).convert("RGB"))
    params = StyleParams(size=args.size, iterations=args.iterations, min_size=args.size)  # one scale
    budget = args.budget_bytes or None
    job = engine._prepare(content, [style], params, None, budget)
    phases.end("backbone build and weights, images prepared")
    grams = engine._style_grams(job)
    phases.end("style targets (forward pass of the style)")
    objective = engine._objective(job, grams)
    phases.end("content targets and normalisers (two forward passes)")
    image0 = engine._initial_image(job)
    run = engine._optimize(job, objective, image0, params.iterations, lambda *_a: False)
    phases.end(f"optimisation ({run.tracker.iteration} loss-and-gradient passes, L-BFGS)")
    plan = job.tile_plan(job.content_input.shape[:2])
    # The peak of the whole run is the largest phase peak (the resets make wait4's ru_maxrss only the last phase's).
    print(json.dumps({"phases": phases.rows, "size_px": list(job.content_input.shape[:2]),
                      "peak_rss_mib": max(row["peak_mib"] for row in phases.rows),
                      "tiling": plan.metrics() if plan else None,
                      "final_loss": float(run.tracker.best_losses[3]),
                      "seconds_per_iteration": (run.optimize_s - run.trace_s) / max(1, run.tracker.iteration - 1)}))


def _run(command: list[str], env: dict[str, str]) -> tuple[str, float, float]:
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(process.pid, 0)
    text = process.stdout.read().decode(errors="replace") if process.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command[0]} failed:\n{text[-1500:]}")
    return text, time.perf_counter() - started, usage.ru_maxrss / 1024.0


def ours(args: argparse.Namespace, variant: str) -> dict:
    overrides, budget = VARIANTS[variant]
    command = [sys.executable, __file__, "--child", "--size", str(args.size), "--iterations", str(args.iterations),
               "--content", str(args.content), "--style", str(args.style), "--budget-bytes", str(budget or 0)]
    text, wall_s, _last_phase_peak = _run(command, dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **overrides))
    row = json.loads(next(line for line in text.splitlines() if line.startswith("{")))
    if "peak_rss_mib" not in row:  # a child started before this field existed
        row["peak_rss_mib"] = max(phase["peak_mib"] for phase in row["phases"])
    return {"tool": "atelier", "variant": variant, "env": overrides, "budget_bytes": budget,
            "wall_s": round(wall_s, 1), **row}


def pastiche(args: argparse.Namespace, out_dir: Path) -> dict:
    command = [args.pastiche, "--size", str(args.size), "--num-steps", str(args.iterations), "--info-step", "1",
               "--seed", "0", "--content", str(args.content), "--styles", str(args.style),
               "--output", str(out_dir / "pastiche.png")]
    _text, wall_s, peak = _run(command, dict(os.environ))
    return {"tool": "pastiche", "peak_rss_mib": round(peak, 1), "wall_s": round(wall_s, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--content", type=Path, default=CONTENT)
    parser.add_argument("--style", type=Path, default=STYLE)
    parser.add_argument("--pastiche", default="", help="pastiche executable (throwaway venv); omitted: not run")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--budget-bytes", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return 0
    rows = []
    if args.pastiche:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            rows.append(pastiche(args, Path(tmp)))
        print(json.dumps(rows[-1]), flush=True)
    for variant in args.variants.split(","):
        rows.append(ours(args, variant))
        print(json.dumps(rows[-1]), flush=True)
    record = {"size_px": args.size, "iterations": args.iterations, "content": args.content.name,
              "style": args.style.name, "load_average_at_end": os.getloadavg(), "runs": rows,
              "bench_peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    out = args.out or ROOT / "bench" / "results" / "memory" / f"{args.size}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
