"""Resolution independence (issue 13): the same parameters at several output sizes, scored by ``bench/evaluate.py``.

    python bench/resolution.py --sizes 256,512,1024 [--params '{}'] [--pairs 1,2] \
        --json-out bench/results/resolution/default.json

The engine's losses are relative (each divided by its target's mean square) and its TV term is a mean over pixels,
so the same weights should mean the same trade-off at any size; this measures whether the pictures agree. For
every sample pair (``bench/sheets.py``'s) and every size it runs ``stylize`` with ``--params`` over the defaults
(coarse to fine: the ladder grows with the size), then reports

- the evaluator's scores at each size (each output against the content and the style at the output's size, which
  is how the engine scales the style), and per metric the band over the sizes (min, max, max - min);
- ``at_smallest``: the evaluator's scores of each output resized (Lanczos) to the smallest size's shape. SSIM's
  11x11 window and the Gabor periods (4-16 px) are fixed in pixels, so at a larger size they see finer detail of
  the same picture; brought to one size, the scores compare the pictures rather than the resolutions;
- ``vs_smallest``: each output at the smallest size's shape compared with that output, by luminance SSIM and Lab
  sliced Wasserstein: 1 and 0 would be the same picture at two resolutions.

Records are written after every run, so an interrupted run keeps what it measured. Outputs are PNGs under
``--out-dir``; ``--sheet-dir`` gets one sheet per pair (content | style | each size, at the smallest's height).
``--rescore`` recomputes every score of the ``--json-out`` records from those PNGs (no engine run).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import evaluate as ev  # noqa: E402
from bench.sheets import IMAGE_DIRS, PAIRS, compose_sheet, find_image  # noqa: E402
from bench.texture import METRICS, score, write_results  # noqa: E402


def agreement(output: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """How close ``output`` is to ``reference`` once brought to its shape: luminance SSIM and Lab colour SWD."""
    at = ev.resize(output, reference.shape[:2])
    return {"ssim": ev.ssim(at, reference), "color_swd": ev.color_distance(at, reference)}


def _band(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "max": max(values), "spread": max(values) - min(values)}


def bands(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per pair and metric: the min, max and spread over the sizes of the scores at each output's own size, and
    (``at_smallest``) of the scores with every output brought to the smallest size."""
    by_pair: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_pair.setdefault(f"{record['content']} x {record['style']}", []).append(record)
    return {pair: {**{key: _band([r[key] for r in rows]) for key in METRICS},
                   "at_smallest": {key: _band([r["at_smallest"][key] for r in rows]) for key in METRICS}}
            for pair, rows in by_pair.items()}


def scores(image: np.ndarray, smallest: np.ndarray, content: np.ndarray, style: np.ndarray) -> dict[str, Any]:
    """The scores of one output: at its own size, at the smallest output's shape, and against that output."""
    return {**score(image, content, style), "at_smallest": score(ev.resize(image, smallest.shape[:2]), content, style),
            "vs_smallest": agreement(image, smallest)}


def rescore(json_path: Path, out_dir: Path, dirs: tuple[Path, ...]) -> list[dict[str, Any]]:
    """The stored records with every score recomputed from the PNGs the run left (sizes, ladders, seconds kept)."""
    from shared.images import load_rgb

    records = json.loads(json_path.read_text())["records"]
    smallest: dict[tuple[str, str], np.ndarray] = {}
    for record in sorted(records, key=lambda r: r["size"]):
        content_path = find_image("content", record["content"], dirs)
        style_path = find_image("style", record["style"], dirs)
        image = ev.load(out_dir / f"{content_path.stem}__{style_path.stem}_{record['size']}.png")
        reference = smallest.setdefault((record["content"], record["style"]), image)
        record.update(scores(image, reference, load_rgb(content_path.read_bytes(), field="content"),
                             load_rgb(style_path.read_bytes(), field="style")))
    return records


def write_sheet(path: Path, content: np.ndarray, style: np.ndarray, outputs: list[tuple[int, np.ndarray]]) -> None:
    from PIL import Image

    height_px = min(image.shape[0] for _size, image in outputs)
    panels = [(Image.fromarray(content), "content"), (Image.fromarray(style), "style"),
              *((Image.fromarray(image), f"{size} px (shown at {height_px} px high)") for size, image in outputs)]
    path.parent.mkdir(parents=True, exist_ok=True)
    compose_sheet(panels, height_px).save(path, optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="256,512,1024")
    parser.add_argument("--params", default="{}", help="JSON overrides on top of the defaults, the same at every size")
    parser.add_argument("--pairs", default=None, help="comma-separated pair numbers, 1-based (default: all)")
    parser.add_argument("--image-dir", type=Path, action="append",
                        help="where content/ and style/ are (default: ../shared/data/images, then examples/)")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "var" / "resolution")
    parser.add_argument("--sheet-dir", type=Path, default=None, help="write one sheet per pair here")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--rescore", action="store_true", help="recompute the --json-out records' scores from the "
                        "PNGs in --out-dir; no runs")
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    overrides = json.loads(args.params)
    pairs = [PAIRS[int(n) - 1] for n in args.pairs.split(",")] if args.pairs else list(PAIRS)
    dirs = tuple(args.image_dir) if args.image_dir else IMAGE_DIRS
    if args.rescore:
        document = json.loads(args.json_out.read_text())  # keeps the run's own load average
        document["records"] = rescore(args.json_out, args.out_dir, dirs)
        document["summary"] = bands(document["records"])
        args.json_out.write_text(json.dumps(document, indent=2) + "\n")
        return 0

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from PIL import Image

    from shared.images import load_rgb
    from shared.params import StyleParams
    from worker.engine import stylize

    args.out_dir.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    for content_name, style_name in pairs:
        content_path, style_path = find_image("content", content_name, dirs), find_image("style", style_name, dirs)
        if content_path is None or style_path is None:
            print(f"skipping {content_name} x {style_name}: not found", file=sys.stderr)
            continue
        content = load_rgb(content_path.read_bytes(), field=content_name)
        style = load_rgb(style_path.read_bytes(), field=style_name)
        outputs: list[tuple[int, np.ndarray]] = []
        for size_px in sizes:
            params = StyleParams.from_mapping({**overrides, "size": size_px})
            result = stylize(content, [style], params)
            image = result.image
            Image.fromarray(image).save(args.out_dir / f"{content_path.stem}__{style_path.stem}_{size_px}.png")
            outputs.append((size_px, image))
            record = {"content": content_name, "style": style_name, "size": size_px, "params": overrides,
                      "scales_px": [s["size_px"] for s in result.metrics.get("scales") or []] or [size_px],
                      "seconds": result.metrics["seconds"], **scores(image, outputs[0][1], content, style)}
            records.append(record)
            print(json.dumps(record), flush=True)
            if args.json_out:
                write_results(args.json_out, records, bands(records))
        if args.sheet_dir:
            write_sheet(args.sheet_dir / f"{content_path.stem}__{style_path.stem}_resolution.png",
                        np.asarray(content), np.asarray(style), outputs)
    summary = bands(records)
    for pair, metrics in summary.items():
        print(pair + ": " + ", ".join(f"{key} {metrics[key]['min']:.3f}-{metrics[key]['max']:.3f}" for key in METRICS))
    if args.json_out:
        write_results(args.json_out, records, summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
