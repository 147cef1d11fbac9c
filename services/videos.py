"""A video's segments in the registry: reading them, the parent's progress, cancel, and when the parent waits.

Shared by the API (GET, cancel), the worker (segments report frames, the last one wakes the parent) and the
reconciler (a parent waiting for its segments has no lease on purpose and must not be requeued). Every write goes
through ``JobRegistry.transition``; nothing here keeps state of its own.
"""

from __future__ import annotations

from typing import Any

from shared.jobs import JobKind, JobRecord, JobStatus
from shared.video_jobs import segment_ids


def segments_of(registry: Any, parent: JobRecord) -> list[JobRecord | None]:
    """The parent's segment records in plan order (None for one that is missing)."""
    return [registry.get(job_id) for job_id in segment_ids(parent)]


def waits_for_segments(registry: Any, parent: JobRecord) -> bool:
    """True while a planned, running video has segments still to finish and none failed: the state in which it
    holds no lease and no message, because the last segment to end enqueues it again (canceled ones included: a
    canceled video ends once its running segments have stopped)."""
    if parent.kind != JobKind.VIDEO or parent.status != JobStatus.RUNNING or not parent.inputs.get("planned"):
        return False
    segments = segments_of(registry, parent)
    if any(s is None or s.status == JobStatus.FAILED for s in segments):
        return False  # the video fails now (a missing segment cannot end and wake it)
    return not all(s is not None and s.terminal for s in segments)


def frames_progress(parent: JobRecord, index: int, frames_done: int) -> dict[str, Any]:
    """The parent's ``progress`` with segment ``index`` at ``frames_done`` frames: ``frames_done`` / ``frames``
    count the frames styled across segments, shared (overlap) frames included, so ``frames`` is the clip's frame
    count plus the overlap of every seam."""
    progress = dict(parent.progress or {})
    per_segment = list(progress.get("segment_frames_done") or [0] * len(segment_ids(parent)))
    if index < len(per_segment):
        per_segment[index] = max(int(per_segment[index]), int(frames_done))  # a redelivery restarts from 0
    total = int(progress.get("frames") or sum(end - start for start, end, _ in parent.inputs.get("plan") or []))
    done = min(sum(per_segment), total)
    progress.update(segment_frames_done=per_segment, frames_done=done, frames=total,
                    percent=round(100.0 * done / total, 1) if total else 0.0)
    return progress


def report_segment_frames(registry: Any, video_id: str, index: int, frames_done: int) -> None:
    """Write segment ``index``'s frame count into the running parent's progress (concurrent segments retry under
    WATCH; once the parent is terminal nothing changes)."""

    def change(record: JobRecord) -> JobRecord | None:
        if record.status != JobStatus.RUNNING:
            return None
        record.progress = frames_progress(record, index, frames_done)
        return record

    registry.transition(video_id, change)


def cancel_video(registry: Any, video_id: str) -> JobRecord:
    """Cancel the video and every segment: queued ones end at once, running ones stop at their next progress
    report (their flag is set). Returns the parent after the change."""
    parent = registry.request_cancel(video_id)
    for job_id in segment_ids(parent):
        if registry.get(job_id) is not None:
            registry.request_cancel(job_id)
    return registry.get(video_id) or parent


def all_segments_ended(registry: Any, parent: JobRecord) -> bool:
    segments = segments_of(registry, parent)
    return bool(segments) and all(s is not None and s.terminal for s in segments)
