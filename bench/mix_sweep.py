"""Style mixing under both mixes (issue 13, item 3): a blend sweep sheet, and what the barycenter costs.

    python bench/mix_sweep.py sheet [--size 256] [--iterations 150] [--out docs/sheets] [--group wasserstein|gram|ends]
    python bench/mix_sweep.py cost [--sizes 256,512]

``sheet`` styles the repository's cat (examples/content) with a sweep of blends from Starry Night to The Scream
(examples/style), ``style_blend`` 1:0, 0.75:0.25, 0.5:0.5, 0.25:0.75, 0:1, once with ``style_mix=gram`` (averaged
Grams) and once with ``style_mix=wasserstein`` (the Gram of the W2 barycenter of the styles' feature Gaussians),
real VGG19 weights, every other parameter at its default. The two end points have one style of non-zero weight, so
both mixes give the very same targets there (tests/engine/test_wasserstein.py checks it): they are run once and
shown in both rows. Each stylization is saved under ``var/mix_sweep/`` and skipped when there, so the three groups
can run as three processes at once (``--group``); the last to finish composes the sheet,
``<out>/mix_sweep_<content>_<size>.jpg``, and its records ``<out>/mix_sweep.json``.

``cost`` times the style-target stage side by side for both mixes at each size (forward passes of both styles
plus, for wasserstein, the barycenter), and the barycenter's fixed point per layer (channels, iterations, seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.sheets import JPEG_QUALITY, compose_sheet  # noqa: E402 (after the path fix, like bench/sheets.py)

CONTENT = ROOT / "examples" / "content" / "chelsea_cat.jpg"
STYLES = (ROOT / "examples" / "style" / "vangogh_starry_night.jpg",
          ROOT / "examples" / "style" / "munch_the_scream.jpg")
BLENDS = ((1.0, 0.0), (0.75, 0.25), (0.5, 0.5), (0.25, 0.75), (0.0, 1.0))
MIXES = ("gram", "wasserstein")


def _load() -> tuple[Any, list[Any]]:
    from shared.images import load_rgb

    return (load_rgb(CONTENT.read_bytes(), field=CONTENT.name),
            [load_rgb(path.read_bytes(), field=path.name) for path in STYLES])


def _blend_label(blend: tuple[float, float]) -> str:
    return f"{blend[0]:g}:{blend[1]:g}"


GROUPS = {"wasserstein": "the three mixed blends under wasserstein", "gram": "the three mixed blends under gram",
          "ends": "the two one-style end points (the same targets under both mixes)"}


def _runs(group: str | None) -> list[tuple[str, tuple[float, float]]]:
    interior = [("wasserstein", b) for b in BLENDS if min(b) > 0], [("gram", b) for b in BLENDS if min(b) > 0]
    ends = [("gram", b) for b in BLENDS if min(b) == 0]
    groups = {"wasserstein": interior[0], "gram": interior[1], "ends": ends}
    return groups[group] if group else [run for runs in groups.values() for run in runs]


def _run_path(runs_dir: Path, mix: str, blend: tuple[float, float], size_px: int, iterations: int) -> Path:
    return runs_dir / f"{mix}_{blend[0]:g}_{blend[1]:g}_{size_px}px_{iterations}it.png"


def sheet(size_px: int, iterations: int, out: Path, group: str | None = None, partial: bool = False) -> int:
    """Run the sweep's stylizations (only ``group``'s when given, so groups can run in parallel processes), each
    saved under ``var/mix_sweep/`` and skipped when already there, then compose the sheet once all exist."""
    from PIL import Image

    from shared.params import StyleParams
    from worker.engine import stylize

    content, styles = _load()
    runs_dir = ROOT / "var" / "mix_sweep"  # per-run outputs (ignored by git); the sheet and records go to out
    runs_dir.mkdir(parents=True, exist_ok=True)
    for mix, blend in [] if partial else _runs(group):
        path = _run_path(runs_dir, mix, blend, size_px, iterations)
        if path.is_file():
            continue
        params = StyleParams.from_mapping({"size": size_px, "iterations": iterations, "style_blend": list(blend),
                                           "style_mix": mix})
        result = stylize(content, styles, params)
        m = result.metrics
        Image.fromarray(result.image).save(path)
        record = {"mix": mix, "blend": list(blend), "seconds": m["seconds"],
                  "seconds_per_iteration": m["seconds_per_iteration"], "iterations_run": m["iterations_run"],
                  "losses": m["losses"]["final"], "precision": m["precision"], "weights": m["weights"]}
        path.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
        print(f"{mix} {_blend_label(blend)}: {m['seconds']:.1f} s, style {m['losses']['final']['style']:.4g}",
              file=sys.stderr, flush=True)
    paths = {run: _run_path(runs_dir, *run, size_px, iterations) for run in _runs(None)}
    done = {run: path for run, path in paths.items() if path.is_file()}
    if not done or (len(done) < len(paths) and not partial):
        print("some runs are missing (other groups still running?): no sheet yet (--partial: blanks)",
              file=sys.stderr)
        return 0
    results = {run: np.asarray(Image.open(path)) for run, path in done.items()}
    records = [json.loads(path.with_suffix(".json").read_text()) for path in done.values()]
    blank = np.full_like(next(iter(results.values())), 255)
    for mix in MIXES:
        for blend in BLENDS:
            if min(blend) == 0:  # one style of non-zero weight: the same targets under both mixes (module docstring)
                results[(mix, blend)] = results.get(("gram", blend), blank)
            results.setdefault((mix, blend), blank)  # --partial: a run not made yet
    _score(records, results, content, styles)
    height_px = next(iter(results.values())).shape[0]
    header = compose_sheet([(Image.fromarray(content), f"content: {CONTENT.name}"),
                            (Image.fromarray(styles[0]), f"style A: {STYLES[0].name}"),
                            (Image.fromarray(styles[1]), f"style B: {STYLES[1].name}")], height_px)
    rows = [header]
    for mix in MIXES:
        rows.append(compose_sheet([(Image.fromarray(results[(mix, blend)]),
                                    f"{mix}  A:B = {_blend_label(blend)}"
                                    + ("" if results[(mix, blend)] is not blank else " (not run yet)"))
                                   for blend in BLENDS], height_px))
    width_px = max(row.width for row in rows)
    grid = Image.new("RGB", (width_px, sum(row.height for row in rows) + 6 * (len(rows) - 1)), "white")
    y = 0
    for row in rows:
        grid.paste(row, (0, y))
        y += row.height + 6
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"mix_sweep_{CONTENT.stem}_{size_px}.jpg"
    grid.save(path, quality=JPEG_QUALITY, optimize=True)
    record_path = out / "mix_sweep.json"
    record = {"sheet": path.name, "content": CONTENT.name, "styles": [p.name for p in STYLES], "size": size_px,
              "iterations": iterations, "runs": records}
    old = json.loads(record_path.read_text()) if record_path.is_file() else []
    kept = [r for r in old if r.get("sheet") != path.name]
    record_path.write_text(json.dumps([*kept, record], indent=2) + "\n")
    print(path)
    return 0


def _score(records: list[dict[str, Any]], results: dict, content: Any, styles: list[Any]) -> None:
    """The independent evaluator's scores (bench/evaluate.py: no VGG19) of every run against style A and style B,
    into its record, and a Markdown table for docs/engine.md."""
    from bench.evaluate import evaluate

    print("| mix | A:B | SSIM | colour SWD to A / B | random-net Gram to A / B | Gabor to A / B |")
    print("|---|---|---|---|---|---|")
    for record in records:
        image = results[(record["mix"], tuple(record["blend"]))]
        to_a, to_b = evaluate(image, content, styles[0]), evaluate(image, content, styles[1])
        record["scores"] = {"to_a": to_a, "to_b": to_b}
        print(f"| {record['mix']} | {_blend_label(tuple(record['blend']))} | {to_a['ssim']:.3f} | "
              f"{to_a['color_swd']:.2f} / {to_b['color_swd']:.2f} | {to_a['gram_random']:.3f} / "
              f"{to_b['gram_random']:.3f} | {to_a['gabor']:.3f} / {to_b['gabor']:.3f} |", flush=True)


def cost(sizes: list[int]) -> int:
    from shared.params import StyleParams
    from worker.engine import compute_style_targets, wasserstein

    content, styles = _load()
    layers: list[dict[str, Any]] = []
    original = wasserstein.barycenter

    def timed(gaussians, weights, **kwargs):  # the fixed point of one layer, timed
        started = time.perf_counter()
        result = original(gaussians, weights, **kwargs)
        layers.append({"channels": int(result.gaussian.mean.shape[0]), "iterations": result.iterations,
                       "seconds": round(time.perf_counter() - started, 4)})
        return result

    wasserstein.barycenter = timed
    rows = []
    try:
        # Warm-up: the backbone build and the forward trace are paid once, not by the first mix timed.
        compute_style_targets(styles, StyleParams.from_mapping({"size": min(sizes), "style_mix": "gram"}))
        for size_px in sizes:
            row: dict[str, Any] = {"size": size_px}
            for mix in MIXES:
                params = StyleParams.from_mapping({"size": size_px, "style_mix": mix, "style_blend": [0.5, 0.5]})
                compute_style_targets(styles, params.replace(style_mix="gram"))  # trace this size first
                layers.clear()
                started = time.perf_counter()
                compute_style_targets(styles, params)
                row[f"{mix}_targets_s"] = round(time.perf_counter() - started, 3)
                if mix == "wasserstein":
                    row["barycenter_layers"] = list(layers)
                    row["barycenter_s"] = round(sum(layer["seconds"] for layer in layers), 3)
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        wasserstein.barycenter = original
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    sheet_parser = commands.add_parser("sheet", help="the blend sweep sheet under both mixes")
    sheet_parser.add_argument("--size", type=int, default=256)
    sheet_parser.add_argument("--iterations", type=int, default=150)
    sheet_parser.add_argument("--out", type=Path, default=ROOT / "docs" / "sheets")
    sheet_parser.add_argument("--group", choices=sorted(GROUPS), default=None,
                              help="run only these stylizations: " + "; ".join(f"{k}: {v}" for k, v in GROUPS.items()))
    sheet_parser.add_argument("--partial", action="store_true", help="run nothing: compose the sheet from what "
                              "var/mix_sweep holds, runs not made yet as blank panels")
    cost_parser = commands.add_parser("cost", help="seconds of the style-target stage and of the barycenter")
    cost_parser.add_argument("--sizes", default="256,512")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.command == "sheet":
        return sheet(args.size, args.iterations, args.out, args.group, args.partial)
    return cost([int(size) for size in args.sizes.split(",")])


if __name__ == "__main__":
    sys.exit(main())
