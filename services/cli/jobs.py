"""``atelier submit`` and ``atelier status``: the HTTP API from the command line, a thin shell over
``services.client``.

    atelier submit cat.jpg starry.jpg --size 256 --iterations 100 --wait -o cat_starry.png
    atelier submit cat.jpg --style-model 3f2a... --wait -o cat_fast.png    # a trained model (atelier styles train)
    atelier status 3f2a...

``--api`` / ``--api-key`` have the environment twins ``ATELIER_API_URL`` / ``ATELIER_API_KEY``. Stylization options
are the same flags as ``atelier stylize`` (generated from ``shared.params``), validated here with the API's wording
before anything is uploaded; only the options given are sent, so the server's defaults apply to the rest.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from services.cli.options import given_params, params_from_options, style_param_options
from shared.errors import AtelierError
from shared.params import PARAM_SPECS

DEFAULT_API_URL = "http://127.0.0.1:8000"

api_option = click.option("--api", "api_url", default=DEFAULT_API_URL, show_default=True, envvar="ATELIER_API_URL",
                          show_envvar=True, help="Base URL of the Atelier API.")
api_key_option = click.option("--api-key", default=None, envvar="ATELIER_API_KEY", show_envvar=True,
                              help="Bearer token, if the API requires one.")


def _client(api_url: str, api_key: str | None) -> Any:
    from services.client import Client

    return Client(api_url, api_key=api_key)


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


@click.command()
@click.argument("content", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("styles", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--wait", is_flag=True, help="Wait for the job to finish, with a progress bar.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --wait: write the result PNG here (default: CONTENT_stylized.png).")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=1), default=None,
              help="With --wait: give up after this many seconds (the job keeps running).")
@click.option("--json", "as_json", is_flag=True, help="Print the job as JSON instead of a summary line.")
@click.option("--webhook", default=None, metavar="URL",
              help="POST a signed event (Standard Webhooks) to URL when the job ends; see `atelier webhooks`.")
@click.option("--webhook-events", default=None, metavar="LIST",
              help="With --webhook: which ends call it, comma separated (succeeded,failed,canceled; default all).")
@api_option
@api_key_option
@style_param_options()
def submit(content: Path, styles: tuple[Path, ...], wait: bool, output: Path | None, timeout_s: float | None,
           as_json: bool, webhook: str | None, webhook_events: str | None, api_url: str, api_key: str | None,
           **param_options: Any) -> None:
    """Send CONTENT and one or more STYLE images to the API as a new job.

    With --style-model ID (a model from `atelier styles train`) give no STYLE: the model is the style, applied in
    one forward pass (plus --refine-iterations of optimization from its output, if asked)."""
    from services.client import ClientError

    try:
        params = params_from_options(param_options).with_styles(len(styles))
    except AtelierError as exc:
        _fail(exc.message)
    payload = given_params(PARAM_SPECS, param_options, params.to_dict())
    client = _client(api_url, api_key)
    try:
        if webhook_events and not webhook:
            _fail("--webhook-events needs --webhook URL")
        events = [event.strip() for event in webhook_events.split(",")] if webhook_events else None
        job = client.submit(content, list(styles), params=payload, webhook=webhook, webhook_events=events)
        if not wait:
            click.echo(json.dumps(job, indent=2) if as_json else f"{job['id']} {job['status']}")
            return
        click.echo(f"job {job['id']} submitted", err=True)
        job = wait_with_bar(client, job["id"], timeout_s=timeout_s)
        if job["status"] != "succeeded":
            error = job.get("error") or {}
            _fail(f"job {job['id']} {job['status']}: {error.get('code')}: {error.get('message')}")
        target = output or content.with_name(f"{content.stem}_stylized.png")
        client.download_result(job["id"], target)
        click.echo(json.dumps(job, indent=2) if as_json else f"{job['id']} succeeded -> {target}")
    except ClientError as exc:
        _fail(str(exc))


@click.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print the whole job as JSON.")
@api_option
@api_key_option
def status(job_id: str, as_json: bool, api_url: str, api_key: str | None) -> None:
    """Show the status of job JOB_ID (progress, result URL or error)."""
    from services.client import ClientError

    try:
        job = _client(api_url, api_key).get(job_id)
    except ClientError as exc:
        _fail(str(exc))
    click.echo(json.dumps(job, indent=2) if as_json else describe_job(job))


def describe_job(job: dict[str, Any]) -> str:
    """One or two lines for people: status, progress, result or error."""
    line = f"{job['id']} {job['status']}"
    progress = job.get("progress") or {}
    if progress and job["status"] in ("running", "canceled", "failed"):
        line += f" {progress.get('percent', 0):.0f}% ({progress.get('iteration')}/{progress.get('iterations')})"
        if job["status"] == "running" and progress.get("eta_s") is not None:
            line += f", about {progress['eta_s']:.0f} s left"
    result = job.get("result")
    if result:
        line += f"\nresult: {result.get('width')}x{result.get('height')} {result.get('url')}"
    error = job.get("error")
    if error and job["status"] != "succeeded":
        line += f"\nerror: {error.get('code')}: {error.get('message')}"
    return line


def wait_with_bar(client: Any, job_id: str, *, timeout_s: float | None = None, label: str | None = None,
                  position: int = 0, wait: Any = None, unit: str = "it", total_param: str = "iterations"
                  ) -> dict[str, Any]:
    """``client.wait`` with a tqdm bar over iterations (on stderr); returns the final job. ``wait`` is another
    waiting method of the same shape (``client.wait_style``, with ``unit="step"`` and ``total_param="steps"``)."""
    from tqdm import tqdm

    wait = wait or client.wait
    bar = tqdm(total=None, desc=label or job_id[:8], unit=unit, position=position, leave=True, file=sys.stderr,
               dynamic_ncols=True)

    last: dict[str, Any] = {}

    def update(job: dict[str, Any]) -> None:
        progress = job.get("progress") or {}
        state = {"status": job["status"], "iteration": progress.get("iteration")}
        if state == last:  # redraw only on news, so logs that are not terminals stay short
            return
        last.update(state)
        iterations = progress.get("iterations") or (job.get("params") or {}).get(total_param)
        if iterations and bar.total != iterations:
            bar.total = iterations
        if progress.get("iteration") is not None:
            bar.n = progress["iteration"]
        losses = progress.get("losses") or {}
        postfix = {"status": job["status"]}
        if "total" in losses:
            postfix["loss"] = f"{losses['total']:.3g}"
        bar.set_postfix(postfix, refresh=False)
        bar.refresh()

    try:
        return wait(job_id, timeout_s=timeout_s, poll_interval_s=0.5, on_update=update)
    finally:
        bar.close()

