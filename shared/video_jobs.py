"""Video jobs (issue 12): the parent ``video`` record, its ``video_segment`` children and their storage keys.

A video is one ``video`` job (what the client submitted and polls) and, once a worker has decoded and planned it,
one ``video_segment`` job per run of frames. Each segment is an ordinary job record: its own lease, delivery cap,
progress, cancel flag and the reconciler's requeue, so a worker killed mid-segment costs that segment only.

- Segment ids are derived from the video's id and the segment's index (``segment_id``), so a planning run that is
  redelivered after its worker died finds the segments it already created instead of making a second set.
- The plan lives in the parent's ``inputs``: ``planned`` (True once every segment exists), ``segments`` (their ids,
  in order), ``plan`` (``[start, end, overlap]`` per segment, frame indices of the decoded clip, ``overlap`` the
  leading frames shared with the previous segment), ``frames``, ``fps``, ``start_s``.
- Keys (deterministic, so a rerun overwrites): the decoded input frames of segment i at ``frames_key``, its styled
  frames at ``styled_key`` (lossless ``.npz``), the MP4 and poster at ``mp4_key`` / ``poster_key``.

Pure Python: the API imports it.
"""

from __future__ import annotations

import hashlib
from typing import Any

from shared.jobs import DEFAULT_TENANT, JobKind, JobRecord, video_key
from shared.tasks import BULK_QUEUE

WAITING_FOR_SEGMENTS = "waiting_for_segments"  # the parent's outcome between planning and assembly


def segment_id(video_id: str, index: int) -> str:
    """The id of segment ``index`` of ``video_id``: 32 hex characters like every job id, derived, not random."""
    return hashlib.sha256(f"{video_id}:segment:{index}".encode()).hexdigest()[:32]


def frames_key(video_id: str, index: int) -> str:
    return video_key(video_id, f"frames/{index:04d}.npz")


def styled_key(video_id: str, index: int) -> str:
    return video_key(video_id, f"styled/{index:04d}.npz")


def mp4_key(video_id: str) -> str:
    return video_key(video_id, "video.mp4")


def poster_key(video_id: str) -> str:
    return video_key(video_id, "poster.png")


def finetuned_model_key(video_id: str) -> str:
    """A ``fast`` video's model fine-tuned on its own frames (``finetune_steps``), signed like every model."""
    return video_key(video_id, "model.atls")


def new_video_record(video_id: str, *, params: dict[str, Any], video_key_: str, video_name: str | None,
                     probe: dict[str, Any], style_keys: list[str], style_names: list[str | None],
                     style_model_key: str | None, tenant: str = DEFAULT_TENANT) -> JobRecord:
    """A fresh ``queued`` video job on the bulk queue."""
    return JobRecord(
        id=video_id,
        kind=JobKind.VIDEO.value,
        params=params,
        inputs={"video": video_key_, "video_name": video_name, "probe": probe, "styles": list(style_keys),
                "style_names": list(style_names), "style_model": style_model_key, "planned": False,
                "segments": [], "plan": []},
        queue=BULK_QUEUE,
        tenant=tenant or DEFAULT_TENANT,
    )


def new_segment_record(parent: JobRecord, index: int, start: int, end: int, overlap: int) -> JobRecord:
    """Segment ``index`` of ``parent``: frames ``start`` to ``end`` (exclusive) of the decoded clip, of which the
    first ``overlap`` are shared with the previous segment."""
    return JobRecord(
        id=segment_id(parent.id, index),
        kind=JobKind.VIDEO_SEGMENT.value,
        params=parent.params,
        inputs={"video_id": parent.id, "index": index, "start": start, "end": end, "overlap": overlap,
                "frames": frames_key(parent.id, index)},
        queue=BULK_QUEUE,
        tenant=parent.tenant,
    )


def segment_ids(parent: JobRecord) -> list[str]:
    return list(parent.inputs.get("segments") or [])
