"""``atelier batch``: style every image of a folder through the API, resumably.

    atelier batch photos/ --style starry.jpg -o styled/ --size 512 --iterations 300
    atelier batch photos/ --style a.jpg --style b.jpg --style-blend 0.7,0.3 -o styled/ --dry-run
    atelier batch photos/ --style-model 3f2a... -o styled/      # a trained model (atelier styles train): no --style

It walks INPUT_DIR recursively (jpg, jpeg, png, webp; other files are counted and skipped), mirrors subfolders in
OUTPUT_DIR (``photos/a/x.jpg`` -> ``styled/a/x.png``), and shows one progress bar: images done of total, the running
jobs' iterations, the ETA. A manifest in OUTPUT_DIR (``services/manifest.py``) makes it resumable: the batch id is
recorded before any image is sent, each image's job id right after; a rerun asks the API for the batch's items by
name, so it re-attaches to jobs in flight and never submits an image twice, and skips finished outputs. Ctrl-C
leaves the jobs running on the service; the same command picks them up. At the end it lists failures with their
reasons and exits with status 1 if there were any.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from services.cli.jobs import api_key_option, api_option
from services.cli.options import given_params, params_from_options, style_param_options
from shared.errors import AtelierError
from shared.params import PARAM_SPECS

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
POLL_INTERVAL_S = 0.5
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class Source:
    name: str  # relative POSIX path under INPUT_DIR: the item's name in the batch
    path: Path
    output: Path


def scan(input_dir: Path, output_dir: Path) -> tuple[list[Source], list[Path]]:
    """Images under ``input_dir`` (sorted, with their output paths) and the other files that are skipped."""
    from services.batches import result_names

    images, others = [], []
    output_dir = output_dir.resolve()
    for path in sorted(p for p in input_dir.rglob("*") if p.is_file()):
        if output_dir in path.resolve().parents or path.name.startswith("."):
            continue  # OUTPUT_DIR inside INPUT_DIR, hidden files (our own manifest and temporary files)
        (images if path.suffix.lower() in IMAGE_SUFFIXES else others).append(path)
    names = [path.relative_to(input_dir).as_posix() for path in images]
    outputs = result_names(names)
    return [Source(n, p, output_dir / o) for n, p, o in zip(names, images, outputs, strict=True)], others


@click.command(context_settings={"max_content_width": 120})
@click.argument("input_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--style", "styles", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A style image; repeat for several (mixed with --style-blend). None with --style-model.")
@click.option("-o", "--output", "output_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the results (subfolders of INPUT_DIR are mirrored) and the resume manifest.")
@click.option("--dry-run", is_flag=True, help="List what would be done (from the manifest); send nothing.")
@click.option("--mode", type=click.Choice(["optimize", "fast", "auto"]), default="optimize", show_default=True,
              envvar="ATELIER_BATCH_MODE",
              help="optimize: a Gatys job per image. fast: train a style model on a sample of the images (or use "
                   "--style-model), then one forward pass each. auto: the service picks the cheaper one and says why.")
@click.option("--train-sample", type=click.IntRange(1, 256), default=32, show_default=True,
              help="With --mode fast/auto: how many of the images go with the batch's creation for it to learn from.")
@click.option("--train-params", default=None, metavar="JSON",
              help='With --mode fast/auto: training parameters, e.g. \'{"steps": 500}\' (see atelier styles train).')
@api_option
@api_key_option
@style_param_options()
def batch(input_dir: Path, styles: tuple[Path, ...], output_dir: Path, dry_run: bool, mode: str, train_sample: int,
          train_params: str | None, api_url: str, api_key: str | None, **param_options: Any) -> None:
    """Style every image under INPUT_DIR with the --style image(s), or a trained --style-model, into OUTPUT_DIR,
    resumably."""
    from services.manifest import Manifest, ManifestError, file_sha256, fingerprint

    try:
        params = params_from_options(param_options).with_styles(len(styles))
    except AtelierError as exc:
        raise click.ClickException(exc.message) from None
    payload = given_params(PARAM_SPECS, param_options, params.to_dict())
    training = _train_params(train_params)
    sources, others = scan(input_dir, output_dir)
    try:
        manifest = Manifest.open(output_dir, api_url=api_url, fingerprint=fingerprint(
            [file_sha256(s) for s in styles], payload if mode == "optimize" else
            {**payload, "mode": mode, "train_params": training, "train_sample": train_sample}))
    except ManifestError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{len(sources)} images in {input_dir}" + (f", {len(others)} other files skipped" if others else ""),
               err=True)
    if dry_run:
        _dry_run(sources, manifest)
        return
    if not sources:
        return
    run = BatchRun(api_url, api_key, manifest, sources, list(styles), payload,
                   mode=mode, train_sample=train_sample, train_params=training)
    try:
        failures = run.run()
    except KeyboardInterrupt:
        run.close_bar()
        click.echo(f"interrupted; jobs already sent keep running. Run the same command again to resume "
                   f"(manifest {manifest.path}).", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except run.client_errors as exc:
        run.close_bar()
        raise click.ClickException(str(exc)) from None
    if failures:
        click.echo(f"{len(failures)} of {len(sources)} images failed:", err=True)
        for name, reason in failures:
            click.echo(f"  {name}: {reason}", err=True)
        sys.exit(1)
    click.echo(f"done: {len(sources)} images in {output_dir}", err=True)


def _train_params(text: str | None) -> dict[str, Any] | None:
    """``--train-params`` checked here (one line naming the problem) before anything is sent."""
    if not text:
        return None
    from shared.train_params import TrainParams

    try:
        values = json.loads(text)
        if not isinstance(values, dict):
            raise ValueError("not a JSON object")
        TrainParams.from_mapping(values)
    except (ValueError, AtelierError) as exc:
        raise click.ClickException(f"--train-params: {getattr(exc, 'message', exc)}") from None
    return values


def _dry_run(sources: list[Source], manifest: Any) -> None:
    done = attach = send = 0
    for source in sources:
        if manifest.is_done(source.name, source.output):
            action, done = "skip (done)", done + 1
        elif manifest.job_id(source.name):
            action, attach = f"attach to job {manifest.job_id(source.name)}", attach + 1
        else:
            action, send = "submit", send + 1
        click.echo(f"{action}: {source.name} -> {source.output}")
    batch_text = f"batch {manifest.batch_id}" if manifest.batch_id else "a new batch"
    click.echo(f"would submit {send}, re-attach to {attach}, skip {done} ({batch_text})", err=True)


class BatchRun:
    """One run of the command: create or resume the batch, add what is missing, wait and download."""

    def __init__(self, api_url: str, api_key: str | None, manifest: Any, sources: list[Source], styles: list[Path],
                 params: dict[str, Any], *, mode: str = "optimize", train_sample: int = 32,
                 train_params: dict[str, Any] | None = None) -> None:
        from services.client import Client, ClientError

        self.client = Client(api_url, api_key=api_key)
        self.client_errors = ClientError
        self.manifest = manifest
        self.sources = sources
        self.styles = styles
        self.params = params
        self.mode, self.train_sample, self.train_params = mode, train_sample, train_params
        self.bar: Any = None

    def run(self) -> list[tuple[str, str]]:
        from services.manifest import FAILED, REJECTED

        todo = [s for s in self.sources if not self.manifest.is_done(s.name, s.output)]
        if todo:
            self._ensure_batch()
        self._open_bar(done=len(self.sources) - len(todo))
        if todo:
            self._reattach(todo)
            for source in todo:
                if not self.manifest.job_id(source.name) or self.manifest.status(source.name) == REJECTED:
                    self._submit(source)
            self._wait(todo)
        self.close_bar()
        return [(s.name, self.manifest.items[s.name].get("error") or "failed") for s in self.sources
                if self.manifest.status(s.name) in (FAILED, REJECTED)]

    # --- steps -----------------------------------------------------------------------------------------------------

    def _ensure_batch(self) -> None:
        if self.manifest.batch_id:
            return
        if self.mode == "optimize":
            batch = self.client.create_batch(self.styles, params=self.params)
        else:
            # A fast batch learns from the contents it is created with: send a sample of the folder along (they
            # become its first items; _reattach adopts them), and tell auto how many more will follow.
            sample = self._training_sample()
            batch = self.client.create_batch(
                self.styles, params=self.params, mode=self.mode, train_params=self.train_params,
                contents=sample, expected_items=len(self.sources) - len(sample))
            click.echo(f"mode {batch.get('mode')}: {batch.get('mode_reason')}", err=True)
        self.manifest.set_batch(batch["id"])  # recorded before any item is added: a rerun resumes this batch
        click.echo(f"batch {batch['id']} created", err=True)

    def _training_sample(self) -> list[tuple[str, bytes]]:
        """The first ``train_sample`` images that decode (one bad file must not refuse the whole batch; it is
        refused on its own later, like in an optimize batch)."""
        from shared.errors import AtelierError
        from shared.images import decode_image

        sample = []
        for source in self.sources:
            if len(sample) == self.train_sample:
                break
            data = source.path.read_bytes()
            try:
                decode_image(data, max_pixels=400_000_000, field=source.name)
            except AtelierError:
                continue
            sample.append((source.name, data))
        return sample

    def _reattach(self, todo: list[Source]) -> None:
        """Adopt the jobs the API already has for our names (sent just before an interrupt, or recorded)."""
        from services.manifest import SUBMITTED

        known = {item["name"]: item["job_id"] for item in self.client.batch_items(self.manifest.batch_id)}
        changed = False
        for source in todo:
            job_id = known.get(source.name)
            if job_id and (self.manifest.job_id(source.name) != job_id
                           or self.manifest.status(source.name) != SUBMITTED):
                self.manifest.record(source.name, save=False, job_id=job_id, status=SUBMITTED,
                                     output=str(source.output), error=None)
                changed = True
        if changed:
            self.manifest.save()

    def _submit(self, source: Source) -> None:
        from services.client import ApiError
        from services.manifest import REJECTED, SUBMITTED

        try:
            (item,) = self.client.add_batch_items(self.manifest.batch_id, [(source.name, source.path.read_bytes())])
        except ApiError as exc:
            if exc.status in (400, 413, 415, 422):  # this image is refused; the others go on
                self.manifest.record(source.name, job_id=None, status=REJECTED, error=f"{exc.code}: {exc.message}")
                self.bar.update(1)
                return
            raise
        self.manifest.record(source.name, job_id=item["job_id"], status=SUBMITTED, output=str(source.output),
                             error=None)
        self._say(f"sent {source.name}", refresh_only=True)

    def _wait(self, todo: list[Source]) -> None:
        from services.manifest import FAILED, SUBMITTED

        pending = {s.name: s for s in todo if self.manifest.status(s.name) == SUBMITTED}
        while pending:
            batch = self.client.get_batch(self.manifest.batch_id, limit=1)
            items = self.client.batch_items(self.manifest.batch_id)
            running = []
            for item in items:
                source = pending.get(item["name"])
                if source is None:
                    continue
                status = item["status"]
                if status == "succeeded":
                    self._download(source, item["job_id"])
                    del pending[source.name]
                elif status in ("failed", "canceled"):
                    error = item.get("error") or {}
                    reason = f"{status}: {error.get('code')}: {error.get('message')}" if error else status
                    self.manifest.record(source.name, status=FAILED, error=reason)
                    self.bar.update(1)
                    del pending[source.name]
                elif status == "running" and item.get("progress"):
                    progress = item["progress"]
                    running.append(f"{progress.get('iteration', 0)}/{progress.get('iterations', '?')}")
            self._show(running, batch.get("eta_s"))
            if pending:
                time.sleep(POLL_INTERVAL_S)

    def _download(self, source: Source, job_id: str) -> None:
        from services.atomic import write_atomically
        from services.manifest import SUCCEEDED

        write_atomically(source.output, self.client.result_bytes(job_id))
        self.manifest.record(source.name, status=SUCCEEDED, error=None)
        self.bar.update(1)

    # --- progress bar ----------------------------------------------------------------------------------------------

    def _open_bar(self, done: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=len(self.sources), initial=done, desc="images", unit="img", file=sys.stderr,
                        dynamic_ncols=True)

    def _show(self, running: list[str], eta_s: float | None) -> None:
        postfix = {}
        if running:
            postfix["running"] = " ".join(running[:4]) + (" ..." if len(running) > 4 else "")
        if eta_s is not None:
            postfix["eta"] = f"{eta_s:.0f}s"
        self.bar.set_postfix(postfix, refresh=True)

    def _say(self, message: str, refresh_only: bool = False) -> None:
        if refresh_only:
            self.bar.set_postfix_str(message, refresh=True)
        else:
            self.bar.write(message, file=sys.stderr)

    def close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
