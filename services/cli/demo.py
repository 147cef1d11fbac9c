"""``atelier demo`` (what ``make demo`` runs): the real path end to end on this machine.

It starts the embedded stack (``atelier dev``'s Redis, API and worker), sends each content picture in
``examples/content`` with the style picture at the same position in ``examples/style`` through the HTTP API with
``services.client``, shows a progress bar per job, writes the results to ``out/``, prints the timings, and stops
everything. Exit status 0 when every job succeeded.

The default size and iterations finish in about three minutes on a 2-core machine including the first run's VGG19
weight conversion, and are enough for the style to show clearly.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from services.cli.dev import DevStack, StackError, install_stop_handlers
from services.devstack import free_port
from shared.jobs import parse_iso

DEMO_SIZE_PX = 256
# Per scale: the default coarse-to-fine ladder at 256 px is 128, 181 and 256, so 60 iterations at each cost about
# what 105 did at 256 px alone.
DEMO_ITERATIONS = 60
JOB_TIMEOUT_S = 900.0
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def default_examples_dir() -> Path:
    """``./examples`` when run from a checkout (``make demo``), else the one next to the installed sources."""
    here = Path("examples")
    return here if here.is_dir() else Path(__file__).resolve().parents[2] / "examples"


def example_pairs(examples: Path) -> list[tuple[Path, Path]]:
    """(content, style) pairs: the n-th content picture with the n-th style picture, both sorted by name."""
    contents = sorted(p for p in (examples / "content").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    styles = sorted(p for p in (examples / "style").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not contents or not styles:
        raise click.ClickException(f"no pictures in {examples}/content and {examples}/style")
    return [(content, styles[i % len(styles)]) for i, content in enumerate(contents)]


@click.command()
@click.option("--size", "size_px", type=click.IntRange(16, 1024), default=DEMO_SIZE_PX, show_default=True,
              help="Long side of the results in pixels.")
@click.option("--iterations", type=click.IntRange(1, 2000), default=DEMO_ITERATIONS, show_default=True,
              help="Optimizer iterations at each scale (coarse to fine from 128 px).")
@click.option("--examples", "examples_dir", type=click.Path(file_okay=False, exists=True, path_type=Path),
              default=None, help="Folder with content/ and style/ pictures (default: the project's examples/).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("out"),
              show_default=True, help="Where the results go.")
@click.option("--var-dir", type=click.Path(file_okay=False), default="var", show_default=True,
              help="Redis data, local storage and logs of the embedded stack.")
def demo(size_px: int, iterations: int, examples_dir: Path | None, out_dir: Path, var_dir: str) -> None:
    """Stylize the example pictures through the real service (API, queue, worker) and write them to out/."""
    from services.cli.jobs import wait_with_bar
    from services.client import Client, ClientError

    started_s = time.monotonic()
    pairs = example_pairs(examples_dir or default_examples_dir())
    install_stop_handlers()
    stack = DevStack(port=free_port(), workers=1, var_dir=var_dir)
    ok = False
    try:
        click.echo("starting the embedded stack (Redis, API, worker)...")
        stack.start(say=lambda line: click.echo("  " + line))
        client = Client(stack.api_url)
        params = {"size": size_px, "iterations": iterations}
        jobs = []
        for content, style in pairs:
            job = client.submit(content, [style], params=params)
            jobs.append((content, style, job["id"]))
            click.echo(f"submitted {content.name} + {style.name}: job {job['id']}")
        finished = []
        for content, style, job_id in jobs:
            job = wait_with_bar(client, job_id, label=f"{content.stem} x {style.stem}", timeout_s=JOB_TIMEOUT_S)
            if job["status"] == "succeeded":
                target = out_dir / f"{content.stem}__{style.stem}.png"
                client.download_result(job_id, target)
                job["_path"] = str(target)
            finished.append(job)
        _print_timings(finished)
        ok = all(job["status"] == "succeeded" for job in finished)
    except (ClientError, StackError) as exc:
        click.echo(f"error: {exc}", err=True)
    except Exception as exc:  # noqa: BLE001 - Ctrl-C (_Stop) and anything else: stop the stack, then report
        click.echo(f"stopped: {exc}", err=True)
    finally:
        click.echo("stopping the stack...")
        stack.stop()
    click.echo(f"demo {'finished' if ok else 'FAILED'} in {time.monotonic() - started_s:.1f} s")
    sys.exit(0 if ok else 1)


def _print_timings(jobs: list[dict[str, Any]]) -> None:
    click.echo("")
    click.echo(f"{'result':44} {'status':9} {'wait s':>7} {'engine s':>8} {'total s':>8}  backbone")
    for job in jobs:
        metrics = job.get("metrics") or {}
        wait_s = _seconds(job.get("created_at"), job.get("started_at"))
        total_s = _seconds(job.get("created_at"), job.get("finished_at"))
        engine_s = metrics.get("seconds")
        cached = metrics.get("backbone_cached")
        if cached is None:
            backbone = ""
        else:
            backbone = "reused" if cached else f"built in {metrics.get('backbone_build_s') or 0:.1f} s"
        click.echo(f"{job.get('_path') or job['id']:44} {job['status']:9} {_fmt(wait_s):>7} {_fmt(engine_s):>8} "
                   f"{_fmt(total_s):>8}  {backbone}")
        if job.get("error"):
            click.echo(f"  error: {job['error'].get('code')}: {job['error'].get('message')}")
    click.echo("(wait: submit to start; engine: optimization; total: submit to finish)")


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return (parse_iso(end) - parse_iso(start)).total_seconds()


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
