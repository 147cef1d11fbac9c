"""The video kinds on the worker layer: plan -> segments -> assembly through the real registry (Redis) and storage,
with a stand-in engine (the real engines and the real stack run in tests/reliability); plus the segment plan and
the crossfade rule as pure functions."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import redis

from services.queue import JobQueue
from services.registry import JobRegistry
from services.storage import LocalStorage
from services.videos import cancel_video, waits_for_segments
from shared.jobs import JobStatus, input_key, new_job_id
from shared.settings import Settings
from shared.video_jobs import mp4_key, new_video_record, poster_key, segment_id, styled_key
from shared.video_params import VideoJobParams
from worker.engine.video_types import VideoProgress, VideoResult
from worker.reconciler import Reconciler
from worker.runner import JobRunner, WorkerIdentity
from worker.video.io import decode_video
from worker.video.segments import assemble, crossfade_weights, plan_segments, seam_pairs
from worker.video.service import VideoHandler, VideoSegmentHandler

# --- the plan and the crossfade (pure) ------------------------------------------------------------------------------


def test_the_plan_covers_every_frame_once_with_overlaps_before_each_later_segment():
    plan = plan_segments(16, 6, 2)
    assert [(s.start, s.end, s.overlap) for s in plan] == [(0, 6, 0), (4, 12, 2), (10, 16, 2)]
    cores = [i for s in plan for i in range(s.core_start, s.end)]
    assert cores == list(range(16))
    assert plan_segments(16, 24, 4) == plan_segments(16, 16, 4)[:1]  # a clip that fits is one segment


def test_a_short_last_run_joins_the_segment_before_it():
    assert [(s.start, s.end) for s in plan_segments(50, 24, 4)] == [(0, 24), (20, 50)]  # 2 left over: joined
    assert [(s.start, s.end) for s in plan_segments(62, 24, 4)] == [(0, 24), (20, 48), (44, 62)]  # 14 >= 12: kept


def test_crossfade_ramps_linearly_from_the_previous_segment_to_the_next():
    assert crossfade_weights(4).tolist() == pytest.approx([0.2, 0.4, 0.6, 0.8])
    plan = plan_segments(8, 4, 3)  # segment 1 styles frames 1..7, sharing 1..3 with segment 0
    first, second = np.zeros((4, 2, 2, 3), np.uint8), np.full((7, 2, 2, 3), 100, np.uint8)
    clip = assemble(plan, [first, second])
    assert clip[:, 0, 0, 0].tolist() == [0, 25, 50, 75, 100, 100, 100, 100]
    assert seam_pairs(plan) == [0, 1, 2, 3]  # the pairs across the ramp
    steps = np.abs(np.diff(clip[:, 0, 0, 0].astype(int)))
    assert steps.max() == 25  # the jump of 100 spread over O + 1 = 4 steps


def test_assemble_refuses_outputs_that_do_not_match_the_plan():
    plan = plan_segments(8, 4, 2)
    with pytest.raises(ValueError, match="plan says"):
        assemble(plan, [np.zeros((4, 2, 2, 3), np.uint8), np.zeros((3, 2, 2, 3), np.uint8)])


def test_video_params_split_video_keys_from_the_frames_gatys_keys():
    params = VideoJobParams.from_mapping({"size": 96, "iterations": 5, "style_weight": 3, "segment_frames": 8})
    assert params.frame.size == 96 and params.frame.iterations == 5 and params.frame.style_weight == 3
    assert VideoJobParams.from_mapping(params.to_dict()) == params
    assert VideoJobParams.from_mapping({"style_model": "a" * 32}).video.mode == "fast"
    for bad, code in (({"overlap_frames": 8, "segment_frames": 8}, "param_out_of_range"),
                      ({"mode": "fast"}, "style_model_required"), ({"sizes": 3}, "unknown_param"),
                      ({"size": 2048}, "param_out_of_range")):
        with pytest.raises(Exception) as info:
            VideoJobParams.from_mapping(bad)
        assert info.value.code == code, bad


# --- the handlers on a real registry and storage ---------------------------------------------------------------------


class RecordingQueue:
    """The queue as the handlers see it, keeping the messages so the test can play the workers."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str]] = []
        self.sent: list[tuple[str, str]] = []

    def enqueue(self, job_id: str, queue: str = "bulk", kind: str = "stylize") -> None:
        self.messages.append((job_id, kind))
        self.sent.append((job_id, kind))


def fake_stylize_frames(during: Callable[[int], None] | None = None) -> Callable[..., Any]:
    """Stands in for worker/engine/video.py: inverts each frame, reporting after each like the engine."""

    def stylize(frames, styles, params, *, temporal_weight, later_iterations=None, on_progress=None, **_: Any):
        assert styles and params.size == max(frames.shape[1:3])
        out, started = [], time.monotonic()
        for index, frame in enumerate(frames):
            if during is not None:
                during(index)
            out.append(255 - frame)
            report = VideoProgress(index, index + 1, len(frames), 1, 1, {"total": 1.0}, time.monotonic() - started,
                                   lambda f=frame: f)
            if on_progress is not None and on_progress(report):
                return VideoResult(np.stack(out), {"temporal_weight": temporal_weight}, cancelled=True)
        return VideoResult(np.stack(out), {"temporal_weight": temporal_weight}, cancelled=False)

    return stylize


@pytest.fixture
def registry(isolated_redis_url: str):
    client = redis.Redis.from_url(isolated_redis_url)
    yield JobRegistry(client)
    client.close()


@pytest.fixture
def storage(tmp_path) -> LocalStorage:
    return LocalStorage(tmp_path / "storage")


@pytest.fixture
def settings(tmp_path, isolated_redis_url: str) -> Settings:
    return Settings(redis_url=isolated_redis_url, storage="file://" + str(tmp_path / "storage"),
                    progress_min_interval_s=0.0, preview_every=0, max_deliveries=3, reconcile_grace_s=0)


def make_runner(registry, storage, settings, queue, stylize) -> JobRunner:
    runner = JobRunner(registry, storage, settings, WorkerIdentity("h", 1))
    runner.handlers["video"] = VideoHandler(runner, queue=queue)
    runner.handlers["video_segment"] = VideoSegmentHandler(runner, queue=queue, stylize_frames=stylize)
    return runner


def submit_video(registry, storage, clip: bytes, **params: Any) -> str:
    keys = []
    for data, ext in ((clip, "mp4"), (_png(), "PNG")):
        key = input_key(hashlib.sha256(data).hexdigest(), ext)
        storage.put(key, data, content_type="application/octet-stream")
        keys.append(key)
    values = VideoJobParams.from_mapping({"size": 64, "iterations": 2, "segment_frames": 6, "overlap_frames": 2}
                                         | params).with_styles(1).to_dict()
    video_id = new_job_id()
    registry.create(new_video_record(video_id, params=values, video_key_=keys[0], video_name="clip.mp4",
                                     probe={"has_audio": True}, style_keys=[keys[1]], style_names=["s.png"],
                                     style_model_key=None))
    return video_id


def _png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 10, 240)).save(buffer, "PNG")
    return buffer.getvalue()


def drain(runner: JobRunner, queue: RecordingQueue, first: str) -> list[str]:
    """Play the workers: run the first message, then every message the handlers enqueued, in order."""
    outcomes = [runner.run(first)]
    while queue.messages:
        job_id, _kind = queue.messages.pop(0)
        outcomes.append(runner.run(job_id))
    return outcomes


def test_a_video_is_planned_styled_in_segments_and_assembled_with_its_audio(registry, storage, settings,
                                                                          mp4_with_audio):
    queue = RecordingQueue()
    runner = make_runner(registry, storage, settings, queue, fake_stylize_frames())
    video_id = submit_video(registry, storage, mp4_with_audio)
    outcomes = drain(runner, queue, video_id)
    assert outcomes[0] == "waiting_for_segments"
    record = registry.get(video_id)
    assert record.status == JobStatus.SUCCEEDED, record.error
    plan = record.inputs["plan"]
    assert plan == [[0, 6, 0], [4, 12, 2], [10, 16, 2]]  # the 16-frame test clip in 3 segments
    assert record.inputs["segments"] == [segment_id(video_id, i) for i in range(3)]
    assert all(registry.get(s).status == JobStatus.SUCCEEDED for s in record.inputs["segments"])
    assert record.progress["frames_done"] == record.progress["frames"] == 20  # 16 + 2 shared at each of 2 seams
    assert record.deliveries == 1  # the assembly's own count (the plan's was reset)
    # Only the last segment to end woke the video: wake-ups count as deliveries, which ATELIER_MAX_DELIVERIES caps.
    assert [kind for _, kind in queue.sent].count("video") == 1
    out = decode_video(storage.get(mp4_key(video_id)))
    assert len(out) == 16 and out.info.has_audio and out.info.video_codec == "h264"
    assert abs(out.fps - 24) < 0.01
    original = decode_video(storage.get(record.inputs["video"]), max_side=64).frames
    # The stand-in inverts every frame; both segments agree on shared frames, so the crossfade keeps them.
    height = original.shape[1]  # the MP4 pads an odd size by one row
    assert np.abs(out.frames[:, :height].astype(int) - (255 - original.astype(int))).mean() < 12  # crf 18
    assert storage.get(poster_key(video_id)).startswith(b"\x89PNG")
    assert record.metrics["warping_error"] >= 0 and record.metrics["warping_error_seams"] is not None
    assert record.metrics["segments"] == 3
    assert not storage.exists(styled_key(video_id, 0))  # intermediates dropped once the MP4 exists


def test_a_failed_segment_fails_the_video_with_its_code(registry, storage, settings, mp4_with_audio):
    queue = RecordingQueue()

    def explode(index: int) -> None:
        if index == 3:
            from shared.errors import EngineError

            raise EngineError("out_of_memory", "frame too large for this worker")

    runner = make_runner(registry, storage, settings, queue, fake_stylize_frames(explode))
    video_id = submit_video(registry, storage, mp4_with_audio, segment_frames=8, overlap_frames=2)
    drain(runner, queue, video_id)
    record = registry.get(video_id)
    assert record.status == JobStatus.FAILED
    assert record.error["code"] == "out_of_memory" and "segment 0" in record.error["message"]


def test_cancel_ends_queued_segments_at_once_and_the_video_canceled(registry, storage, settings, mp4_with_audio):
    queue = RecordingQueue()
    runner = make_runner(registry, storage, settings, queue, fake_stylize_frames())
    video_id = submit_video(registry, storage, mp4_with_audio)
    assert runner.run(video_id) == "waiting_for_segments"
    record = registry.get(video_id)
    assert waits_for_segments(registry, record)
    cancel_video(registry, video_id)
    assert all(registry.get(s).status == JobStatus.CANCELED for s in record.inputs["segments"])
    assert not waits_for_segments(registry, registry.get(video_id))  # nothing runs: the reconciler may wake it
    queue.messages.clear()  # the segments' messages find them canceled; the parent's wake-up is the reconciler's
    reconciler = Reconciler(registry, queue, settings)
    reconciler.run_once(now_s=time.time() + 60)
    drain(runner, queue, video_id)
    assert registry.get(video_id).status == JobStatus.CANCELED


def test_cancel_stops_a_running_segment_through_its_progress_reporter(registry, storage, settings, mp4_with_audio):
    queue = RecordingQueue()
    state: dict[str, str] = {}

    def cancel_midway(index: int) -> None:
        if index == 2 and "done" not in state:
            state["done"] = "yes"
            cancel_video(registry, state["video"])

    runner = make_runner(registry, storage, settings, queue, fake_stylize_frames(cancel_midway))
    state["video"] = video_id = submit_video(registry, storage, mp4_with_audio)
    drain(runner, queue, video_id)
    record = registry.get(video_id)
    assert record.status == JobStatus.CANCELED
    first = registry.get(record.inputs["segments"][0])
    assert first.status == JobStatus.CANCELED and first.progress["iteration"] == 3  # stopped after frame 3


def test_the_reconciler_leaves_a_waiting_video_alone_and_requeues_its_lost_segment(registry, storage, settings,
                                                                                  mp4_with_audio):
    queue = RecordingQueue()
    runner = make_runner(registry, storage, settings, queue, fake_stylize_frames())
    video_id = submit_video(registry, storage, mp4_with_audio)
    runner.run(video_id)
    queue.messages.clear()  # as if Redis lost every segment message
    report = Reconciler(registry, queue, settings).run_once(now_s=time.time() + 60)
    assert video_id not in report.requeued_lost_worker + report.failed_worker_lost
    assert sorted(report.requeued_missing) == sorted(registry.get(video_id).inputs["segments"])
    drain(runner, queue, queue.messages.pop(0)[0])
    assert registry.get(video_id).status == JobStatus.SUCCEEDED


def test_the_api_queue_adapter_knows_both_video_kinds(settings):
    from shared.celery_config import celery_config

    routes = celery_config(settings)["task_routes"]
    assert routes["atelier.video"]["queue"] == routes["atelier.video_segment"]["queue"] == "bulk"
    adapter = JobQueue(settings)
    with pytest.raises(ValueError, match="unknown job kind"):
        adapter.enqueue("x", queue="bulk", kind="videos")


def test_a_fast_video_fine_tunes_its_model_once_and_every_segment_applies_that_one(registry, storage, settings,
                                                                                   mp4_with_audio):
    from shared.jobs import JobRecord
    from shared.video_jobs import finetuned_model_key

    style_key = input_key("ab" * 32, "PNG")
    storage.put(style_key, _png(), content_type="image/png")
    model_id = new_job_id()
    registry.create(JobRecord(id=model_id, kind="train_style", status="succeeded", inputs={"styles": [style_key]},
                              result={"key": f"models/{model_id}/model.atls"}))

    class Models:  # the worker's StyleModelCache, by storage key
        def load(self, key: str) -> Any:
            return storage.get(key).decode() if key.startswith("results/") else "trained"

    tuned_calls, applied = [], []

    def finetune(model, frames, styles, *, steps, on_progress):
        tuned_calls.append((model, len(frames), len(styles), steps))
        return "tuned", {"cancelled": False}

    def fast(model, frames, *, size, preserve_color, temporal_blend, on_progress):
        applied.append(model)
        for i in range(len(frames)):
            on_progress(VideoProgress(i, i + 1, len(frames), 1, 1, {}, 0.0))
        return VideoResult(255 - frames, {}, cancelled=False)

    queue = RecordingQueue()
    runner = JobRunner(registry, storage, settings, WorkerIdentity("h", 1), style_models=Models())
    runner.handlers["video"] = VideoHandler(runner, queue=queue, finetune=finetune,
                                            model_bytes=lambda model, key: model.encode(), key=lambda: b"k")
    runner.handlers["video_segment"] = VideoSegmentHandler(runner, queue=queue, stylize_frames_fast=fast)
    keys = []
    for data, ext in ((mp4_with_audio, "mp4"),):
        key = input_key(hashlib.sha256(data).hexdigest(), ext)
        storage.put(key, data, content_type="video/mp4")
        keys.append(key)
    params = VideoJobParams.from_mapping({"style_model": model_id, "size": 64, "segment_frames": 6,
                                          "overlap_frames": 2, "finetune_steps": 3}).with_styles(0)
    video_id = new_job_id()
    registry.create(new_video_record(video_id, params=params.to_dict(), video_key_=keys[0], video_name=None,
                                     probe={}, style_keys=[], style_names=[],
                                     style_model_key=f"models/{model_id}/model.atls"))
    drain(runner, queue, video_id)
    record = registry.get(video_id)
    assert record.status == JobStatus.SUCCEEDED, record.error
    assert tuned_calls == [("trained", 16, 1, 3)]  # once, on the whole clip, against the model's own style
    assert applied == ["tuned"] * 3  # every segment applied the fine-tuned network
    assert record.inputs["style_model"] == finetuned_model_key(video_id)


def test_the_video_limits_are_read_from_the_environment():
    settings = Settings.from_env({"ATELIER_VIDEO_MAX_BYTES": "1000", "ATELIER_VIDEO_MAX_PIXELS": "2000",
                                  "ATELIER_VIDEO_MAX_DURATION_S": "2.5", "ATELIER_VIDEO_MAX_FRAMES": "30"})
    assert (settings.video_max_bytes, settings.video_max_pixels, settings.video_max_duration_s,
            settings.video_max_frames) == (1000, 2000, 2.5, 30)
    with pytest.raises(Exception, match="ATELIER_VIDEO_MAX_FRAMES"):
        Settings.from_env({"ATELIER_VIDEO_MAX_FRAMES": "0"})
