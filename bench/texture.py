"""Fine texture (issue 13, item 0): the engine under parameter variants and pastiche, scored by ``bench/evaluate.py``.

    python bench/texture.py --size 256 --iterations 300 \
        --variant 'old={"tv_weight": 1e-3}' --variant 'default={}' --pastiche /tmp/pastiche-venv/bin/pastiche \
        --json-out bench/results/texture/ablation_256.json

Each variant is ``name=JSON``: parameter overrides on top of the engine's defaults (``{}`` is the defaults), plus
one key that is not a parameter, ``lbfgs_history`` (the L-BFGS memory, ``optimizers.LBFGS_HISTORY``, set for that
variant only), to test the optimizer's part in the result.
Every variant runs on every sample pair (``bench/sheets.py``'s three) one after the other in this process, pastiche
(when given, at its own defaults: ``--size --num-steps --seed 0``) as a subprocess. Besides the evaluator's four
metrics each record has ``gabor_bias`` (``evaluate.gabor_bias``): the *signed* mean over bands of
``log(e_out / e_style)``, so a negative value says the output has less fine-texture energy than the style
(softer), a positive one more (noisier); ``gabor`` alone cannot tell the two apart. The outputs are kept as PNG
under ``--out-dir`` for the sheets.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import evaluate as ev  # noqa: E402
from bench.sheets import IMAGE_DIRS, PAIRS, find_image  # noqa: E402

METRICS = (*ev.METRICS, "gabor_bias")


def score(output: np.ndarray, content: np.ndarray, style: np.ndarray) -> dict[str, float]:
    style_at = ev.resize_long_side(np.asarray(style), max(output.shape[:2]))
    return {**ev.evaluate(output, content, style), "gabor_bias": ev.gabor_bias(output, style_at)}


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    name, _, overrides = text.partition("=")
    if not name or not overrides:
        raise argparse.ArgumentTypeError(f"variant {text!r}: expected NAME=JSON, e.g. 'notv={{\"tv_weight\": 0}}'")
    return name, json.loads(overrides)


def run_pastiche(binary: str, content: Path, style: Path, size_px: int, iterations: int) -> tuple[np.ndarray, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "pastiche.png"
        started = time.perf_counter()
        subprocess.run([binary, "--size", str(size_px), "--num-steps", str(iterations), "--seed", "0",
                        "--no-verbose", "--content", str(content), "--styles", str(style), "--output", str(out)],
                       check=True, capture_output=True)
        return ev.load(out), time.perf_counter() - started


def write_results(path: Path, records: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    """The records, their summary and the load average at the end (how idle the machine was), as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"records": records, "summary": summary, "load_average": os.getloadavg()},
                               indent=2) + "\n")


def summarise(records: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean of each metric (and of seconds) per variant over the pairs."""
    by_variant: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_variant.setdefault(record["variant"], []).append(record)
    return {name: {key: statistics.fmean(r[key] for r in rows) for key in (*METRICS, "seconds")}
            for name, rows in by_variant.items()}


def write_sheets(out_dir: Path, size_px: int, names: list[str], sheet_dir: Path, dirs: tuple[Path, ...],
                 suffix: str = "texture") -> list[Path]:
    """content | style | one panel per run name, per sample pair, from the PNGs a run left in ``out_dir``; PNG, so
    no JPEG artefacts sit on the fine texture being judged."""
    from PIL import Image

    from bench.sheets import compose_sheet

    sheet_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for content_name, style_name in PAIRS:
        content_path, style_path = find_image("content", content_name, dirs), find_image("style", style_name, dirs)
        stem = f"{content_path.stem}__{style_path.stem}_{size_px}"
        runs = [(out_dir / f"{stem}_{name}.png", name) for name in names]
        if not all(path.is_file() for path, _ in runs):
            continue
        panels = [(Image.open(content_path).convert("RGB"), f"content: {content_name}"),
                  (Image.open(style_path).convert("RGB"), f"style: {style_name}"),
                  *((Image.open(path).convert("RGB"), name) for path, name in runs)]
        height_px = Image.open(runs[0][0]).height
        path = sheet_dir / f"{stem}_{suffix}.png"
        compose_sheet(panels, height_px).save(path, optimize=True)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--variant", action="append", type=parse_variant, default=[],
                        help="NAME=JSON parameter overrides; repeatable (default: one variant, the defaults)")
    parser.add_argument("--pastiche", help="pastiche executable (a throwaway venv); adds a 'pastiche' row per pair")
    parser.add_argument("--pairs", default=None, help="comma-separated pair numbers, 1-based (default: all)")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "var" / "texture")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--image-dir", type=Path, action="append",
                        help="where the pairs' content/ and style/ folders are (default: ../shared/data/images, "
                             "then examples/)")
    parser.add_argument("--sheets", metavar="NAMES",
                        help="only compose sheets (content | style | each named run, comma-separated) from the PNGs in "
                             "--out-dir at --size, into --sheet-dir; no runs")
    parser.add_argument("--sheet-dir", type=Path, default=ROOT / "docs" / "sheets")
    parser.add_argument("--sheet-suffix", default="texture")
    args = parser.parse_args(argv)
    if args.sheets:
        dirs = tuple(args.image_dir) if args.image_dir else IMAGE_DIRS
        for path in write_sheets(args.out_dir, args.size, args.sheets.split(","), args.sheet_dir, dirs,
                                 args.sheet_suffix):
            print(path)
        return 0
    variants = args.variant or [("default", {})]
    pairs = [PAIRS[int(n) - 1] for n in args.pairs.split(",")] if args.pairs else list(PAIRS)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from PIL import Image

    dirs = tuple(args.image_dir) if args.image_dir else IMAGE_DIRS
    from shared.images import load_rgb
    from shared.params import StyleParams
    from worker.engine import optimizers, stylize

    args.out_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for content_name, style_name in pairs:
        content_path, style_path = (find_image("content", content_name, dirs),
                                      find_image("style", style_name, dirs))
        if content_path is None or style_path is None:
            print(f"skipping {content_name} x {style_name}: not found", file=sys.stderr)
            continue
        content = load_rgb(content_path.read_bytes(), field=content_name)
        style = load_rgb(style_path.read_bytes(), field=style_name)
        runs: list[tuple[str, dict[str, Any]]] = list(variants)
        if args.pastiche:
            runs.append(("pastiche", {}))
        for name, overrides in runs:
            if name == "pastiche":
                image, seconds = run_pastiche(args.pastiche, content_path, style_path, args.size, args.iterations)
            else:
                values = dict(overrides)
                history = values.pop("lbfgs_history", optimizers.LBFGS_HISTORY)
                params = StyleParams.from_mapping({"size": args.size, "iterations": args.iterations, **values})
                default_history, optimizers.LBFGS_HISTORY = optimizers.LBFGS_HISTORY, history
                try:
                    result = stylize(content, [style], params)
                finally:
                    optimizers.LBFGS_HISTORY = default_history
                image, seconds = result.image, result.metrics["seconds"]
            Image.fromarray(image).save(args.out_dir / f"{content_path.stem}__{style_path.stem}_{args.size}_{name}.png")
            record = {"variant": name, "overrides": overrides, "content": content_name, "style": style_name,
                      "size": args.size, "iterations": args.iterations, "seconds": seconds,
                      **score(image, content, style)}
            records.append(record)
            print(json.dumps(record), flush=True)
    summary = summarise(records)
    print(f"{'variant':<16}" + "".join(f"{key:>12}" for key in (*METRICS, "seconds")))
    for name, means in summary.items():
        print(f"{name:<16}" + "".join(f"{means[key]:>12.4f}" for key in (*METRICS, "seconds")))
    if args.json_out:
        write_results(args.json_out, records, summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
