"""Videos on the workers: the ``video`` and ``video_segment`` kinds' handlers for ``JobRunner(handlers=...)``.

The design is the job-kind machinery of the foundation issue, not a scheduler of our own (``shared/video_jobs.py``
has the records and keys, ``worker/video/segments.py`` the plan and the crossfade):

1. **Plan** (the ``video`` task, first delivery): decode the upload once (``size``, ``fps`` cap), cut it into
   segments, store each segment's input frames (lossless ``.npz``), create one ``video_segment`` record per segment
   (ids derived from the video's, so a redelivered plan finds them), record the plan in the parent and enqueue the
   segments on the bulk queue. Any idle worker takes one; two workers share a clip. The parent stays ``running``
   without a lease: the reconciler leaves it alone while it waits (``services.videos.waits_for_segments``).
2. **Segments** (``video_segment`` tasks): each styles its frames (``optimize``: Ruder's method,
   ``worker/engine/video.py``; ``fast``: the trained model, ``worker/engine/video_fast.py``), reports frames to its
   own record and to the parent's progress, stores its styled frames and ends. Cancel is the progress reporter's: a
   segment stops at its next report once its flag is set. The segment that ends last, or one that failed, wakes
   the parent (enqueues its task again); two segments ending together may both wake it, and the parent's lease (or
   its terminal status) makes the second wake-up a no-op that does not count as a delivery.
3. **Advance** (the ``video`` task, later deliveries): a failed segment fails the video with its code and cancels
   the others; a canceled video ends ``canceled`` once no segment runs; when every segment has succeeded the
   **assembly** runs: crossfade the shared frames, encode H.264 MP4 at the decoded rate with the upload's audio
   (``worker/video/io.py``), a poster PNG, and Lai et al.'s warping error on the input frames' flow, overall and at
   the seams (so a seam that flickers more than the rest shows in the metrics).

The parent's delivery count restarts at 0 once its plan is recorded: planning and assembly are separate steps, and
each gets the full ``ATELIER_MAX_DELIVERIES`` against a worker that dies in it.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from services import videos
from shared.errors import AtelierError, EngineError, NotFound
from shared.images import load_rgb
from shared.jobs import JobKind, JobRecord, JobStatus, metrics_key
from shared.video_jobs import (
    WAITING_FOR_SEGMENTS,
    finetuned_model_key,
    frames_key,
    mp4_key,
    new_segment_record,
    poster_key,
    segment_ids,
    styled_key,
)
from shared.video_params import VideoJobParams
from worker.runner import LEASE_LOST, describe_failure
from worker.video.segments import Segment, assemble, input_frames, plan_segments, seam_pairs, segments_from_lists

log = logging.getLogger(__name__)


def _engine_stylize_frames(*args: Any, **kwargs: Any) -> Any:
    # Imported on first use: TensorFlow must load in the process that runs the job, never before a fork.
    from worker.engine.video import stylize_frames

    return stylize_frames(*args, **kwargs)


def _engine_stylize_frames_fast(*args: Any, **kwargs: Any) -> Any:
    from worker.engine.video_fast import stylize_frames_fast

    return stylize_frames_fast(*args, **kwargs)


def _engine_finetune(*args: Any, **kwargs: Any) -> Any:
    from worker.engine.video_fast import finetune_on_clip

    return finetune_on_clip(*args, **kwargs)


def _engine_model_bytes(model: Any, key: bytes) -> bytes:
    from worker.engine.feedforward import model_to_bytes

    return model_to_bytes(model, key=key)


def npz_bytes(frames: np.ndarray) -> bytes:
    """Frames as a compressed ``.npz`` (lossless; what segments hand each other through storage)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, frames=np.ascontiguousarray(frames, dtype=np.uint8))
    return buffer.getvalue()


def npz_frames(data: bytes) -> np.ndarray:
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        return np.asarray(archive["frames"], dtype=np.uint8)


class _SegmentProgress:
    """A frame-level report as the progress reporter's ``ProgressLike``: a segment's "iterations" are its frames,
    so its record shows frames done and an ETA in frames."""

    def __init__(self, progress: Any) -> None:
        self.iteration = int(progress.frames_done)
        self.iterations = int(progress.frames)
        self.losses = dict(progress.losses)
        self.elapsed_s = float(progress.elapsed_s)
        self._progress = progress

    def preview(self) -> Any:
        return self._progress.preview()


def style_segment(params: VideoJobParams, frames: np.ndarray, *, styles: list[np.ndarray], model: Any,
                  on_progress: Callable[[Any], bool] | None, stylize_frames: Callable[..., Any],
                  stylize_frames_fast: Callable[..., Any]) -> Any:
    """Style one run of frames in the params' mode; the engine's ``VideoResult``. Shared by the worker's segments
    and the CLI's local run, so both style a segment the same way."""
    video = params.video
    long_side_px = int(max(frames.shape[1], frames.shape[2]))
    if video.mode == "fast":
        preserve = None if params.frame.preserve_color == "none" else params.frame.preserve_color
        return stylize_frames_fast(model, frames, size=long_side_px, preserve_color=preserve,
                                   temporal_blend=video.temporal_blend, on_progress=on_progress)
    frame_params = params.frame.replace(size=long_side_px).with_styles(len(styles))
    return stylize_frames(frames, styles, frame_params, temporal_weight=video.temporal_weight,
                          later_iterations=video.later_iterations, on_progress=on_progress)


class VideoSegmentHandler:
    """The ``video_segment`` handler. ``stylize_frames`` / ``stylize_frames_fast`` are the engine's (injectable);
    ``queue`` (``services.queue.JobQueue``) wakes the parent when this segment ends."""

    def __init__(self, runner: Any, *, queue: Any, stylize_frames: Callable[..., Any] = _engine_stylize_frames,
                 stylize_frames_fast: Callable[..., Any] = _engine_stylize_frames_fast) -> None:
        self.runner, self.queue = runner, queue
        self.stylize_frames, self.stylize_frames_fast = stylize_frames, stylize_frames_fast

    def __call__(self, record: JobRecord, lease: Any, task_started_s: float) -> str:
        try:
            outcome = self._run(record, lease, task_started_s)
        except Exception as exc:  # the runner would fail it too, but the parent must hear of it
            code, message = describe_failure(exc)
            log.exception("video segment %s failed: %s", record.id, code)
            outcome = self.runner.fail(record.id, code, message)
        if outcome != LEASE_LOST and parent_can_advance(self.runner.registry, record.inputs["video_id"]):
            wake_parent(self.queue, record.inputs["video_id"])
        return outcome

    def _run(self, record: JobRecord, lease: Any, task_started_s: float) -> str:
        runner, registry, storage = self.runner, self.runner.registry, self.runner.storage
        video_id, index = record.inputs["video_id"], int(record.inputs["index"])
        parent = registry.require(video_id)
        params = VideoJobParams.from_mapping(parent.params)
        frames = npz_frames(storage.get(record.inputs["frames"]))
        styles = [load_rgb(storage.get(key), field="style") for key in parent.inputs.get("styles") or []]
        model = None
        if params.video.mode == "fast":
            if runner.style_models is None:
                raise EngineError("style_models_unavailable", "this worker was started without style-model support")
            model = runner.style_models.load(parent.inputs["style_model"])
        reporter = runner.progress_reporter(record.id, lease)
        parent_writes = _Throttle(runner.settings.progress_min_interval_s)

        def on_progress(progress: Any) -> bool:
            stop = reporter(_SegmentProgress(progress))
            if parent_writes.due(final=progress.frames_done >= progress.frames):
                _advisory(lambda: videos.report_segment_frames(registry, video_id, index, progress.frames_done))
            return stop

        engine_started_s = time.monotonic()
        result = style_segment(params, frames, styles=styles, model=model, on_progress=on_progress,
                               stylize_frames=self.stylize_frames, stylize_frames_fast=self.stylize_frames_fast)
        engine_wall_s = time.monotonic() - engine_started_s
        if reporter.stop_reason == "lease_lost" or lease.lost.is_set():
            log.error("video segment %s: lease lost mid-run; another delivery owns it now", record.id)
            return LEASE_LOST
        if result.cancelled:
            return runner.finish_canceled(record.id, dict(result.metrics))
        styled = np.asarray(result.frames, dtype=np.uint8)
        if len(styled) != len(frames):
            raise EngineError("engine_frame_count", f"the engine returned {len(styled)} frames for a segment of "
                              f"{len(frames)}")
        runner.store(styled_key(video_id, index), npz_bytes(styled), "application/x-npz",
                     f"video {video_id} segment {index} frames")
        _advisory(lambda: videos.report_segment_frames(registry, video_id, index, len(frames)))
        metrics = {**result.metrics, "frames": len(frames), "engine_wall_s": round(engine_wall_s, 3),
                   "seconds_per_frame": round(engine_wall_s / max(len(frames), 1), 4),
                   "deliveries": int(record.deliveries or 1),
                   "worker_overhead_s": round(time.monotonic() - task_started_s - engine_wall_s, 3)}
        registry.finish(record.id, JobStatus.SUCCEEDED, result={"key": styled_key(video_id, index),
                                                                 "frames": len(frames)}, metrics=metrics)
        log.info("video %s segment %d: %d frames in %.1f s", video_id, index, len(frames), engine_wall_s)
        return JobStatus.SUCCEEDED.value


class VideoHandler:
    """The ``video`` handler: plans a new video, then on each wake-up fails, cancels or assembles it. ``finetune``
    (the engine's ``finetune_on_clip``), ``model_bytes`` and ``key`` (the deployment's model signing key) serve
    ``fast`` videos with ``finetune_steps``: the model is fine-tuned once per clip, before the segments exist, so
    every segment applies the same network (a per-segment fine-tune would put a seam at every cut)."""

    def __init__(self, runner: Any, *, queue: Any, finetune: Callable[..., Any] = _engine_finetune,
                 model_bytes: Callable[[Any, bytes], bytes] = _engine_model_bytes,
                 key: Callable[[], bytes] | None = None) -> None:
        self.runner, self.queue = runner, queue
        self.finetune, self.model_bytes, self.key = finetune, model_bytes, key

    def __call__(self, record: JobRecord, lease: Any, task_started_s: float) -> str:
        if not record.inputs.get("planned"):
            if self._plan(record, lease) == LEASE_LOST:
                return LEASE_LOST
        return self._advance(record.id, task_started_s)

    # --- 1. plan -----------------------------------------------------------------------------------------------

    def _plan(self, record: JobRecord, lease: Any) -> str | None:
        from worker.video.io import decode_video  # PyAV and OpenCV: only where a video is decoded

        runner, registry, video_id = self.runner, self.runner.registry, record.id
        params = VideoJobParams.from_mapping(record.params)
        upload = runner.storage.get(record.inputs["video"])
        clip = decode_video(upload, max_side=params.video.size, fps_cap=params.video.fps_cap,
                            max_frames=runner.settings.video_max_frames)
        model_key = record.inputs.get("style_model")
        if params.video.mode == "fast" and params.video.finetune_steps and len(clip) >= 2:
            model_key = self._finetuned_model(record, params, clip.frames, lease)
            if model_key is None:
                return LEASE_LOST if lease.lost.is_set() else None  # canceled: _advance ends it
        plan = plan_segments(len(clip), params.video.segment_frames, params.video.overlap_frames)
        for segment in plan:
            runner.store(frames_key(video_id, segment.index), npz_bytes(clip.frames[segment.start:segment.end]),
                         "application/x-npz", f"video {video_id} segment {segment.index} input")
        children = [new_segment_record(record, s.index, s.start, s.end, s.overlap) for s in plan]
        for child in children:
            if registry.get(child.id) is None:  # a redelivered plan finds the ones it made
                registry.create(child)
        height, width = int(clip.frames.shape[1]), int(clip.frames.shape[2])
        total = sum(s.frames for s in plan)

        def change(parent: JobRecord) -> JobRecord | None:
            if parent.terminal:
                return None
            parent.inputs = {**parent.inputs, "planned": True, "segments": [c.id for c in children],
                             "style_model": model_key,
                             "plan": [s.as_list() for s in plan], "frames": len(clip), "fps": float(clip.fps),
                             "start_s": float(clip.start_s), "width": width, "height": height}
            parent.progress = {"frames_done": 0, "frames": total, "percent": 0.0,
                               "segment_frames_done": [0] * len(plan)}
            parent.deliveries = 0  # the assembly gets its own delivery cap (module docstring)
            return parent

        registry.transition(video_id, change)
        for child in children:
            current = registry.get(child.id)
            if current is not None and current.status == JobStatus.QUEUED and not current.cancel_requested:
                self.queue.enqueue(child.id, queue=child.queue, kind=JobKind.VIDEO_SEGMENT.value)
        log.info("video %s: %d frames %dx%d in %d segment(s)", video_id, len(clip), width, height, len(plan))
        return None

    def _finetuned_model(self, record: JobRecord, params: VideoJobParams, frames: np.ndarray, lease: Any
                         ) -> str | None:
        """Fine-tune the video's style model on its own frames (Huang et al. 2017's two-frame temporal loss) and
        store it, signed, at ``results/<id>/model.atls``; the storage key, or None when canceled or the lease was
        lost. The training's style images are the model's own (its training record keeps them)."""
        runner = self.runner
        if runner.style_models is None or self.key is None:
            raise EngineError("style_models_unavailable", "this worker was started without style-model support")
        model = runner.style_models.load(record.inputs["style_model"])
        trained = runner.registry.require(params.video.style_model)
        styles = [load_rgb(runner.storage.get(key), field="style") for key in trained.inputs.get("styles") or []]
        reporter = runner.progress_reporter(record.id, lease)
        tuned, metrics = self.finetune(model, frames, styles, steps=params.video.finetune_steps,
                                       on_progress=reporter)
        if metrics.get("cancelled") or reporter.stop_reason is not None:
            return None
        key = finetuned_model_key(record.id)
        runner.store(key, self.model_bytes(tuned, self.key()), "application/vnd.atelier.fast-style",
                     f"video {record.id} fine-tuned model")
        return key

    # --- 2. advance ----------------------------------------------------------------------------------------------

    def _advance(self, video_id: str, task_started_s: float) -> str:
        runner, registry = self.runner, self.runner.registry
        parent = registry.require(video_id)
        if parent.terminal:
            return parent.status
        if not parent.inputs.get("planned"):  # stopped before its segments existed (canceled while fine-tuning)
            return runner.finish_canceled(video_id, None) if parent.cancel_requested else WAITING_FOR_SEGMENTS
        segments = videos.segments_of(registry, parent)
        failed = next((s for s in segments if s is None or s.status == JobStatus.FAILED), None)
        if failed is not None or None in segments:
            videos.cancel_video(registry, video_id)  # stop the others: the video cannot succeed any more
            return self._fail_for(parent, segments)
        if parent.cancel_requested or any(s.status == JobStatus.CANCELED for s in segments):
            videos.cancel_video(registry, video_id)
            if videos.all_segments_ended(registry, parent):
                return runner.finish_canceled(video_id, None)
            return WAITING_FOR_SEGMENTS
        if not all(s.status == JobStatus.SUCCEEDED for s in segments):
            return WAITING_FOR_SEGMENTS
        return self._assemble(parent, segments, task_started_s)

    def _fail_for(self, parent: JobRecord, segments: list[JobRecord | None]) -> str:
        for index, segment in enumerate(segments):
            if segment is None:
                return self.runner.fail(parent.id, "segment_missing", f"segment {index} of video {parent.id} has no "
                                        "record (deleted?); the video cannot be assembled")
            if segment.status == JobStatus.FAILED:
                error = segment.error or {}
                code = str(error.get("code") or "segment_failed")
                return self.runner.fail(parent.id, code, f"segment {index} (frames {segment.inputs['start']} to "
                                        f"{segment.inputs['end'] - 1}) failed: {error.get('message', code)}")
        raise AssertionError("no failed segment")

    # --- 3. assemble ---------------------------------------------------------------------------------------------

    def _assemble(self, parent: JobRecord, segments: list[Any], task_started_s: float) -> str:
        from worker.engine.flow import FlowEstimator, pair_warping_error, video_masks
        from worker.video.io import encode_mp4, poster_png

        runner, storage, video_id = self.runner, self.runner.storage, parent.id
        plan = segments_from_lists(parent.inputs["plan"])
        outputs = [npz_frames(storage.get(styled_key(video_id, s.index))) for s in plan]
        originals = input_frames(plan, [npz_frames(storage.get(frames_key(video_id, s.index))) for s in plan])
        clip = assemble(plan, outputs)
        started_s = time.monotonic()
        mp4 = encode_mp4(clip, parent.inputs["fps"], audio_from=storage.get(parent.inputs["video"]),
                         start_s=float(parent.inputs.get("start_s") or 0.0))
        encode_s = time.monotonic() - started_s
        runner.store(mp4_key(video_id), mp4, "video/mp4", f"video {video_id} MP4")
        runner.store(poster_key(video_id), poster_png(clip), "image/png", f"video {video_id} poster")
        started_s = time.monotonic()
        flicker = warping_errors(clip, originals, plan, FlowEstimator(), video_masks, pair_warping_error)
        metrics = {**flicker, **_segment_totals(segments), "frames": len(clip), "fps": parent.inputs["fps"],
                   "segments": len(plan), "mode": parent.params.get("mode"), "mp4_bytes": len(mp4),
                   "encode_s": round(encode_s, 3), "metric_s": round(time.monotonic() - started_s, 3),
                   "assembly_s": round(time.monotonic() - task_started_s, 3)}
        runner.store(metrics_key(video_id), json.dumps(metrics, indent=2).encode(), "application/json",
                     f"video {video_id} metrics")
        height, width = int(clip.shape[1]), int(clip.shape[2])
        runner.registry.finish(video_id, JobStatus.SUCCEEDED, metrics=metrics, result={
            "key": mp4_key(video_id), "poster": poster_key(video_id), "width": width, "height": height,
            "frames": len(clip), "fps": parent.inputs["fps"], "bytes": len(mp4),
            "has_audio": bool((parent.inputs.get("probe") or {}).get("has_audio"))})
        self._drop_intermediates(video_id, plan)
        log.info("video %s assembled: %d frames %dx%d, warping error %.5f", video_id, len(clip), width, height,
                 metrics["warping_error"])
        return JobStatus.SUCCEEDED.value

    def _drop_intermediates(self, video_id: str, plan: list[Segment]) -> None:
        """The segments' frames are not needed once the MP4 exists (a duplicate assembly finds the video terminal)."""
        for segment in plan:
            for key in (frames_key(video_id, segment.index), styled_key(video_id, segment.index)):
                try:
                    self.runner.storage.delete(key)
                except (NotFound, AtelierError):
                    log.warning("video %s: intermediate %s not deleted", video_id, key, exc_info=True)


def warping_errors(clip: np.ndarray, originals: np.ndarray, plan: list[Segment], estimator: Any,
                   masks: Callable[..., Any], pair_error: Callable[..., float]) -> dict[str, Any]:
    """Lai et al.'s warping error of ``clip`` with DIS flow and Ruder's mask on the input frames: the mean over
    all consecutive pairs, and separately over the pairs across a crossfade and the others."""
    if len(clip) < 2:
        return {"warping_error": 0.0, "warping_error_seams": None, "warping_error_inside": 0.0}
    forward, backward = estimator.video(originals)
    to_next, _ = masks(forward, backward)
    errors = [pair_error(clip[k], clip[k + 1], forward[k], to_next[k]) for k in range(len(clip) - 1)]
    seams = set(seam_pairs(plan))
    at_seams = [e for k, e in enumerate(errors) if k in seams]
    inside = [e for k, e in enumerate(errors) if k not in seams]
    return {"warping_error": round(float(np.mean(errors)), 6),
            "warping_error_seams": round(float(np.mean(at_seams)), 6) if at_seams else None,
            "warping_error_inside": round(float(np.mean(inside)), 6) if inside else None}


def parent_can_advance(registry: Any, video_id: str) -> bool:
    """Whether the video has something to do: a segment failed, or none runs any more. Only then is it woken, so
    its delivery count (a crash detector, capped by ATELIER_MAX_DELIVERIES) counts real steps, not one wake-up per
    segment. Each segment checks after its own end is written, so the last one to end always sees all ended."""
    parent = registry.get(video_id)
    if parent is None or parent.terminal:
        return False
    segments = videos.segments_of(registry, parent)
    return any(s is None or s.status == JobStatus.FAILED for s in segments) or all(s.terminal for s in segments)


def wake_parent(queue: Any, video_id: str) -> None:
    """Enqueue the video's task: it fails, cancels or assembles the video, or finds nothing to do yet. A lost
    wake-up is the reconciler's: a parent none of whose segments runs any more is no longer 'waiting'."""
    try:
        queue.enqueue(video_id, queue="bulk", kind=JobKind.VIDEO.value)
    except AtelierError:
        log.warning("video %s: could not enqueue the assembly; the reconciler will", video_id, exc_info=True)


def _segment_totals(segments: list[Any]) -> dict[str, Any]:
    workers = sorted({f"{(s.worker or {}).get('hostname')}:{(s.worker or {}).get('pid')}" for s in segments
                      if s.worker})
    metrics = [s.metrics or {} for s in segments]
    return {"segment_engine_s": round(sum(float(m.get("engine_wall_s") or 0) for m in metrics), 3),
            "segment_deliveries": [int(s.deliveries or 0) for s in segments], "segment_workers": workers}


class _Throttle:
    def __init__(self, min_interval_s: float) -> None:
        self.min_interval_s, self._last_s = min_interval_s, None

    def due(self, *, final: bool) -> bool:
        now_s = time.monotonic()
        if final or self._last_s is None or now_s - self._last_s >= self.min_interval_s:
            self._last_s = now_s
            return True
        return False


def _advisory(write: Callable[[], Any]) -> None:
    """Parent progress is advisory, like every progress write: an outage must not fail the segment."""
    try:
        write()
    except AtelierError as exc:
        log.warning("video progress not written: %s", exc)


__all__ = ["VideoHandler", "VideoSegmentHandler", "npz_bytes", "npz_frames", "segment_ids", "style_segment",
           "wake_parent", "warping_errors"]
