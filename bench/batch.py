"""Batch benchmark: N small images with one style through a batch, against N independent single-job submissions, on
the same embedded stack (Redis, gunicorn API, Celery workers with the real VGG19 weights, local storage).

    python bench/batch.py [--images 8] [--size 128] [--iterations 10] [--workers 1] [--rounds 2] [--json]

Cases, each with a style image no earlier case used (one pixel changed), so every case starts with cold style
targets:

- ``batch``: ``POST /v1/batches`` then the N contents, children on the ``bulk`` queue;
- ``singles``: N ``POST /v1/jobs``, each uploading the content and the same style;
- ``singles_unique_style``: N single jobs whose style images all differ by one pixel: no two jobs can share targets,
  so this is what every job pays without the style-target cache (the baseline the cache is measured against).

The table also gives the seconds spent sending the requests, the engine's mean seconds per image (on a shared
machine it moves with the load, and drives img/min) and the worker's own overhead per job (``worker_overhead_s``).

Every case runs ``--rounds`` times, in a rotated order (the machine's load drifts). Per case: images per minute
(N / (last job finished - first request sent)), how many jobs computed style targets, and the seconds they spent
doing so (``metrics.style_targets_compute_s``, summed). A warm-up job first builds the backbone in every worker so
no case pays for it.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere: `python bench/batch.py`
    sys.path.insert(0, str(ROOT))

SAMPLES = ROOT / "examples"
CONTENTS = ("chelsea_cat.jpg", "astronaut_portrait.jpg")
STYLE = "vangogh_starry_night.jpg"
WAIT_TIMEOUT_S = 1800.0


def contents(count: int, side_px: int) -> list[tuple[str, bytes]]:
    """``count`` distinct small contents: crops of the sample pictures at different offsets."""
    from PIL import Image

    images = [Image.open(SAMPLES / "content" / name).convert("RGB") for name in CONTENTS]
    out = []
    for i in range(count):
        image = images[i % len(images)]
        shift = 8 * (i // len(images))
        crop = image.crop((shift, shift, image.width - shift, image.height - shift))
        crop.thumbnail((side_px, side_px))
        buffer = io.BytesIO()
        crop.save(buffer, format="PNG")
        out.append((f"img{i:03d}.png", buffer.getvalue()))
    return out


def style_variant(tag: int) -> bytes:
    """The style image with one pixel set from ``tag``: another sha256, so cached targets do not apply."""
    from PIL import Image

    image = Image.open(SAMPLES / "style" / STYLE).convert("RGB")
    image.putpixel((0, 0), (tag % 256, (tag // 256) % 256, 7))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def wait_all(client: Any, job_ids: list[str]) -> list[dict[str, Any]]:
    deadline = time.monotonic() + WAIT_TIMEOUT_S
    pending, done = list(job_ids), {}
    while pending:
        if time.monotonic() > deadline:
            raise SystemExit(f"{len(pending)} jobs still unfinished after {WAIT_TIMEOUT_S:.0f} s")
        for job_id in list(pending):
            job = client.get(job_id)
            if job["status"] in ("succeeded", "failed", "canceled"):
                done[job_id] = job
                pending.remove(job_id)
        if pending:
            time.sleep(0.2)
    return [done[job_id] for job_id in job_ids]


def summarize(case: str, jobs: list[dict[str, Any]], started_wall_s: float, submit_s: float) -> dict[str, Any]:
    """``started_wall_s``: epoch seconds of the first request; the end is the last record's ``finished_at``."""
    from shared.jobs import parse_iso

    failed = [job for job in jobs if job["status"] != "succeeded"]
    if failed:
        raise SystemExit(f"{case}: {len(failed)} jobs did not succeed: {failed[0].get('error')}")
    metrics = [job["metrics"] for job in jobs]
    wall_s = max(parse_iso(job["finished_at"]).timestamp() for job in jobs) - started_wall_s
    return {
        "case": case,
        "images": len(jobs),
        "wall_s": round(wall_s, 2),
        "images_per_min": round(60.0 * len(jobs) / wall_s, 2),
        "style_targets_computed": sum(1 for m in metrics if m.get("style_targets") == "computed"),
        "style_targets_compute_s": round(sum(m.get("style_targets_compute_s") or 0.0 for m in metrics), 3),
        "style_targets_wait_s": round(sum(m.get("style_targets_wait_s") or 0.0 for m in metrics), 3),
        "engine_s_mean": round(sum(m["seconds"] for m in metrics) / len(metrics), 3),
        "worker_overhead_s_mean": round(sum(m.get("worker_overhead_s") or 0.0 for m in metrics) / len(metrics), 3),
        "submit_s": round(submit_s, 3),
    }


def combine(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One row per case over all rounds: totals, and images per minute over the summed wall time."""
    images = sum(row["images"] for row in rows)
    wall_s = sum(row["wall_s"] for row in rows)
    return {
        "case": rows[0]["case"],
        "images": images,
        "wall_s": round(wall_s, 2),
        "images_per_min": round(60.0 * images / wall_s, 2),
        "images_per_min_by_round": [row["images_per_min"] for row in rows],
        "style_targets_computed": sum(row["style_targets_computed"] for row in rows),
        "style_targets_compute_s": round(sum(row["style_targets_compute_s"] for row in rows), 3),
        "style_targets_wait_s": round(sum(row["style_targets_wait_s"] for row in rows), 3),
        "engine_s_mean": round(sum(row["engine_s_mean"] * row["images"] for row in rows) / images, 3),
        "worker_overhead_s_mean": round(sum(row["worker_overhead_s_mean"] * row["images"] for row in rows) / images,
                                        3),
        "submit_s": round(sum(row["submit_s"] for row in rows), 3),
    }


def run_batch(client: Any, items: list[tuple[str, bytes]], style: bytes, params: dict[str, Any]) -> dict[str, Any]:
    started_wall_s = time.time()
    batch = client.create_batch([("style.png", style)], params=params)
    added = []
    for name, data in items:  # one request per image, as `atelier batch` sends them
        added += client.add_batch_items(batch["id"], [(name, data)])
    submit_s = time.time() - started_wall_s
    jobs = wait_all(client, [item["job_id"] for item in added])
    return summarize("batch", jobs, started_wall_s, submit_s)


def run_singles(case: str, client: Any, items: list[tuple[str, bytes]], styles: list[bytes],
                params: dict[str, Any]) -> dict[str, Any]:
    started_wall_s = time.time()
    ids = [client.submit((name, data), [("style.png", style)], params=params)["id"]
           for (name, data), style in zip(items, styles, strict=True)]
    submit_s = time.time() - started_wall_s
    jobs = wait_all(client, ids)
    return summarize(case, jobs, started_wall_s, submit_s)


def say(text: str) -> None:
    print(text, file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=8, help="N, images per case")
    parser.add_argument("--size", type=int, default=128, help="long side of the outputs in pixels")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1, help="Celery workers of the embedded stack")
    parser.add_argument("--rounds", type=int, default=2, help="repeat every case, in a rotated order")
    parser.add_argument("--json", action="store_true", help="one JSON object per case instead of a table")
    args = parser.parse_args(argv)

    from services.cli.dev import DevStack
    from services.client import Client
    from services.devstack import free_port

    params = {"size": args.size, "iterations": args.iterations}
    items = contents(args.images, side_px=2 * args.size)
    with tempfile.TemporaryDirectory(prefix="atelier-bench-batch-") as var_dir:
        stack = DevStack(port=free_port(), workers=args.workers, var_dir=var_dir)
        stack.start(say=say)
        try:
            client = Client(stack.api_url, timeout_s=120)
            say("warm-up: building the backbone in every worker")
            warm = [client.submit(items[0], [("style.png", style_variant(9000))], params=params)["id"]
                    for _ in range(args.workers)]
            wait_all(client, warm)
            cases = [
                lambda r: run_batch(client, items, style_variant(10 * r + 1), params),
                lambda r: run_singles("singles", client, items, [style_variant(10 * r + 2)] * len(items), params),
                lambda r: run_singles("singles_unique_style", client, items,
                                      [style_variant(1000 * (r + 1) + i) for i in range(len(items))], params),
            ]
            per_round = []
            for round_index in range(args.rounds):
                # Rotate the order each round: on a shared machine the load drifts, and a fixed order would
                # always give the same case the same share of it.
                shift = round_index % len(cases)
                for case in cases[shift:] + cases[:shift]:
                    row = case(round_index)
                    say(f"round {round_index + 1}: {row['case']}: {row['images_per_min']} img/min")
                    per_round.append(row)
        finally:
            stack.stop()
    rows = [combine([row for row in per_round if row["case"] == name])
            for name in ("batch", "singles", "singles_unique_style")]
    for row in rows:
        row.update(size_px=args.size, iterations=args.iterations, workers=args.workers, rounds=args.rounds)
    if args.json:
        for row in rows:
            print(json.dumps(row))
    else:
        print(f"{args.images} images x {args.rounds} rounds, {args.size} px, {args.iterations} iterations, "
              f"{args.workers} worker(s)")
        print(f"{'case':<22} {'img/min':>8} {'wall s':>8} {'submit s':>9} {'targets computed':>17} "
              f"{'targets s':>10} {'engine s/img':>13} {'worker overhead s/img':>22}")
        for row in rows:
            print(f"{row['case']:<22} {row['images_per_min']:>8.1f} {row['wall_s']:>8.1f} {row['submit_s']:>9.2f} "
                  f"{row['style_targets_computed']:>17} {row['style_targets_compute_s']:>10.3f} "
                  f"{row['engine_s_mean']:>13.3f} {row['worker_overhead_s_mean']:>22.3f}")
        print("engine s/img varies with the machine's load; compare it before reading img/min differences")
    return 0


if __name__ == "__main__":
    sys.exit(main())
