"""Cutting a clip into segments that workers style at the same time, and joining their outputs without a seam.

**The plan.** Frames ``0..N-1`` are cut into runs of ``segment_frames`` ("cores"); a last run shorter than half a
segment joins the one before it (a segment restarts the optimisation with full first-frame iterations, so a tiny
one costs more than it saves). Every segment after the first starts ``overlap_frames`` before its core: segment k
styles ``[core_start_k - O, core_end_k)``, and its first O frames were also styled by segment k-1 (the last O frames
of that one's core).

**Why overlap.** Each segment's optimisation starts cold (Ruder et al.'s first frame: full iterations from the
content), so two neighbouring segments land in different local minima and the frame at a cut would jump from one
solution to the other, exactly the flicker temporal consistency removes inside a segment. With O shared frames both
solutions exist for the same frames, and the cut becomes a crossfade.

**The crossfade rule.** For the j-th shared frame (j = 0..O-1) the output is
``(1 - a_j) * previous + a_j * next`` with ``a_j = (j + 1) / (O + 1)``: a linear ramp that starts nearly all on the
previous segment (which is warm there: those frames follow its own earlier ones) and ends nearly all on the next
one. The difference between the two solutions is spread over O + 1 frame steps instead of one, so the change per
step at a seam is ``1 / (O + 1)`` of the jump (a fifth at the default O = 4), while both ends of the ramp join
their segment with one ordinary temporally consistent step. The blend is done in float and rounded once.
(Linear ramps are the usual choice for chunked video processing, e.g. the overlapped windows of Lai et al.'s
blind temporal consistency post-processing; a cosine ramp spreads the same total change less evenly.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Segment:
    """Frames ``start`` to ``end`` (exclusive) of the clip; the first ``overlap`` are shared with the previous one."""

    index: int
    start: int
    end: int
    overlap: int

    @property
    def frames(self) -> int:
        return self.end - self.start

    @property
    def core_start(self) -> int:
        return self.start + self.overlap

    def as_list(self) -> list[int]:
        return [self.start, self.end, self.overlap]


def plan_segments(frame_count: int, segment_frames: int, overlap_frames: int) -> list[Segment]:
    """The segments of a clip of ``frame_count`` frames (module docstring). One segment when the clip fits."""
    if frame_count < 1:
        raise ValueError(f"a clip needs at least one frame, got {frame_count}")
    if segment_frames < 1 or not 0 <= overlap_frames < segment_frames:
        raise ValueError(f"need segment_frames >= 1 and 0 <= overlap_frames < segment_frames, got "
                         f"{segment_frames} and {overlap_frames}")
    bounds = list(range(0, frame_count, segment_frames)) + [frame_count]
    cores = list(zip(bounds[:-1], bounds[1:], strict=True))
    if len(cores) > 1 and cores[-1][1] - cores[-1][0] < (segment_frames + 1) // 2:
        cores[-2:] = [(cores[-2][0], cores[-1][1])]
    segments = []
    for index, (core_start, core_end) in enumerate(cores):
        overlap = min(overlap_frames, core_start)  # the first segment has no predecessor
        segments.append(Segment(index, core_start - overlap, core_end, overlap))
    return segments


def segments_from_lists(plan: Sequence[Sequence[int]]) -> list[Segment]:
    """The plan as a video record stores it (``[[start, end, overlap], ...]``) back into ``Segment``s."""
    return [Segment(index, int(start), int(end), int(overlap)) for index, (start, end, overlap) in enumerate(plan)]


def crossfade_weights(overlap: int) -> np.ndarray:
    """``a_j = (j + 1) / (O + 1)``: the next segment's share of shared frame j."""
    return (np.arange(1, overlap + 1, dtype=np.float64) / (overlap + 1)).astype(np.float32)


def assemble(plan: Sequence[Segment], outputs: Sequence[np.ndarray]) -> np.ndarray:
    """The clip from each segment's styled frames (uint8 ``(frames, H, W, 3)`` each, in plan order), shared frames
    crossfaded (module docstring). Returns uint8 ``(N, H, W, 3)``."""
    if len(plan) != len(outputs):
        raise ValueError(f"{len(plan)} segments planned but {len(outputs)} outputs given")
    for segment, frames in zip(plan, outputs, strict=True):
        if len(frames) != segment.frames:
            raise ValueError(f"segment {segment.index} has {len(frames)} frames; its plan says {segment.frames}")
    total = plan[-1].end
    first = outputs[0]
    clip = np.empty((total, *first.shape[1:]), dtype=np.uint8)
    for segment, frames in zip(plan, outputs, strict=True):
        clip[segment.core_start:segment.end] = frames[segment.overlap:]
        if segment.overlap:
            a = crossfade_weights(segment.overlap)[:, None, None, None]
            previous = clip[segment.start:segment.core_start].astype(np.float32)  # the previous segment's tail
            mixed = (1.0 - a) * previous + a * frames[:segment.overlap].astype(np.float32)
            clip[segment.start:segment.core_start] = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    return clip


def input_frames(plan: Sequence[Segment], inputs: Sequence[np.ndarray]) -> np.ndarray:
    """The decoded clip back from the segments' input frames (each segment's core; shared frames are equal)."""
    return np.concatenate([frames[segment.overlap:] for segment, frames in zip(plan, inputs, strict=True)])


def seam_pairs(plan: Sequence[Segment]) -> list[int]:
    """Indices k of the frame pairs (k, k+1) that cross a crossfade (for the seam flicker metric): the ramp
    ``[start - 1, core_start]`` of every segment after the first."""
    pairs: list[int] = []
    for segment in plan[1:]:
        pairs.extend(range(max(segment.start - 1, 0), segment.core_start))
    return pairs
