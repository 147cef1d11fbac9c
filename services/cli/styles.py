"""``atelier styles``: fast-style models (Johnson et al. 2016), trained by the service or, with ``--local``, here.

    atelier styles train starry.jpg --train photos/ --steps 2000 --size 256 -o starry.id     # through the API
    atelier styles list
    atelier styles status $(cat starry.id)
    atelier styles cancel $(cat starry.id)
    atelier stylize cat.jpg --style-model $(cat starry.id) -o cat.png                         # applied by the service

    atelier styles train starry.jpg --train photos/ --local -o starry.atls                    # trained in-process
    atelier stylize cat.jpg --style-model starry.atls -o cat.png                              # applied in-process

A thin shell over ``services.client`` (``train_style``, ``style``, ``list_styles``, ``cancel_style``,
``wait_style``) and, with ``--local``, over the engine's ``worker.engine.trainer.train`` and
``feedforward.model_to_bytes``: the local twin of the service, as ``atelier stylize`` is of ``atelier submit``.

Training flags are generated from ``shared.train_params.TRAIN_PARAM_SPECS`` (``--steps``, ``--size``, ``--width``,
``--residual-blocks``, ``--batch-size``...), validated with the API's wording before anything is uploaded or loaded,
with environment twins ``ATELIER_TRAIN_<NAME>``. Through the API only the flags given are sent (the server's
defaults apply to the rest). ``--train`` takes image files or folders (searched recursively for jpg, jpeg, png and
webp); without it the service trains on its built-in set (``data/training``), and so does ``--local``.

Model files (``--local``): the engine's own format (``worker/engine/feedforward.py``: magic, JSON header, raw
tensors, a tag; no pickle, no Keras deserialisation). Unsigned by default (the tag is a SHA-256 of the file:
integrity, not origin), because a file on your own disk that you trained yourself needs no proof of origin, and an
unsigned file loads anywhere without a secret. With ``--key`` (or ``ATELIER_MODEL_SIGNING_KEY``, the service's own
setting) the tag is HMAC-SHA256 under that key, and ``atelier stylize --style-model FILE`` then needs the same key
(it refuses a signed file without one, an unsigned file with one, and a file signed with another key). Anything the
engine did not write is refused with one line naming why.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from services.cli.jobs import api_key_option, api_option
from services.cli.options import given_params, train_param_options, train_params_from_options
from services.cli.stylize import OneLineCommand, fail
from shared.errors import AtelierError
from shared.train_params import TRAIN_PARAM_SPECS, TrainParams

TRAIN_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
MODEL_SUFFIX = ".atls"  # what the service names its model files (models/<id>/model.atls)
EXIT_INTERRUPTED = 130
TERMINAL = ("succeeded", "failed", "canceled")

key_option = click.option(
    "--key", "signing_key", default=None, envvar="ATELIER_MODEL_SIGNING_KEY", show_envvar=True,
    help="With --local: sign the model file with HMAC-SHA256 under this key (default: unsigned, SHA-256 only).")


@click.group(context_settings={"max_content_width": 120})
def styles() -> None:
    """Fast-style models: train one per style, then apply it in one pass (atelier stylize --style-model)."""


# --- train ------------------------------------------------------------------------------------------------------


@styles.command("train", cls=OneLineCommand, context_settings={"max_content_width": 120})
@click.argument("style_images", metavar="STYLE...", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--train", "train_paths", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="A training image, or a folder of them (recursive); repeat for several. Default: the built-in "
              "training set.")
@click.option("--from-batch", default=None, metavar="BATCH_ID",
              help="Train on the contents of one of your batches (through the API; not with --train).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Through the API: write the model id to this file (as soon as it is known). With --local: the "
              f"model file to write (required; e.g. model{MODEL_SUFFIX}).")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Through the API: follow the training with a progress bar until it ends.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=1), default=None,
              help="With --wait: stop waiting after this many seconds (the training goes on).")
@click.option("--local", is_flag=True, help="Train here with the engine (no service) and write a model file.")
@key_option
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --local: write the training metrics (loss history, timings) as JSON to this file.")
@click.option("--json", "as_json", is_flag=True, help="Through the API: print the model record as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@api_option
@api_key_option
@train_param_options()
def train(style_images: tuple[Path, ...], train_paths: tuple[Path, ...], from_batch: str | None,
          output: Path | None, wait: bool, timeout_s: float | None, local: bool, signing_key: str | None,
          report: Path | None, as_json: bool, quiet: bool, api_url: str, api_key: str | None,
          **param_options: Any) -> None:
    """Train a fast-style model for STYLE (several are blended by --style-blend).

    \b
    Examples:
      atelier styles train starry.jpg --train photos/ --steps 2000 -o starry.id
      atelier styles train starry.jpg --local --size 256 --steps 2000 -o starry.atls
    """
    try:
        params = train_params_from_options(param_options).with_styles(len(style_images))
        if train_paths and from_batch is not None:
            raise AtelierError("bad_request", "give either --train or --from-batch, not both")
        train_files = training_files(train_paths)
    except AtelierError as error:
        raise fail(error.message) from None
    if local:
        if from_batch is not None:
            raise fail("--from-batch names a batch on the service; with --local give --train images")
        if output is None:
            raise fail(f"--local needs -o/--output, the model file to write (e.g. model{MODEL_SUFFIX})")
        _train_local(style_images, train_files, params, output, signing_key, report, quiet)
        return
    payload = given_params(TRAIN_PARAM_SPECS, param_options, params.to_dict())
    _train_remote(style_images, train_files, from_batch, payload, output, wait, timeout_s, as_json, quiet,
                  api_url, api_key)


def training_files(paths: tuple[Path, ...]) -> list[Path]:
    """The image files ``--train`` names: files as given, folders searched recursively (sorted, hidden skipped)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TRAIN_SUFFIXES
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not found:
                raise AtelierError("bad_request", f"--train folder {str(path)!r} holds no images "
                                   f"({', '.join(TRAIN_SUFFIXES)})")
            files += found
        else:
            files.append(path)
    return files


def _train_remote(style_images: tuple[Path, ...], train_files: list[Path], from_batch: str | None,
                  payload: dict[str, Any], output: Path | None, wait: bool, timeout_s: float | None,
                  as_json: bool, quiet: bool, api_url: str, api_key: str | None) -> None:
    from services.cli.jobs import wait_with_bar
    from services.client import Client, ClientError

    client = Client(api_url, api_key=api_key)
    try:
        model = client.train_style(list(style_images), train=train_files, from_batch=from_batch, params=payload)
        if output is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(model["id"] + "\n")
        if not wait:
            click.echo(json.dumps(model, indent=2) if as_json else f"{model['id']} {model['status']}")
            return
        click.echo(f"style model {model['id']} submitted", err=True)
        if quiet:
            model = client.wait_style(model["id"], timeout_s=timeout_s)
        else:
            model = wait_with_bar(client, model["id"], timeout_s=timeout_s, label="train", wait=client.wait_style,
                                  unit="step", total_param="steps")
    except ClientError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": ")) from None
    if model["status"] != "succeeded":
        error = model.get("error") or {}
        raise fail(f"style model {model['id']} {model['status']}: {error.get('code')}: {error.get('message')}")
    click.echo(json.dumps(model, indent=2) if as_json else model["id"])
    if not as_json:
        click.echo(f"trained: apply with  atelier stylize CONTENT --style-model {model['id']} -o OUT.png", err=True)


def _train_local(style_images: tuple[Path, ...], train_files: list[Path], params: TrainParams, output: Path,
                 signing_key: str | None, report: Path | None, quiet: bool) -> None:
    from services.atomic import write_atomically
    from services.cli.stylize import _make_output_dirs, _read_rgb

    try:
        styles_rgb = [_read_rgb(path, role="style") for path in style_images]
        contents = [_read_rgb(path, role="training") for path in train_files] or _builtin_training_images()
        _make_output_dirs(output, report, None)
        result = _run_trainer(styles_rgb, contents, params, show_progress=not quiet)
        from worker.engine.feedforward import model_to_bytes

        write_atomically(output, model_to_bytes(result.model, key=signing_key.encode() if signing_key else None))
        if report is not None:
            metrics = {**result.metrics, "params": params.to_dict(), "output": str(output),
                       "signed": bool(signing_key),
                       "inputs": {"styles": [str(p) for p in style_images],
                                  "train": [str(p) for p in train_files] or "builtin"}}
            report.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    except AtelierError as error:
        raise fail(error.message) from None
    except OSError as error:
        raise fail(f"{error.filename or ''}: {error.strerror or error}".lstrip(": ")) from None
    metrics = result.metrics
    if result.cancelled:
        click.echo(f"interrupted: wrote the model after {metrics['step']} of {params.steps} steps to {output}",
                   err=True)
        sys.exit(EXIT_INTERRUPTED)
    if not quiet:
        final = (metrics["losses"].get("final") or {}).get("total")
        click.echo(f"wrote {output} ({metrics['step']} steps in {metrics['seconds']:.1f} s, "
                   f"{metrics['seconds_per_step']:.3f} s/step" + (f", loss {final:.4g}" if final else "") + ")",
                   err=True)


def _builtin_training_images() -> list[Any]:
    from services.training_set import builtin_training_images

    images = builtin_training_images()
    if not images:
        raise AtelierError("bad_request", "no --train images and no built-in training set (data/training) here")
    return images


def _run_trainer(styles_rgb: list[Any], contents: list[Any], params: TrainParams, *, show_progress: bool) -> Any:
    from services.cli.stylize import EngineProgress, _quiet_tensorflow_import

    with _quiet_tensorflow_import():
        from worker.engine.trainer import train as engine_train
    from shared.settings import Settings
    from worker.weights_config import weight_source

    weights = weight_source(Settings.from_env())
    with EngineProgress("step", "train", show_progress, initial_from_first=False) as on_progress:
        return engine_train(styles_rgb, contents, params, on_progress=on_progress, weights=weights)


# --- list, status, cancel ---------------------------------------------------------------------------------------


@styles.command("list")
@click.option("--status", "status_filter", type=click.Choice(["queued", "running", *TERMINAL]), default=None,
              help="Only models in this state.")
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True)
@click.option("--cursor", default=None, help="The next page (printed at the end of the previous one).")
@click.option("--json", "as_json", is_flag=True, help="Print the page as JSON.")
@api_option
@api_key_option
def list_(status_filter: str | None, limit: int, cursor: str | None, as_json: bool, api_url: str,
          api_key: str | None) -> None:
    """List your style models, newest first."""
    from services.client import Client, ClientError

    try:
        models, next_cursor = Client(api_url, api_key=api_key).list_styles(status_filter, limit, cursor)
    except ClientError as exc:
        raise fail(str(exc)) from None
    if as_json:
        click.echo(json.dumps({"styles": models, "next_cursor": next_cursor}, indent=2))
        return
    for model in models:
        click.echo(describe_style(model).splitlines()[0])
    if next_cursor:
        click.echo(f"more: atelier styles list --cursor {next_cursor}", err=True)


@styles.command("status")
@click.argument("model_id")
@click.option("--json", "as_json", is_flag=True, help="Print the whole record as JSON (with the loss curve).")
@api_option
@api_key_option
def status(model_id: str, as_json: bool, api_url: str, api_key: str | None) -> None:
    """Show style model MODEL_ID: status, progress in steps, last loss, error."""
    from services.client import Client, ClientError

    try:
        model = Client(api_url, api_key=api_key).style(model_id)
    except ClientError as exc:
        raise fail(str(exc)) from None
    click.echo(json.dumps(model, indent=2) if as_json else describe_style(model))


@styles.command("cancel")
@click.argument("model_id")
@api_option
@api_key_option
def cancel(model_id: str, api_url: str, api_key: str | None) -> None:
    """Cancel the training of MODEL_ID: a queued one never runs; a running one stops at its next report."""
    from services.client import Client, ClientError

    try:
        model = Client(api_url, api_key=api_key).cancel_style(model_id)
    except ClientError as exc:
        raise fail(str(exc)) from None
    pending = model.get("cancel_requested") and model["status"] not in TERMINAL
    click.echo(f"{model['id']} {model['status']}" + (" (cancel requested)" if pending else ""))


def describe_style(model: dict[str, Any]) -> str:
    """A summary line (id, status, steps done of total, size, last loss, age) and, when useful, an error line."""
    params = model.get("params") or {}
    progress = model.get("progress") or {}
    steps = progress.get("iterations") or params.get("steps")
    line = f"{model['id']} {model['status']}"
    if progress:
        line += f" {progress.get('iteration')}/{steps} steps"
        if model["status"] == "running" and progress.get("eta_s") is not None:
            line += f", about {progress['eta_s']:.0f} s left"
    elif steps:
        line += f" {steps} steps"
    if params.get("size"):
        line += f", {params['size']} px"
    loss = (progress.get("losses") or {}).get("total")
    if loss is not None:
        line += f", loss {loss:.4g}"
    if model.get("created_at"):
        line += f", created {model['created_at']}"
    error = model.get("error")
    if error and model["status"] != "succeeded":
        line += f"\nerror: {error.get('code')}: {error.get('message')}"
    return line
