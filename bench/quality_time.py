"""Time to quality (issue 13, item 1): evaluator score against wall-clock seconds for single-scale and
coarse-to-fine runs of our engine and for pastiche at its defaults, side by side in one process run.

    python bench/quality_time.py --size 512 --pairs 1,2 --pastiche /tmp/pastiche-venv/bin/pastiche \
        --run 'single={"min_size": 4096, "iterations": 300}' \
        --run 'c2f={"min_size": 128, "scale_iterations": 100, "iterations": 150}' \
        --json-out bench/results/quality_time/512.json
    python bench/quality_time.py --chart bench/results/quality_time/512.json --chart-dir docs/quality_time

Every run records a checkpoint every ``--every`` iterations: the current best image (for a coarse scale, resized up
to the output size with Lanczos: what a user stopping there would get) and the seconds since the call started.
Checkpoints are scored after the run, so scoring costs no run time. pastiche saves its own checkpoints
(``--workspace --workspace-step``); its seconds are its progress table's, less its step-0 figure (process start,
model load and style targets), which favours pastiche slightly: our seconds include the style targets and the step
tracing at every scale. A warm-up run first builds VGG19 so no run pays for that.

**Score** (lower is better; 1.0 = the reference run's final image): the mean over the evaluator's four metrics of
each metric's ratio to the reference's, with SSIM taken as ``1 - ssim`` so all four are distances:

    score = mean(colour_swd / ref, gram_random / ref, gabor / ref, (1 - ssim) / (1 - ssim_ref))

The reference is the first ``--run`` (today's single-scale default). ``reaches_reference_s`` is the first
checkpoint time at which a run's score is at or below 1.0 (and stays there to its end), ``fraction_of_reference_time``
that time over the reference run's total.
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
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import evaluate as ev  # noqa: E402
from bench.sheets import IMAGE_DIRS, PAIRS, find_image  # noqa: E402
from bench.texture import parse_variant, write_results  # noqa: E402

DISTANCES = ("color_swd", "gram_random", "gabor")
STEP_ROW = re.compile(r"^(\d+)\s+([\d.]+)\s+\S+\s*$")


def score(scores: dict[str, float], reference: dict[str, float]) -> float:
    """The composite score (module docstring): 1.0 for the reference itself, lower is better."""
    ratios = [scores[key] / reference[key] for key in DISTANCES]
    ratios.append((1.0 - scores["ssim"]) / (1.0 - reference["ssim"]))
    return float(np.mean(ratios))


def reaches(curve: list[dict[str, Any]], target: float = 1.0) -> float | None:
    """The first checkpoint time from which the score stays at or below ``target``; None when it never does."""
    reached = None
    for point in curve:
        if point["score"] <= target:
            reached = point["seconds"] if reached is None else reached
        else:
            reached = None
    return reached


def run_ours(content: np.ndarray, style: np.ndarray, values: dict[str, Any], size_px: int, every: int):
    from shared.params import StyleParams
    from worker.engine import stylize

    params = StyleParams.from_mapping({"size": size_px, "progress_every": every, **values})
    checkpoints: list[tuple[float, np.ndarray]] = []

    def on_progress(progress) -> None:
        checkpoints.append((progress.elapsed_s, progress.preview()))

    result = stylize(content, [style], params, on_progress)
    checkpoints.append((result.metrics["seconds"], result.image))
    return checkpoints, result.metrics


def run_pastiche(binary: str, content: Path, style: Path, size_px: int, steps: int, every: int):
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        completed = subprocess.run(
            [binary, "--size", str(size_px), "--num-steps", str(steps), "--seed", "0", "--info-step", "1",
             "--workspace", str(work / "ws"), "--workspace-step", str(every), "--content", str(content),
             "--styles", str(style), "--output", str(work / "out.png")],
            check=True, capture_output=True, text=True)
        elapsed = {int(m[1]): float(m[2]) for line in completed.stdout.splitlines() if (m := STEP_ROW.match(line))}
        start = elapsed[0]
        checkpoints = [(elapsed[int(path.stem)] - start, ev.load(path))
                       for path in sorted((work / "ws").glob("*.png"), key=lambda p: int(p.stem))]
        return checkpoints, {"steps": steps, "setup_s": start}


def save_final(out_dir: Path, content: Path, style: Path, size_px: int, name: str, image: np.ndarray) -> None:
    from PIL import Image

    out_dir.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(out_dir / f"{content.stem}__{style.stem}_{size_px}_{name}.png")


def curve_of(checkpoints, content, style, output_hw) -> list[dict[str, Any]]:
    points = []
    for seconds, image in checkpoints:
        if image.shape[:2] != tuple(output_hw):
            image = ev.resize(image, tuple(output_hw)).astype(np.uint8)
        points.append({"seconds": round(float(seconds), 3), **ev.evaluate(image, content, style)})
    return points


def write_charts(results_path: Path, chart_dir: Path) -> list[Path]:
    """One PNG per pair of a results file: score against seconds for every run, the reference's 1.0 dashed."""
    from bench.chart import line_chart

    chart_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for record in json.loads(results_path.read_text())["records"]:
        series = {name: [(p["seconds"], p["score"]) for p in run["curve"]] for name, run in record["runs"].items()}
        title = (f"{record['content']} x {record['style']}, {record['size']} px: evaluator score (1.0 = "
                 f"{record['reference']} at its end; lower is better)")
        path = chart_dir / f"{Path(record['content']).stem}__{Path(record['style']).stem}_{record['size']}.png"
        line_chart(series, "seconds", "score", title=title, guide_y=1.0, y_max=2.0).save(path, optimize=True)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--run", action="append", type=parse_variant, default=[],
                        help="NAME=JSON parameter overrides; the first is the reference")
    parser.add_argument("--pastiche", help="pastiche executable (throwaway venv): adds a 'pastiche' curve")
    parser.add_argument("--pastiche-steps", type=int, default=300)
    parser.add_argument("--every", type=int, default=10, help="iterations between checkpoints")
    parser.add_argument("--pairs", default="1", help="comma-separated pair numbers, 1-based")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--image-dir", type=Path, action="append",
                        help="where the pairs' content/ and style/ folders are (default: ../shared/data/images, "
                             "then examples/)")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "var" / "quality_time",
                        help="each run's final image, as PNG")
    parser.add_argument("--chart", type=Path, help="only draw the charts of this results file (no runs)")
    parser.add_argument("--chart-dir", type=Path, default=ROOT / "docs" / "quality_time")
    args = parser.parse_args(argv)
    if args.chart:
        for path in write_charts(args.chart, args.chart_dir):
            print(path)
        return 0
    runs = args.run or [("single", {"min_size": 4096, "iterations": 300})]

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    dirs = tuple(args.image_dir) if args.image_dir else IMAGE_DIRS
    from shared.images import load_rgb
    from shared.params import StyleParams
    from worker.engine import stylize

    records = []
    for number in args.pairs.split(","):
        content_name, style_name = PAIRS[int(number) - 1]
        content_path, style_path = (find_image("content", content_name, dirs),
                                      find_image("style", style_name, dirs))
        content = load_rgb(content_path.read_bytes(), field=content_name)
        style = load_rgb(style_path.read_bytes(), field=style_name)
        stylize(content, [style], StyleParams(size=64, iterations=2))  # warm-up: builds VGG19 once
        curves: dict[str, Any] = {}
        output_hw = None
        for name, values in runs:
            checkpoints, metrics = run_ours(content, style, values, args.size, args.every)
            output_hw = output_hw or checkpoints[-1][1].shape[:2]
            save_final(args.out_dir, content_path, style_path, args.size, name, checkpoints[-1][1])
            curves[name] = {"params": values, "seconds": metrics["seconds"], "scales": metrics.get("scales"),
                            "curve": curve_of(checkpoints, content, style, output_hw)}
            print(f"{content_name} {name}: {metrics['seconds']:.1f} s", file=sys.stderr, flush=True)
        if args.pastiche:
            checkpoints, meta = run_pastiche(args.pastiche, content_path, style_path, args.size,
                                             args.pastiche_steps, args.every)
            save_final(args.out_dir, content_path, style_path, args.size, "pastiche", checkpoints[-1][1])
            curves["pastiche"] = {"params": meta, "seconds": checkpoints[-1][0],
                                  "curve": curve_of(checkpoints, content, style, output_hw)}
        reference_name = runs[0][0]
        reference = {key: curves[reference_name]["curve"][-1][key] for key in ev.METRICS}
        reference_s = curves[reference_name]["seconds"]
        for run in curves.values():
            for point in run["curve"]:
                point["score"] = round(score(point, reference), 4)
            run["final_score"] = run["curve"][-1]["score"]
            run["reaches_reference_s"] = reaches(run["curve"])
            run["fraction_of_reference_time"] = (run["reaches_reference_s"] / reference_s
                                                 if run["reaches_reference_s"] is not None else None)
        records.append({"content": content_name, "style": style_name, "size": args.size,
                        "reference": reference_name, "runs": curves})
        for name, run in curves.items():
            print(f"{content_name:<26} {name:<12} total {run['seconds']:7.1f} s  final score {run['final_score']:.3f}"
                  f"  reaches 1.0 at {run['reaches_reference_s']} s ({run['fraction_of_reference_time']})",
                  flush=True)
    summary = {}
    for name in records[0]["runs"]:
        fractions = [r["runs"][name]["fraction_of_reference_time"] for r in records]
        summary[name] = {"final_score_mean": statistics.fmean(r["runs"][name]["final_score"] for r in records),
                         "fractions_of_reference_time": fractions}
    print(json.dumps(summary, indent=2))
    if args.json_out:
        write_results(args.json_out, records, summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(argv=None))
