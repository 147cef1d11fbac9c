"""``atelier video``: style a clip with temporal consistency, here in-process or through the service.

    atelier video clip.mp4 --style starry.jpg -o out.mp4 --size 256 --iterations 100
    atelier video clip.mp4 --style-model model.atls -o out.mp4                # fast mode, a local model file
    atelier video clip.mp4 --style starry.jpg -o out.mp4 --api http://127.0.0.1:8000   # through POST /v1/videos

- **Locally** (no ``--api``): decode (``worker/video/io.py``), style (the same ``style_segment`` the workers run:
  ``optimize`` = Ruder et al. on the Gatys engine, ``fast`` = a trained model), encode H.264 MP4 at the input's rate
  with its audio. The clip is one segment unless ``--segment-frames`` is given (segments exist to spread a clip
  over workers; here they would only add seams), in which case the same plan and crossfade as the service apply.
  ``--style-model`` takes a model FILE here (``atelier styles train --local``).
- **Through the service** (``--api URL``, no environment default so a local run never goes remote by surprise):
  uploads the clip, waits with the bar fed by ``frames_done`` / ``frames``, downloads the MP4. ``--style-model``
  takes a model ID there.

Both show a tqdm bar in frames on stderr; Ctrl-C stops a local run (nothing is written) or, with ``--api``,
stops waiting (the video keeps running; ``atelier video`` prints its id). Parameters are validated before anything
is decoded or uploaded, with the API's wording.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import click

from services.cli.jobs import api_key_option
from services.cli.options import spec_options, spec_values
from services.cli.stylize import EngineProgress, OneLineCommand, _quiet_tensorflow_import, _read_rgb, fail
from shared.errors import AtelierError
from shared.params import MODEL_ID_PATTERN
from shared.video_params import FRAME_PARAM_SPECS, VIDEO_PARAM_SPECS, VideoJobParams

VIDEO_ENV_PREFIX = "ATELIER_VIDEO_"
# The flags the command defines itself (they take files or have video-specific meaning).
OWN_FLAGS = ("style_model",)


class _Frames:
    """A video progress report as the bar's ``ProgressLike``: iterations are frames, over the whole clip."""

    def __init__(self, done: int, total: int, losses: dict[str, float]) -> None:
        self.iteration, self.iterations = done, total
        self.losses = {"total": float(losses.get("total", float("nan")))}


@click.command(cls=OneLineCommand, context_settings={"max_content_width": 120})
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--style", "styles", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A style image (repeat for several; mode optimize).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the stylized clip (.mp4).")
@click.option("--style-model", default=None, help="mode fast: a model FILE (local) or a model ID (with --api).")
@click.option("--key", "signing_key", default=None, envvar="ATELIER_MODEL_SIGNING_KEY", show_envvar=True,
              help="With --style-model FILE: the key the model file was signed with.")
@click.option("--api", "api_url", default=None, help="Run through the service at this URL instead of here.")
@api_key_option
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the run's metrics (warping error, timings) as JSON to this file.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@spec_options(VIDEO_PARAM_SPECS, VIDEO_ENV_PREFIX, exclude=OWN_FLAGS)
@spec_options(FRAME_PARAM_SPECS, "ATELIER_")
def video(source: Path, styles: tuple[Path, ...], output: Path, style_model: str | None, signing_key: str | None,
          api_url: str | None, api_key: str | None, report: Path | None, quiet: bool, **options: Any) -> None:
    """Style the clip SOURCE (MP4/MOV/WebM/GIF) and write OUTPUT (H.264 MP4, the input's rate and audio)."""
    if output.suffix.lower() != ".mp4":
        raise fail(f"--output {str(output)!r}: the result is an H.264 MP4; give a path ending in .mp4")
    model_file = _model_file(style_model, api_url)
    values = spec_values((*VIDEO_PARAM_SPECS, *FRAME_PARAM_SPECS), options)
    if style_model is not None:
        # A local file stands in by its digest (the params want an id-shaped value); the file itself is loaded below.
        values["style_model"] = hashlib.sha256(model_file.read_bytes()).hexdigest()[:32] if model_file else \
            style_model
    try:
        params = VideoJobParams.from_mapping(values).with_styles(len(styles))
    except AtelierError as error:
        raise fail(error.message) from None
    output.parent.mkdir(parents=True, exist_ok=True)
    if api_url is not None:
        given = {name: value for name, value in params.to_dict().items() if name in values}
        _through_service(api_url, api_key, source, styles, given, output, report, quiet)
    else:
        _here(source, styles, params, model_file, signing_key, output, report, quiet,
              segments_given=options.get("segment_frames") is not None)


def _model_file(style_model: str | None, api_url: str | None) -> Path | None:
    if style_model is None:
        return None
    path = Path(style_model)
    if path.is_file():
        if api_url is not None:
            raise fail(f"--style-model {style_model!r} is a file; with --api give the id of a model the service "
                       "trained (atelier styles train)")
        return path
    if re.fullmatch(MODEL_ID_PATTERN, style_model):
        if api_url is None:
            raise fail(f"--style-model {style_model!r} is a model id: add --api URL to use the service's model, or "
                       "give a model file")
        return None
    raise fail(f"--style-model {style_model!r}: no such file, and not a model id (32 hexadecimal characters)")


# --- here --------------------------------------------------------------------------------------------------------


def _here(source: Path, styles: tuple[Path, ...], params: VideoJobParams, model_file: Path | None,
          signing_key: str | None, output: Path, report: Path | None, quiet: bool, *, segments_given: bool) -> None:
    from worker.video.io import decode_video, encode_mp4
    from worker.video.segments import assemble, plan_segments

    try:
        style_rgbs = [_read_rgb(path, role="style") for path in styles]
        clip = decode_video(str(source), max_side=params.video.size, fps_cap=params.video.fps_cap)
        segment_frames = params.video.segment_frames if segments_given else max(len(clip), 2)
        overlap = params.video.overlap_frames if segments_given else 0
        plan = plan_segments(len(clip), segment_frames, overlap)
        model = _load_model(model_file, signing_key) if model_file is not None else None
        engine = _engines()
        started_s = time.perf_counter()
        total = sum(segment.frames for segment in plan)
        outputs = []
        with EngineProgress("frame", "video", not quiet, initial_from_first=False) as bar:
            for segment in plan:
                offset = sum(len(done) for done in outputs)

                def on_progress(progress: Any, offset: int = offset) -> bool:
                    return bar(_Frames(offset + progress.frames_done, total, progress.losses))

                result = engine["style"](params, clip.frames[segment.start:segment.end], styles=style_rgbs,
                                         model=model, on_progress=on_progress, stylize_frames=engine["optimize"],
                                         stylize_frames_fast=engine["fast"])
                if result.cancelled:
                    click.echo("interrupted: nothing written", err=True)
                    sys.exit(130)
                outputs.append(result.frames)
        frames = assemble(plan, outputs)
        styled_s = time.perf_counter() - started_s
        encode_mp4(frames, clip.fps, audio_from=str(source), start_s=clip.start_s, out=str(output))
        metrics = {"mode": params.video.mode, "frames": len(frames), "fps": clip.fps, "segments": len(plan),
                   "seconds": round(styled_s, 3), "seconds_per_frame": round(styled_s / len(frames), 4),
                   "size_px": [int(frames.shape[1]), int(frames.shape[2])], **_flicker(frames, clip.frames, plan)}
    except AtelierError as error:
        raise fail(error.message) from None
    except OSError as error:
        raise fail(f"{error.filename or ''}: {error.strerror or error}".lstrip(": ")) from None
    if report is not None:
        report.write_text(json.dumps({"metrics": metrics, "params": params.to_dict()}, indent=2) + "\n")
    if not quiet:
        click.echo(f"wrote {output} ({len(frames)} frames, {styled_s:.1f} s, {metrics['seconds_per_frame']:.2f} "
                   f"s/frame, warping error {metrics['warping_error']:.5f})", err=True)


def _engines() -> dict[str, Any]:
    with _quiet_tensorflow_import():
        from worker.video.service import _engine_stylize_frames, _engine_stylize_frames_fast, style_segment
    from functools import partial

    from shared.settings import Settings
    from worker.weights_config import weight_source

    # The engine reads no environment; the weights folders come from the settings (ATELIER_WEIGHTS_DIR, ...).
    weights = weight_source(Settings.from_env())
    return {"style": style_segment, "optimize": partial(_engine_stylize_frames, weights=weights),
            "fast": _engine_stylize_frames_fast}


def _load_model(path: Path, signing_key: str | None) -> Any:
    with _quiet_tensorflow_import():
        from worker.engine import feedforward
    return feedforward.model_from_bytes(path.read_bytes(), key=signing_key.encode() if signing_key else None)


def _flicker(frames: Any, originals: Any, plan: Any) -> dict[str, Any]:
    from worker.engine.flow import FlowEstimator, pair_warping_error, video_masks
    from worker.video.service import warping_errors

    return warping_errors(frames, originals, plan, FlowEstimator(), video_masks, pair_warping_error)


# --- through the service -------------------------------------------------------------------------------------------


def _through_service(api_url: str, api_key: str | None, source: Path, styles: tuple[Path, ...],
                     params: dict[str, Any], output: Path, report: Path | None, quiet: bool) -> None:
    from tqdm import tqdm

    from services.client import ApiError, Client, TransportError

    client = Client(api_url, api_key=api_key)
    try:
        created = client.submit_video(source, list(styles), params)
    except (ApiError, TransportError) as error:
        raise fail(str(error)) from None
    video_id = created["id"]
    bar = tqdm(total=None, desc=video_id[:8], unit="frame", file=sys.stderr, disable=quiet, dynamic_ncols=True)

    def update(video: dict[str, Any]) -> None:
        if video.get("frames") and bar.total != video["frames"]:
            bar.total = video["frames"]
        bar.n = int(video.get("frames_done") or 0)
        bar.set_postfix(status=video["status"], refresh=False)
        bar.refresh()

    try:
        final = client.wait_video(video_id, on_update=update)
    except KeyboardInterrupt:
        bar.close()
        click.echo(f"stopped waiting; video {video_id} keeps running (atelier video cancels nothing)", err=True)
        sys.exit(130)
    except (ApiError, TransportError) as error:
        raise fail(str(error)) from None
    finally:
        bar.close()
    if final["status"] != "succeeded":
        error = final.get("error") or {}
        raise fail(f"video {video_id} {final['status']}: {error.get('code')}: {error.get('message')}")
    client.download_video(video_id, output)
    if report is not None:
        report.write_text(json.dumps({"metrics": final.get("metrics"), "params": final.get("params"),
                                      "id": video_id}, indent=2) + "\n")
    if not quiet:
        metrics = final.get("metrics") or {}
        click.echo(f"wrote {output} (video {video_id}, {metrics.get('frames')} frames in {metrics.get('segments')} "
                   f"segment(s), warping error {metrics.get('warping_error')})", err=True)
