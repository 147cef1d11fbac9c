"""Print sizes: one ``atelier stylize`` run at a large size, its time, peak memory and tiling, and a full-resolution
crop of the result (issue 13, item 2).

    python bench/print.py --size 2048 --iterations 1 [--budget-bytes N] [--crop-px 512] [--name NAME]

The run is the local CLI in a child process (what a user runs; ``ATELIER_ENGINE_MEMORY_BYTES`` is set from
``--budget-bytes`` when given, else the machine's default applies), so the peak resident memory (``wait4`` rusage)
belongs to that run alone. Writes ``bench/results/print/<name>.json`` (the command, wall seconds, peak RSS, the
engine's metrics: tiling, seconds per iteration, losses) and ``docs/print/<name>_crop.png``, a ``--crop-px`` square
from the middle of the output at full resolution.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTENT = ROOT / "examples" / "content" / "astronaut_portrait.jpg"
STYLE = ROOT / "examples" / "style" / "munch_the_scream.jpg"


def run(args: argparse.Namespace) -> dict:
    name = args.name or f"{args.size}px_{args.iterations}it"
    results = ROOT / "bench" / "results" / "print"
    crops = ROOT / "docs" / "print"
    results.mkdir(parents=True, exist_ok=True)
    crops.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        output, report = Path(tmp) / "out.png", Path(tmp) / "report.json"
        command = [str(ROOT / ".venv" / "bin" / "atelier"), "stylize", str(args.content), str(args.style),
                   "-o", str(output), "--size", str(args.size), "--iterations", str(args.iterations),
                   "--report", str(report), "-q"]
        if args.init_image:  # refine an earlier (smaller) result at the print size: one scale, from that picture
            command += ["--init-image", str(args.init_image)]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        if args.budget_bytes:
            env["ATELIER_ENGINE_MEMORY_BYTES"] = str(args.budget_bytes)
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)  # this child's own rusage
        wall_s = time.perf_counter() - started
        log = process.stdout.read().decode(errors="replace") if process.stdout else ""
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"atelier stylize failed ({os.waitstatus_to_exitcode(status)}):\n{log[-2000:]}")
        metrics = json.loads(report.read_text())
        crop = _crop(output, args.crop_px, crops / f"{name}_crop.png")
    record = {
        "name": name,
        "command": " ".join(["atelier", "stylize", Path(args.content).name, Path(args.style).name, "-o", "OUT.png",
                             *command[6:10], *(["--init-image", args.init_image.name] if args.init_image else [])]),
        "budget_bytes": args.budget_bytes or "default (ATELIER_ENGINE_MEMORY_BYTES unset)",
        "wall_s": round(wall_s, 1),
        "peak_rss_mib": round(usage.ru_maxrss / 1024.0, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "load_average_at_end": os.getloadavg(),
        "crop": crop,
        "metrics": metrics,
    }
    (results / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def _crop(output: Path, crop_px: int, target: Path) -> dict:
    from PIL import Image

    with Image.open(output) as image:
        width, height = image.size
        left, top = max(0, (width - crop_px) // 2), max(0, (height - crop_px) // 2)
        box = (left, top, min(width, left + crop_px), min(height, top + crop_px))
        image.crop(box).save(target)
    return {"output_px": [width, height], "box": list(box), "file": str(target.relative_to(ROOT))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--iterations", type=int, default=1)
    parser.add_argument("--content", type=Path, default=CONTENT)
    parser.add_argument("--style", type=Path, default=STYLE)
    parser.add_argument("--budget-bytes", type=int, default=0, help="ATELIER_ENGINE_MEMORY_BYTES for the run")
    parser.add_argument("--crop-px", type=int, default=512)
    parser.add_argument("--name", default="")
    parser.add_argument("--init-image", type=Path, help="start from this picture (atelier stylize --init-image)")
    record = run(parser.parse_args(argv))
    metrics = record["metrics"]
    summary = {k: record[k] for k in ("name", "wall_s", "peak_rss_mib", "cpu_s")}
    print(json.dumps(summary | {"tiling": metrics.get("tiling"), "s_per_it": metrics.get("seconds_per_iteration")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
