"""Fast-style benchmark (issue 11's targets), side by side in one process: apply, train, break-even, quality.

    python bench/fast.py train --style vangogh_starry_night.jpg --minutes 30 [--batch 1 --size 256 --width 0.5]
    python bench/fast.py apply [--sizes 512,1024] [--widths 0.5,1.0] [--gatys-iterations 3]
    python bench/fast.py quality [--size 256]          # needs the models `train` wrote
    python bench/fast.py all                            # apply + break-even + quality, one JSON document
    python bench/fast.py breakeven bench/results/fast/all.json   # n* recomputed from a stored document

Subcommands
- ``train``: one model for one style from the built-in training set (data/training, 43 photos) for a wall-clock
  budget (``--minutes``, counted from the call to ``trainer.train``, so it includes building the loss network and
  the style targets). The budget is enforced through the trainer's own progress callback: returning True stops
  at once, exactly as a cancel does, and the network trained so far is the model. Writes the model file
  (``feedforward.model_to_bytes``, unsigned) and ``<name>.train.json`` (settings, the loss curve against steps and
  seconds, the load average) under ``--out`` (default ``bench/results/fast/``).
- ``apply``: one forward pass at each ``--sizes`` (square-ish content, long side S) for each ``--widths``
  network (fresh networks: a forward pass costs the same whatever the weights), against the Gatys engine at its
  defaults (L-BFGS, coarse to fine: 100 iterations at each scale from 128 px) at the same size, measured in the same
  process: the Gatys job time is extrapolated from a short single-scale run at the output size
  (``--gatys-iterations``, after an untimed warm-up of the same size) as each rung's ``setup + iterations x
  seconds_per_iteration`` weighted by the rung's pixels relative to the output's
  (``shared.geometry.job_output_iterations``'s rule), and the JSON says so.
- ``breakeven``: from the measured costs, for each size and each recorded training, the smallest batch N for which
  ``train + N x apply`` is cheaper than ``N x Gatys`` (``shared.fast_costs``; the service's ``mode=auto`` uses the
  same function). Part of ``all``; the subcommand recomputes it from a stored ``all`` document.
- ``quality``: each sample pair (examples/) stylized by the trained model of its style and by Gatys at its
  defaults at ``--size``, scored by ``bench/evaluate.py``; writes a PNG sheet (content | style | fast | Gatys) per
  pair into ``docs/sheets/`` and prints the table.

Every figure is printed with the 1-, 5- and 15-minute load averages taken just before it was measured: the
development machine has 2 cores shared with other sessions, so absolute times are upper bounds; ratios are taken
between measurements seconds apart.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere: `python bench/fast.py`
    sys.path.insert(0, str(ROOT))

EXAMPLES = ROOT / "examples"
RESULTS = ROOT / "bench" / "results" / "fast"
SHEETS = ROOT / "docs" / "sheets"
PAIRS = (  # the sample pairs that ship in the repository (bench/sheets.py has a third one outside it)
    ("chelsea_cat.jpg", "vangogh_starry_night.jpg"),
    ("astronaut_portrait.jpg", "munch_the_scream.jpg"),
)


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def load_image(path: Path) -> Any:
    from shared.images import load_rgb

    return load_rgb(path.read_bytes(), field=str(path))


def model_path(out: Path, style: str, width: float) -> Path:
    return out / f"{Path(style).stem}_w{width:g}.atfs"


def weight_source() -> Any:
    from shared.settings import Settings
    from worker.weights_config import weight_source as source

    return source(Settings.from_env())


def shown(path: Path) -> str:
    """A path relative to the repository when it is inside it."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)


# --- train --------------------------------------------------------------------------------------------------------


def cmd_train(args: argparse.Namespace) -> dict[str, Any]:
    from services.training_set import builtin_training_images
    from worker.engine import feedforward
    from worker.engine.trainer import TrainParams, train

    contents = builtin_training_images()[: args.images]
    style = load_image(EXAMPLES / "style" / args.style)
    params = TrainParams(size=args.size, steps=args.max_steps, batch_size=args.batch, width=args.width,
                         learning_rate=args.learning_rate, progress_every=args.progress_every, seed=args.seed,
                         content_weight=args.content_weight, style_weight=args.style_weight)
    budget_s = args.minutes * 60.0
    out_json = args.out / f"{Path(args.style).stem}_w{args.width:g}.train.json"
    record: dict[str, Any] = {
        "kind": "train", "style": args.style, "training_images": len(contents), "params": params.to_dict(),
        "budget_minutes": args.minutes, "load_before": load_average(), "command": " ".join(sys.argv),
    }
    curve: list[dict[str, Any]] = []
    loads: list[list[float]] = []

    def on_progress(progress: Any) -> bool:
        curve.append({"step": progress.iteration, "elapsed_s": round(progress.elapsed_s, 2), **progress.losses})
        loads.append(load_average())
        if len(curve) % 10 == 0:  # a partial record survives a killed run
            write_json(out_json, {**record, "partial": True, "curve": curve})
        # Stop when the next report would end past the budget (the mean step time so far predicts it).
        per_step = progress.elapsed_s / max(1, progress.iteration)
        return progress.elapsed_s + per_step * params.progress_every > budget_s

    started = time.perf_counter()
    result = train([style], contents, params, on_progress, weights=weight_source())
    wall_s = time.perf_counter() - started
    path = model_path(args.out, args.style, args.width)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(feedforward.model_to_bytes(result.model))
    metrics = {k: v for k, v in result.metrics.items() if k != "history"}
    record.update({
        "wall_seconds": wall_s, "steps_run": result.metrics["step"], "stopped_by_budget": result.cancelled,
        "seconds_per_step": result.metrics["seconds_per_step"], "setup_seconds": result.metrics["setup_seconds"],
        "first_step_seconds": result.metrics["first_step_seconds"],
        # Johnson et al.'s 10,000 iterations from this run: setup + the first (traced/compiled) step + the rest.
        "extrapolated_10000_steps_s": result.metrics["setup_seconds"] + result.metrics["first_step_seconds"]
        + 9999 * result.metrics["seconds_per_step"],
        "keras_backend": result.metrics["keras_backend"],
        "load_after": load_average(), "load_during": loads, "metrics": metrics, "curve": curve,
        "model_file": shown(path),
    })
    write_json(out_json, record)
    print(f"trained {args.style}: {record['steps_run']} steps of batch {args.batch} at {args.size} px in "
          f"{wall_s / 60:.1f} min ({record['seconds_per_step']:.2f} s/step, setup {record['setup_seconds']:.1f} s); "
          f"loss {curve[0]['total']:.3g} -> {curve[-1]['total']:.3g}; load {record['load_before']} -> "
          f"{record['load_after']}; model {shown(path)}", file=sys.stderr)
    return record


# --- apply -------------------------------------------------------------------------------------------------------


def time_calls(fn: Any, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return samples


def gatys_job(content: Any, style: Any, size: int, iterations: int) -> dict[str, Any]:
    """The Gatys engine at its defaults at ``size``: a warm-up run of ``iterations`` at one scale (untimed: builds
    the backbone, traces the step for this size), then a timed run of ``iterations``; the default job is
    extrapolated from the timed run as ``sum over its rungs of (rung / size)^2 x (setup + iterations x
    seconds_per_iteration)`` (setup: everything but the optimisation; both grow with the pixels)."""
    from shared.geometry import job_output_iterations, job_scale_iterations, job_scale_sizes, rung_pixel_shares
    from shared.params import StyleParams
    from worker.engine import stylize

    defaults = StyleParams.from_mapping({"size": size})
    rungs = job_scale_sizes(defaults)
    rung_iterations = job_scale_iterations(defaults, len(rungs))
    params = defaults.replace(iterations=iterations, progress_every=iterations, min_size=size)
    load = load_average()
    stylize(content, [style], params, weights=weight_source())
    timed = stylize(content, [style], params, weights=weight_source()).metrics
    setup_s, per_iteration_s = timed["seconds"] - timed["optimize_seconds"], timed["seconds_per_iteration"]
    job_s = setup_s * sum(rung_pixel_shares(rungs)) + per_iteration_s * job_output_iterations(defaults)
    return {
        "size_px": timed["size_px"], "optimizer": timed["optimizer"], "precision": timed["precision"],
        "iterations_timed": iterations, "default_scales_px": rungs, "default_iterations": rung_iterations,
        "seconds_per_iteration": per_iteration_s, "setup_seconds": setup_s, "job_seconds_extrapolated": job_s,
        "extrapolated": f"sum over the default rungs {rungs} of (rung/size)^2 x (setup + iterations x "
                        f"seconds_per_iteration), from a {iterations}-iteration run at {size} px",
        "load_before": load,
    }


def cmd_apply(args: argparse.Namespace) -> dict[str, Any]:
    """Forward passes at each size and width against the Gatys job at its defaults, in this one process."""
    import keras

    from worker.engine import feedforward, images

    content = load_image(EXAMPLES / "content" / PAIRS[0][0])
    style = load_image(EXAMPLES / "style" / PAIRS[0][1])
    rows = []
    for size in args.sizes:
        at = images.to_uint8(images.resize(content, images.scaled_shape(content.shape, size)))
        fast_rows = []
        for width in args.widths:
            model = feedforward.FastStyleModel.new(width=width, seed=0)
            feedforward.stylize_fast(model, at)  # traces the predict function for this shape
            load = load_average()
            samples = time_calls(lambda m=model, x=at: feedforward.stylize_fast(m, x), args.rounds)
            fast_rows.append({"width": width, "parameters": int(model.net.count_params()),
                              "ms_median": 1000 * statistics.median(samples), "ms_min": 1000 * min(samples),
                              "ms_samples": [round(1000 * x, 1) for x in samples], "load_before": load})
        gatys = gatys_job(content, style, size, args.gatys_iterations)
        # The fast passes again right after Gatys: the pair of blocks brackets the Gatys measurement in time.
        for row in fast_rows:
            model = feedforward.FastStyleModel.new(width=row["width"], seed=0)
            feedforward.stylize_fast(model, at)
            after = time_calls(lambda m=model, x=at: feedforward.stylize_fast(m, x), args.rounds)
            row["ms_samples_after_gatys"] = [round(1000 * x, 1) for x in after]
            both = [x / 1000 for x in row["ms_samples"] + row["ms_samples_after_gatys"]]
            row["ms_median"] = 1000 * statistics.median(both)
            row["ms_min"] = 1000 * min(both)
            row["speedup_vs_gatys_job"] = gatys["job_seconds_extrapolated"] / (row["ms_median"] / 1000)
            row["meets_1s"] = row["ms_median"] <= 1000 if size == 512 else None
            row["meets_300x"] = row["speedup_vs_gatys_job"] >= 300
        rows.append({"size": size, "shape": list(at.shape[:2]), "fast": fast_rows, "gatys": gatys})
        for row in fast_rows:
            print(f"apply {size} px {at.shape[1]}x{at.shape[0]}: width {row['width']:g}: {row['ms_median']:.0f} ms "
                  f"(min {row['ms_min']:.0f}); Gatys job at defaults {gatys['job_seconds_extrapolated']:.0f} s "
                  f"({gatys['seconds_per_iteration']:.2f} s/it, extrapolated); {row['speedup_vs_gatys_job']:.0f}x; "
                  f"load {row['load_before']}", file=sys.stderr)
    return {"kind": "apply", "keras_backend": keras.backend.backend(), "content": PAIRS[0][0], "style": PAIRS[0][1],
            "rows": rows, "cpu": cpu_name(), "cores": os.cpu_count()}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


# --- break-even ---------------------------------------------------------------------------------------------------


def breakeven(apply: dict[str, Any], trainings: list[dict[str, Any]], width: float) -> list[dict[str, Any]]:
    """For every apply size and every recorded training: n* from that training's wall time and the measured
    apply and Gatys costs at that size (``shared.fast_costs``)."""
    from shared.fast_costs import FastCosts, break_even_batch, choose_mode

    out = []
    for row in apply["rows"]:
        fast = next((f for f in row["fast"] if f["width"] == width), row["fast"][0])
        for training in trainings:
            costs = FastCosts(train_s=training["wall_seconds"], apply_s=fast["ms_median"] / 1000,
                              optimize_s=row["gatys"]["job_seconds_extrapolated"])
            n = break_even_batch(costs)
            out.append({
                "size": row["size"], "width": fast["width"], "style": training["style"],
                "train_minutes": training["wall_seconds"] / 60, "train_s": costs.train_s, "apply_s": costs.apply_s,
                "optimize_s": costs.optimize_s, "break_even_batch": n,
                "formula": "n* = floor(train_s / (optimize_s - apply_s)) + 1",
                "check": choose_mode(n, costs)[1] if n else None,
                "check_below": choose_mode(n - 1, costs)[1] if n and n > 1 else None,
            })
            print(f"break-even at {row['size']} px, width {fast['width']:g}, {Path(training['style']).stem} model "
                  f"({costs.train_s / 60:.1f} min): n* = floor({costs.train_s:.0f} / ({costs.optimize_s:.1f} - "
                  f"{costs.apply_s:.3f})) + 1 = {n}", file=sys.stderr)
    return out


def cmd_breakeven(args: argparse.Namespace) -> dict[str, Any]:
    """Break-even recomputed from a stored ``all`` document (no measuring)."""
    report = json.loads(args.source.read_text())
    return {"kind": "breakeven", "source": shown(args.source),
            "breakeven": breakeven(report["apply"], report["trainings"], args.widths[0])}


# --- quality ------------------------------------------------------------------------------------------------------


def load_trainings(out: Path) -> list[dict[str, Any]]:
    found = []
    for path in sorted(out.glob("*.train.json")):
        record = json.loads(path.read_text())
        if not record.get("partial") and (ROOT / record["model_file"]).is_file():
            found.append(record)
    return found


def save_png(path: Path, image: Any) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)


def cmd_quality(args: argparse.Namespace) -> dict[str, Any]:
    """Each sample pair with a trained model: fast output and Gatys output at --size, scored and put on a sheet."""
    import evaluate
    from PIL import Image
    from sheets import compose_sheet

    from shared.params import StyleParams
    from worker.engine import feedforward, images, stylize

    trainings = {t["style"]: t for t in load_trainings(args.out)}
    rows, pairs = [], []
    for content_name, style_name in PAIRS:
        if style_name not in trainings or (args.pairs and content_name not in args.pairs):
            continue
        content = load_image(EXAMPLES / "content" / content_name)
        style = load_image(EXAMPLES / "style" / style_name)
        model = feedforward.model_from_bytes((ROOT / trainings[style_name]["model_file"]).read_bytes())
        at = images.to_uint8(images.resize(content, images.scaled_shape(content.shape, args.size)))
        feedforward.stylize_fast(model, at)
        load = load_average()
        started = time.perf_counter()
        fast = feedforward.stylize_fast(model, at)
        fast_s = time.perf_counter() - started
        load_gatys = load_average()
        result = stylize(content, [style], StyleParams.from_mapping({"size": args.size}), weights=weight_source())
        gatys = result.image
        stem = f"{Path(content_name).stem}__{Path(style_name).stem}_{args.size}"
        save_png(args.out / f"{stem}_fast.png", fast)
        save_png(args.out / f"{stem}_gatys.png", gatys)
        scored = {"content (as output)": evaluate.evaluate(at, content, style),
                  "fast": evaluate.evaluate(fast, content, style), "gatys": evaluate.evaluate(gatys, content, style)}
        steps = trainings[style_name]["steps_run"]
        train_min = trainings[style_name]["wall_seconds"] / 60
        sheet = compose_sheet([(Image.fromarray(at), "content"), (Image.fromarray(style), "style"),
                               (Image.fromarray(fast),
                                f"fast ({steps} steps, {train_min:.0f} min; {1000 * fast_s:.0f} ms)"),
                               (Image.fromarray(gatys), f"Gatys (defaults, {result.metrics['seconds']:.0f} s)")],
                              args.size)
        args.sheets.mkdir(parents=True, exist_ok=True)
        sheet_path = args.sheets / f"{stem}_fast.png"  # PNG: no JPEG artefacts on top of the fine texture judged
        sheet.save(sheet_path, optimize=True)
        pairs.append({"content": content_name, "style": style_name, "size": args.size,
                      "sheet": shown(sheet_path), "fast_ms": 1000 * fast_s, "load_before_fast": load,
                      "gatys_seconds_measured": result.metrics["seconds"],
                      "gatys_seconds_per_iteration": result.metrics["seconds_per_iteration"],
                      "gatys_iterations_run": result.metrics["iterations_run"], "load_before_gatys": load_gatys,
                      "model_steps": steps, "model_train_minutes": train_min})
        for method, scores in scored.items():
            rows.append({"content": content_name, "style": style_name, "method": method, **scores})
    print_quality(rows)
    return {"kind": "quality", "size": args.size, "pairs": pairs, "rows": rows,
            "metrics_better": evaluate.BETTER}


def print_quality(rows: list[dict[str, Any]]) -> None:
    import evaluate

    print(f"{'pair':<46}{'method':<20}" + "".join(f"{m:>12}" for m in evaluate.METRICS), file=sys.stderr)
    for row in rows:
        pair = f"{Path(row['content']).stem} x {Path(row['style']).stem}"
        print(f"{pair:<46}{row['method']:<20}" + "".join(f"{row[m]:>12.4f}" for m in evaluate.METRICS),
              file=sys.stderr)
    print("ssim: luminance SSIM against the content (higher keeps more structure); color_swd (Lab), gram_random, "
          "gabor: distances to the style (lower is closer)", file=sys.stderr)


def cmd_all(args: argparse.Namespace) -> dict[str, Any]:
    trainings = load_trainings(args.out)
    apply = cmd_apply(args)
    report = {"kind": "all", "load_before": load_average(), "apply": apply,
              "trainings": [{k: v for k, v in t.items() if k not in ("curve", "load_during")} for t in trainings],
              "breakeven": breakeven(apply, trainings, args.widths[0])}
    report["quality"] = cmd_quality(args)
    report["load_after"] = load_average()
    return report


# --- CLI ----------------------------------------------------------------------------------------------------------


def cmd_batch(args: argparse.Namespace) -> dict[str, Any]:
    """The break-even checked against a measured batch: train a model for ``--train-seconds`` on the built-in set,
    then style ``n*`` (predicted from the training time and the first Gatys job) contents both ways, every job run in
    full, and compare the measured totals at ``n*`` and ``n* - 1``."""
    from services.training_set import builtin_training_images
    from shared.fast_costs import FastCosts, break_even_batch
    from shared.params import StyleParams
    from worker.engine import feedforward, stylize
    from worker.engine.trainer import TrainParams, train

    style = load_image(EXAMPLES / "style" / args.style)
    contents = [load_image(path) for path in sorted((EXAMPLES / "content").glob("*.jpg"))]
    contents += builtin_training_images()[-8:]  # more photos to style than the two samples
    params = TrainParams(size=args.size, steps=100_000, batch_size=1, progress_every=5)
    record: dict[str, Any] = {"kind": "batch", "style": args.style, "size_px": args.size, "load_before": load_average()}

    def budget(progress: Any) -> bool:
        return progress.elapsed_s >= args.train_seconds

    started = time.perf_counter()
    model = train([style], builtin_training_images(), params, budget, weights=weight_source()).model
    train_s = time.perf_counter() - started
    gatys = StyleParams.from_mapping({"size": args.size})  # the Gatys job at its defaults (coarse to fine)
    optimize_s: list[float] = []
    apply_s: list[float] = []
    feedforward.stylize_fast(model, contents[0], size=args.size)  # traces the forward pass (counted in setup)
    predicted = None
    for content in contents:
        t0 = time.perf_counter()
        feedforward.stylize_fast(model, content, size=args.size)
        apply_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        stylize(content, [style], gatys, weights=weight_source())
        optimize_s.append(time.perf_counter() - t0)
        if predicted is None:
            predicted = break_even_batch(FastCosts(train_s, apply_s[0], optimize_s[0]))
        if predicted is not None and len(optimize_s) >= predicted:
            break
    n = len(optimize_s)
    fast_total = [train_s + sum(apply_s[:k]) for k in range(n + 1)]
    optimize_total = [sum(optimize_s[:k]) for k in range(n + 1)]
    record.update({
        "train_seconds": train_s, "apply_seconds": apply_s, "optimize_seconds": optimize_s,
        "predicted_break_even": predicted, "measured_n": n,
        "fast_cheaper_at_n": fast_total[n] < optimize_total[n],
        "fast_cheaper_at_n_minus_1": n > 1 and fast_total[n - 1] < optimize_total[n - 1],
        "fast_total_s": fast_total, "optimize_total_s": optimize_total, "load_after": load_average(),
    })
    print(f"trained {train_s:.0f} s; predicted n* = {predicted}; measured at n = {n}: fast {fast_total[n]:.0f} s vs "
          f"optimize {optimize_total[n]:.0f} s; at n - 1: {fast_total[n - 1]:.0f} s vs {optimize_total[n - 1]:.0f} s",
          file=sys.stderr)
    return record


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="train one style's model for a wall-clock budget")
    tr.add_argument("--style", default="vangogh_starry_night.jpg", help="a file in examples/style/")
    tr.add_argument("--minutes", type=float, default=30.0, help="wall-clock budget, setup included (default 30)")
    tr.add_argument("--size", type=int, default=256, help="training crop side, px (default 256)")
    tr.add_argument("--batch", type=int, default=1, help="batch size (default 1; see bench/README.md)")
    tr.add_argument("--width", type=float, default=0.5, help="network width multiplier (default 0.5)")
    tr.add_argument("--learning-rate", type=float, default=1e-3)
    tr.add_argument("--content-weight", type=float, default=1.0, help="as in Gatys jobs (default 1)")
    tr.add_argument("--style-weight", type=float, default=10.0, help="as in Gatys jobs (default 10)")
    tr.add_argument("--images", type=int, default=64, help="use the first N training photos (default all, 43)")
    tr.add_argument("--max-steps", type=int, default=100_000, help="upper bound; the budget stops it first")
    tr.add_argument("--progress-every", type=int, default=5)
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--out", type=Path, default=RESULTS)
    ba = sub.add_parser("batch", help="the break-even checked against a measured batch (every job run in full)")
    ba.add_argument("--style", default="vangogh_starry_night.jpg")
    ba.add_argument("--size", type=int, default=256, help="long side of the styled images and crop side (256)")
    ba.add_argument("--train-seconds", type=float, default=180.0, help="training budget (default 180 s)")
    ba.add_argument("--json-out", type=Path, default=None)
    be = sub.add_parser("breakeven", help="break-even batch sizes recomputed from a stored `all` JSON document")
    be.add_argument("source", type=Path, help="e.g. bench/results/fast/all.json")
    be.add_argument("--widths", default="0.5", help="the width whose passes count (default 0.5)")
    be.add_argument("--json-out", type=Path, default=None)
    for name, helptext in (("apply", "forward passes against the Gatys job, side by side"),
                           ("quality", "sample pairs: fast vs Gatys, scored and on sheets"),
                           ("all", "apply + break-even + quality, one JSON document")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--sizes", default="512,1024", help="apply: long sides, px (default 512,1024)")
        p.add_argument("--widths", default="0.5,1.0", help="apply: network widths (first: break-even's)")
        p.add_argument("--rounds", type=int, default=3, help="apply: timed passes per block (default 3)")
        p.add_argument("--gatys-iterations", type=int, default=3,
                       help="apply: iterations of the timed Gatys run the job is extrapolated from (default 3)")
        p.add_argument("--size", type=int, default=256, help="quality: long side, px (default 256)")
        p.add_argument("--pairs", default="", help="quality: only these content files (comma-separated)")
        p.add_argument("--out", type=Path, default=RESULTS, help="where trained models and results are")
        p.add_argument("--sheets", type=Path, default=SHEETS, help="quality: where sheets go (docs/sheets)")
        p.add_argument("--json-out", type=Path, default=None, help="also write the JSON document here")
    args = parser.parse_args(argv)
    if args.command not in ("train", "batch"):
        args.widths = [float(x) for x in args.widths.split(",") if x]
    if args.command not in ("train", "breakeven", "batch"):
        args.sizes = [int(x) for x in args.sizes.split(",") if x]
        args.pairs = [x for x in args.pairs.split(",") if x]
    return args


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = parse_args(argv)
    if args.command == "train":
        print(json.dumps({k: v for k, v in cmd_train(args).items() if k not in ("curve", "load_during")}))
        return 0
    if str(ROOT / "bench") not in sys.path:  # evaluate.py and sheets.py live beside this file
        sys.path.insert(0, str(ROOT / "bench"))
    commands = {"apply": cmd_apply, "quality": cmd_quality, "all": cmd_all, "breakeven": cmd_breakeven,
                "batch": cmd_batch}
    report = commands[args.command](args)
    report["engine_version"] = engine_version()
    if args.json_out:
        write_json(args.json_out, report)
    print(json.dumps(report))
    return 0


def engine_version() -> str:
    import subprocess

    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                          check=False)
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "worker/engine"], cwd=ROOT, capture_output=True,
                           text=True, check=False).stdout.strip()
    return (done.stdout.strip() or "unknown") + ("+dirty" if dirty else "")


if __name__ == "__main__":
    sys.exit(main())
