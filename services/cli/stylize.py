"""``atelier stylize``: run the engine locally on image files, with a progress bar, previews and a JSON report.

The command is a thin shell over ``worker.engine.stylize``: it validates everything it can (parameters, input
files, output path) *before* importing TensorFlow, so bad input fails fast with one line and no traceback, and
``atelier --help`` never pays for TensorFlow.

With ``--style-model FILE_OR_ID`` it applies a trained fast-style model instead of optimizing (give no STYLE then):

- a FILE (``atelier styles train --local -o model.atls``) is loaded here with ``feedforward.model_from_bytes`` (only
  files the engine wrote load; a signed one needs its ``--key``) and applied in one forward pass
  (``feedforward.stylize_fast``), no service involved. ``--refine-iterations N`` then runs N Gatys iterations from
  the network's output (``engine.stylize(init_image=...)``, as the worker does); their style targets are the STYLE
  images given (a model file holds no style images), which are required then.
- an ID (32 hexadecimal characters, and no file of that name) is a model the service trained: the content goes to
  ``--api`` as a job with ``params.style_model`` (and ``refine_iterations``, refined against the model's own styles),
  with a progress bar, and the result is downloaded to OUTPUT.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from services.cli.jobs import api_key_option, api_option
from services.cli.options import given_params, params_from_options, style_param_options
from shared.errors import AtelierError, EngineError, ImageError, ParamError
from shared.params import MODEL_ID_PATTERN, PARAM_SPECS, SPECS_BY_NAME, StyleParams, coerce

OUTPUT_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


class OneLineCommand(click.Command):
    """A command whose usage errors print ``Error: ...`` on one line (no usage block), exit status 2.

    click's default shows the usage and a hint on extra lines; a user who typed a wrong path wants to read the one
    line that says which path.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as error:
            raise OneLineUsageError(error.format_message(), ctx) from None


class OneLineUsageError(click.UsageError):
    def show(self, file: Any = None) -> None:
        click.echo(f"Error: {self.format_message()}", err=True)


def fail(message: str) -> click.ClickException:
    """A one-line error (exit status 1); newlines in library messages are folded so it stays one line."""
    return click.ClickException(" ".join(message.split()))


@click.command(cls=OneLineCommand, context_settings={"max_content_width": 120})
@click.argument("content", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("styles", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the result (PNG; .jpg/.webp also work).")
@click.option("--save-every", type=click.IntRange(min=1), default=None, envvar="ATELIER_SAVE_EVERY",
              show_envvar=True, help="Save an intermediate image every N iterations (to --preview-dir).")
@click.option("--preview-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              envvar="ATELIER_PREVIEW_DIR", show_envvar=True,
              help="Directory for intermediate images (default: next to OUTPUT when --save-every is given).")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None, envvar="ATELIER_REPORT",
              show_envvar=True, help="Write the run's metrics as JSON to this file.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--init-image", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Start the optimization from this picture (resized to --size) instead of --init, at one scale: "
                   "e.g. an earlier result, to refine it at a print size.")
@click.option("--key", "signing_key", default=None, envvar="ATELIER_MODEL_SIGNING_KEY", show_envvar=True,
              help="With --style-model FILE: the key the model file was signed with (atelier styles train --key).")
@api_option
@api_key_option
@style_param_options()
def stylize(content: Path, styles: tuple[Path, ...], output: Path, save_every: int | None,
            preview_dir: Path | None, report: Path | None, quiet: bool, init_image: Path | None,
            signing_key: str | None, api_url: str, api_key: str | None, **param_options: Any) -> None:
    """Stylize CONTENT with one or more STYLE images and write OUTPUT; or, with --style-model FILE_OR_ID, with a
    trained fast-style model (a model file, applied here; or a model id, applied by the service at --api).

    \b
    Examples:
      atelier stylize cat.jpg starry_night.jpg -o cat_starry.png --size 512 --report run.json
      atelier stylize cat.jpg starry_night.jpg -o cat_print.png --size 4096 --init-image cat_starry.png --iterations 2
      atelier stylize cat.jpg --style-model starry.atls -o cat_fast.png
      atelier stylize cat.jpg --style-model 3f2a... --api http://127.0.0.1:8000 -o cat_fast.png
    """
    style_model = param_options.pop("style_model", None)
    if style_model is not None and init_image is not None:
        raise fail("--init-image and --style-model: a style model starts from its own output; give one of them")
    if style_model is not None:
        model_file, model_id = _resolve_style_model(style_model)
        if model_file is not None:
            _stylize_with_model_file(model_file, content, styles, output, save_every, preview_dir, report, quiet,
                                     signing_key, param_options)
        else:
            _stylize_with_model_id(model_id, content, styles, output, report, quiet, api_url, api_key,
                                   param_options)
        return
    if not styles:
        raise fail("Missing argument 'STYLES...': give one or more style images, or --style-model FILE_OR_ID")
    try:
        params = params_from_options(param_options).with_styles(len(styles))
        params = _with_progress_for_saves(params, save_every, preview_dir)
        _check_output_format(output)
        content_rgb = _read_rgb(content, role="content")
        style_rgbs = [_read_rgb(path, role="style") for path in styles]
        start_rgb = _read_rgb(init_image, role="init") if init_image is not None else None
        _make_output_dirs(output, report, preview_dir)
        result = _run_engine(content_rgb, style_rgbs, params, save_every=save_every, preview_dir=preview_dir,
                             output=output, show_progress=not quiet, init_image=start_rgb)
        _write_image(result.image, output)
        if report is not None:
            _write_report(report, result.metrics, params, content, styles, output, init_image)
    except AtelierError as error:
        raise fail(error.message) from None
    except OSError as error:
        raise fail(f"{error.filename or ''}: {error.strerror or error}".lstrip(": ")) from None
    if result.cancelled:
        click.echo(f"interrupted: wrote the image after {result.metrics.get('iterations_run')} iterations to "
                   f"{output}", err=True)
        sys.exit(130)
    if not quiet:
        click.echo(f"wrote {output} ({result.metrics['seconds']:.1f} s, "
                   f"{result.metrics['seconds_per_iteration']:.3f} s/it)", err=True)


# --- style models ---------------------------------------------------------------------------------------------


def _resolve_style_model(value: str) -> tuple[Path | None, str | None]:
    """``(file, None)`` for an existing file, ``(None, id)`` for a model id; anything else is a one-line error."""
    path = Path(value)
    if path.is_file():
        return path, None
    if re.fullmatch(MODEL_ID_PATTERN, value):
        return None, value
    if path.exists():
        raise fail(f"--style-model {value!r} is not a file; give a model file (atelier styles train --local) or a "
                   "model id")
    raise fail(f"--style-model {value!r}: no such file, and not a model id (32 hexadecimal characters, from "
               "atelier styles train)")


def _stylize_with_model_file(path: Path, content: Path, styles: tuple[Path, ...], output: Path,
                             save_every: int | None, preview_dir: Path | None, report: Path | None, quiet: bool,
                             signing_key: str | None, options: dict[str, Any]) -> None:
    """One forward pass of a local model file (plus ``--refine-iterations`` of Gatys from its output)."""
    try:
        refine = coerce(SPECS_BY_NAME["refine_iterations"], options.pop("refine_iterations", None) or 0)
        params = params_from_options(options)
        refine_params = None
        if refine:
            if not styles:
                raise ParamError("refine_without_styles", f"--refine-iterations {refine} with a model file needs the "
                                 "STYLE images to refine towards (a model file holds none)", field="style")
            refine_params = _with_progress_for_saves(params.replace(iterations=refine).with_styles(len(styles)),
                                                     save_every, preview_dir)
        elif styles:
            raise ParamError("style_images_with_style_model", f"got {len(styles)} style images and a style model: "
                             "the model is the style; give STYLE images only with --refine-iterations",
                             field="style")
        _check_output_format(output)
        content_rgb = _read_rgb(content, role="content")
        style_rgbs = [_read_rgb(p, role="style") for p in styles]
        data = path.read_bytes()
        _make_output_dirs(output, report, preview_dir)
        with _quiet_tensorflow_import():
            from worker.engine import feedforward
        try:
            model = feedforward.model_from_bytes(data, key=signing_key.encode() if signing_key else None)
        except EngineError as error:
            raise EngineError(error.code, f"style model {str(path)!r} refused: {error.message}") from None
        started = time.perf_counter()
        # The model's own colour mode unless --preserve-color (or its environment twin) says otherwise.
        mode = params.preserve_color if options.get("preserve_color") is not None else None
        image = feedforward.stylize_fast(model, content_rgb, size=params.size, preserve_color=mode)
        apply_s = time.perf_counter() - started
        metrics: dict[str, Any] = {
            "mode": "fast", "style_model": str(path), "apply_s": round(apply_s, 4), "seconds": round(apply_s, 4),
            "size_px": [int(image.shape[0]), int(image.shape[1])],
            "model": {"trained_steps": model.meta.get("trained_steps"), "width": model.width,
                      "residual_blocks": model.residual_blocks, "preserve_color": model.preserve_color},
        }
        cancelled = False
        if refine_params is not None:
            result = _run_engine(content_rgb, style_rgbs, refine_params, save_every=save_every,
                                 preview_dir=preview_dir, output=output, show_progress=not quiet, init_image=image)
            image, cancelled = result.image, result.cancelled
            metrics = {**result.metrics, **metrics, "mode": "fast+refine",
                       "seconds": round(time.perf_counter() - started, 4)}
        _write_image(image, output)
        if report is not None:
            _write_report(report, metrics, refine_params or params, content, styles, output)
    except AtelierError as error:
        raise fail(error.message) from None
    except OSError as error:
        raise fail(f"{error.filename or ''}: {error.strerror or error}".lstrip(": ")) from None
    if cancelled:
        click.echo(f"interrupted: wrote the image after {metrics.get('iterations_run')} refinement iterations to "
                   f"{output}", err=True)
        sys.exit(130)
    if not quiet:
        click.echo(f"wrote {output} ({metrics['mode']}, {metrics['seconds']:.3f} s)", err=True)


def _stylize_with_model_id(model_id: str | None, content: Path, styles: tuple[Path, ...], output: Path,
                           report: Path | None, quiet: bool, api_url: str, api_key: str | None,
                           options: dict[str, Any]) -> None:
    """A job on the service with ``params.style_model``; the result downloaded to ``output``."""
    from services.cli.jobs import wait_with_bar
    from services.client import Client, ClientError

    options = {**options, "style_model": model_id}
    try:
        params = params_from_options(options).with_styles(len(styles))
        _check_output_format(output)
    except AtelierError as error:
        raise fail(error.message) from None
    client = Client(api_url, api_key=api_key)
    try:
        job = client.submit(content, params=given_params(PARAM_SPECS, options, params.to_dict()))
        if quiet:
            job = client.wait(job["id"])
        else:
            click.echo(f"job {job['id']} submitted", err=True)
            job = wait_with_bar(client, job["id"], label="stylize")
        if job["status"] != "succeeded":
            error = job.get("error") or {}
            raise fail(f"job {job['id']} {job['status']}: {error.get('code')}: {error.get('message')}")
        png = client.result_bytes(job["id"])
        output.parent.mkdir(parents=True, exist_ok=True)
        if output.suffix.lower() == ".png":
            output.write_bytes(png)
        else:
            from shared.images import load_rgb

            _write_image(load_rgb(png, field="result"), output)
        if report is not None:
            _write_report(report, dict(job.get("metrics") or {}), params, content, styles, output)
    except ClientError as exc:
        raise fail(str(exc)) from None
    except OSError as error:
        raise fail(f"{error.filename or ''}: {error.strerror or error}".lstrip(": ")) from None
    if not quiet:
        click.echo(f"wrote {output} (job {job['id']}, {(job.get('metrics') or {}).get('mode', 'fast')})", err=True)


# --- steps --------------------------------------------------------------------------------------------------------


def _with_progress_for_saves(params: StyleParams, save_every: int | None, preview_dir: Path | None) -> StyleParams:
    """The engine only calls back every ``progress_every`` iterations, so make that divide ``save_every``.

    With only ``--preview-dir``, previews are saved at every progress report.
    """
    if save_every is None:
        return params
    return params.replace(progress_every=math.gcd(params.progress_every, save_every))


def _read_rgb(path: Path, *, role: str) -> Any:
    """Decode an image file to an RGB uint8 array with the API's decoder: same formats and checks everywhere."""
    from shared.images import load_rgb

    return load_rgb(path.read_bytes(), field=f"{role} image {str(path)!r}")


def _check_output_format(output: Path) -> None:
    if output.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ImageError("bad_output_format", f"output {str(output)!r} has an unsupported extension; "
                         f"use one of {', '.join(OUTPUT_SUFFIXES)}", field="output")


def _make_output_dirs(output: Path, report: Path | None, preview_dir: Path | None) -> None:
    """Create the output directories and fail before the (long) run, not after it, when one is not writable.
    Called only once the inputs are known good, so bad input leaves nothing behind."""
    for directory in {output.parent, *([report.parent] if report else []), *([preview_dir] if preview_dir else [])}:
        directory.mkdir(parents=True, exist_ok=True)
        if not os.access(directory, os.W_OK):
            raise OSError(13, "directory is not writable", str(directory))


def _run_engine(content_rgb: Any, style_rgbs: list[Any], params: StyleParams, *, save_every: int | None,
                preview_dir: Path | None, output: Path, show_progress: bool, init_image: Any = None) -> Any:
    with _quiet_tensorflow_import():
        from worker.engine import stylize as engine_stylize
    from shared.settings import Settings, engine_memory_budget_bytes
    from worker.weights_config import weight_source

    # The engine reads no environment; the weights folders come from the settings (ATELIER_WEIGHTS_DIR, ...), and
    # so does the memory budget that decides tiling (ATELIER_ENGINE_MEMORY_BYTES).
    settings = Settings.from_env()
    weights = weight_source(settings)

    def save_previews(progress: Any) -> None:
        if _should_save(progress.iteration, progress.iterations, save_every, preview_dir):
            _save_preview(progress, preview_dir, save_every, output)

    # initial_from_first: the bar starts at the first report, so its rate counts only what it has seen.
    with EngineProgress("it", "stylize", show_progress, initial_from_first=True, also=save_previews) as on_progress:
        return engine_stylize(content_rgb, style_rgbs, params, on_progress=on_progress, weights=weights,
                              init_image=init_image, memory_budget_bytes=engine_memory_budget_bytes(settings))


class EngineProgress:
    """The local engine's (or trainer's) ``on_progress``: a tqdm bar with the loss, and Ctrl-C as a stop request
    (``_InterruptFlag``). The bar is created at the first report, so an error found while starting up stays one
    line; ``also`` runs on every report (previews)."""

    def __init__(self, unit: str, desc: str, show_progress: bool, *, initial_from_first: bool,
                 also: Any = None) -> None:
        self.unit, self.desc, self.show, self.initial_from_first, self.also = (
            unit, desc, show_progress, initial_from_first, also)
        self.bar: Any = None
        self.interrupted = _InterruptFlag()

    def __call__(self, progress: Any) -> bool:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=progress.iterations, initial=progress.iteration if self.initial_from_first else 0,
                            unit=self.unit, desc=self.desc, file=sys.stderr, disable=not self.show,
                            dynamic_ncols=True)
        self.bar.set_postfix(loss=f"{progress.losses['total']:.4g}", refresh=False)
        self.bar.update(progress.iteration - self.bar.n)
        if self.also is not None:
            self.also(progress)
        return self.interrupted.is_set

    def __enter__(self) -> EngineProgress:
        self.interrupted.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.interrupted.__exit__(*exc)
        if self.bar is not None:
            self.bar.close()


def _should_save(iteration: int, iterations: int, save_every: int | None, preview_dir: Path | None) -> bool:
    if save_every is None:
        return preview_dir is not None and iteration < iterations
    return iteration % save_every == 0 and iteration < iterations  # the last image is OUTPUT itself


def _save_preview(progress: Any, preview_dir: Path | None, save_every: int | None, output: Path) -> None:
    directory = preview_dir if preview_dir is not None else output.parent
    width = len(str(progress.iterations))
    _write_image(progress.preview(), directory / f"{output.stem}_{progress.iteration:0{width}d}.png")


def _write_image(image_rgb: Any, path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image_rgb, mode="RGB").save(path)


def _write_report(path: Path, metrics: dict[str, Any], params: StyleParams, content: Path,
                  styles: tuple[Path, ...], output: Path, init_image: Path | None = None) -> None:
    report = dict(metrics)
    report["params"] = params.to_dict()
    report["inputs"] = {"content": str(content), "styles": [str(style) for style in styles],
                        **({"init_image": str(init_image)} if init_image is not None else {})}
    report["output"] = str(output)
    path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def _quiet_tensorflow_import() -> Iterator[None]:
    """Silence the native start-up lines TensorFlow writes to the stderr file descriptor while it is imported
    ("oneDNN custom operations are on", "absl::InitializeLog"): TF 2.21 prints them whatever
    TF_CPP_MIN_LOG_LEVEL says, and they would bury our one-line errors. A user who sets TF_CPP_MIN_LOG_LEVEL
    gets TensorFlow's output untouched. Python exceptions raised by the import are unaffected (they are printed
    after the descriptor is restored)."""
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        yield
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    sys.stderr.flush()
    stderr_fd = sys.stderr.fileno()
    saved_fd = os.dup(stderr_fd)
    devnull_fd = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull_fd, stderr_fd)
        yield
    finally:
        os.dup2(saved_fd, stderr_fd)
        os.close(saved_fd)
        os.close(devnull_fd)


class _InterruptFlag:
    """First Ctrl-C asks the engine to stop at its next progress report (and the partial image is written);
    a second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.is_set = False
        self._previous: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.is_set:
            raise KeyboardInterrupt
        self.is_set = True
        click.echo("\nstopping at the next progress report (Ctrl-C again to abort)", err=True)

    def __enter__(self) -> _InterruptFlag:
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread (e.g. called from a test runner thread): no handler
            self._previous = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
