"""``atelier stylize``: run the engine locally on image files, with a progress bar, previews and a JSON report.

The command is a thin shell over ``worker.engine.stylize``: it validates everything it can (parameters, input
files, output path) *before* importing TensorFlow, so bad input fails fast with one line and no traceback, and
``atelier --help`` never pays for TensorFlow.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from services.cli.options import params_from_options, style_param_options
from shared.errors import AtelierError, ImageError
from shared.params import StyleParams

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
@click.argument("styles", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
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
@style_param_options()
def stylize(content: Path, styles: tuple[Path, ...], output: Path, save_every: int | None,
            preview_dir: Path | None, report: Path | None, quiet: bool, **param_options: Any) -> None:
    """Stylize CONTENT with one or more STYLE images and write OUTPUT.

    \b
    Example:
      atelier stylize cat.jpg starry_night.jpg -o cat_starry.png --size 512 --report run.json
    """
    try:
        params = params_from_options(param_options).with_styles(len(styles))
        params = _with_progress_for_saves(params, save_every, preview_dir)
        _check_output_format(output)
        content_rgb = _read_rgb(content, role="content")
        style_rgbs = [_read_rgb(path, role="style") for path in styles]
        _make_output_dirs(output, report, preview_dir)
        result = _run_engine(content_rgb, style_rgbs, params, save_every=save_every,
                             preview_dir=preview_dir, output=output, show_progress=not quiet)
        _write_image(result.image, output)
        if report is not None:
            _write_report(report, result.metrics, params, content, styles, output)
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
                preview_dir: Path | None, output: Path, show_progress: bool) -> Any:
    from tqdm import tqdm

    with _quiet_tensorflow_import():
        from worker.engine import stylize as engine_stylize
    from shared.settings import Settings
    from worker.weights_config import weight_source

    # The engine reads no environment; the weights folders come from the settings (ATELIER_WEIGHTS_DIR, ...).
    weights = weight_source(Settings.from_env())

    interrupted = _InterruptFlag()
    bars: list[Any] = []  # created at the first report, so an error found while starting up stays one line

    def on_progress(progress: Any) -> bool:
        if not bars:
            # initial=: the bar starts at the first report, so its rate counts only what it has seen.
            bars.append(tqdm(total=progress.iterations, initial=progress.iteration, unit="it", desc="stylize",
                             file=sys.stderr, disable=not show_progress, dynamic_ncols=True))
        bar = bars[0]
        bar.set_postfix(loss=f"{progress.losses['total']:.4g}", refresh=False)
        bar.update(progress.iteration - bar.n)
        if _should_save(progress.iteration, progress.iterations, save_every, preview_dir):
            _save_preview(progress, preview_dir, save_every, output)
        return interrupted.is_set

    try:
        with interrupted:
            return engine_stylize(content_rgb, style_rgbs, params, on_progress=on_progress, weights=weights)
    finally:
        for bar in bars:
            bar.close()


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
                  styles: tuple[Path, ...], output: Path) -> None:
    report = dict(metrics)
    report["params"] = params.to_dict()
    report["inputs"] = {"content": str(content), "styles": [str(style) for style in styles]}
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
