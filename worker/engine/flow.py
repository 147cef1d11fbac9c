"""Optical flow, warping, the consistency mask and the warping error: pure numpy/OpenCV, arrays in and out.

Conventions (the same everywhere in this module):

- A flow field is float32 ``(H, W, 2)``: ``flow[y, x] = (dx, dy)`` in pixels, pixel centres at integer coordinates.
  The flow *from* frame A *to* frame B is defined on A's pixel grid: the point seen at ``p`` in A is seen at
  ``p + flow(p)`` in B, so ``A(p) ~ B(p + flow(p))``. ``cv2.DISOpticalFlow.calc(A, B)`` returns exactly that.
- ``warp(image, flow)`` is *backward* warping: ``out(p) = image(p + flow(p))``, bilinear. To bring frame B onto A's
  grid, warp B by the flow from A to B. Ruder's warped previous frame for frame i is
  ``warp(stylized[i-1], flow(i -> i-1))``.

Flow: OpenCV's DIS (Kroeger et al., "Fast Optical Flow using Dense Inverse Search", ECCV 2016) with the "medium"
preset, on greyscale frames. It is the accurate-enough, fast-enough choice on CPU workers (about 66 ms for 512x288
on 2 cores, brief 4b); Ruder used DeepFlow/EpicFlow, which are far slower and not in the OpenCV wheel.

Consistency mask, after Ruder, Dosovitskiy and Brox, "Artistic style transfer for videos", GCPR 2016 (arXiv
1604.08610; the part on the temporal consistency loss, unchanged in the IJCV 2018 version, "Artistic style transfer
for videos and spherical images", arXiv 1708.04538), who take the coefficients from Sundaram, Brox and Keutzer,
"Dense point trajectories by GPU-accelerated large displacement optical flow", ECCV 2010. For frame i, with
``w^ = (u^, v^)`` the flow from frame i to the other frame (the one we warp with) and ``w`` the flow from the
other frame back to frame i, let ``w~(p) = w(p + w^(p))`` (``w`` warped onto frame i's grid). A pixel is
**disoccluded** when

    |w~ + w^|^2 > 0.01 (|w~|^2 + |w^|^2) + 0.5                                   (disocclusion)

(going there and back does not return to the start), and on a **motion boundary** when

    |grad u^|^2 + |grad v^|^2 > 0.01 |w^|^2 + 0.002                              (motion boundary)

with central differences for the gradients. The mask ``c`` is 0 at such pixels and 1 elsewhere. One addition to
the paper: a pixel whose ``p + w^(p)`` lies outside the other frame is 0 as well (it has no previous value to keep;
the paper leaves such pixels to the inequalities, which do not always catch them because the flow there is an
extrapolation). The mask is binary, as in the paper.

Warping error, after Lai, Huang, Wang, Shechtman, Yumer and Yang, "Learning Blind Video Temporal Consistency",
ECCV 2018 (arXiv 1808.00449; the evaluation section's warping error): for stylized frames ``V_t`` with values in [0, 1],

    E_warp(V_t, V_t+1) = (1 / sum_p M_t(p)) * sum_p M_t(p) * ||V_t(p) - V^_t+1(p)||_2^2

where ``V^_t+1 = warp(V_t+1, flow(t -> t+1))`` and ``M_t`` the consistency mask of frame t; the video's figure is
the mean over its T-1 pairs. As in the paper, flow and mask come from the *input* frames, not the stylized ones
(whose flicker would corrupt the flow that measures it). ``||.||_2^2`` sums the three channels, as written in the
paper; divide by 3 for a per-channel mean squared error. Independent uniform noise scores 3 * 1/6 = 0.5.
"""

from __future__ import annotations

import cv2
import numpy as np

DIS_PRESETS = {
    "ultrafast": cv2.DISOpticalFlow_PRESET_ULTRAFAST,
    "fast": cv2.DISOpticalFlow_PRESET_FAST,
    "medium": cv2.DISOpticalFlow_PRESET_MEDIUM,
}
DEFAULT_PRESET = "medium"

# The two inequalities' coefficients (Ruder et al. 2016, from Sundaram et al. 2010).
DISOCCLUSION_RELATIVE = 0.01
DISOCCLUSION_ABSOLUTE = 0.5  # px^2
BOUNDARY_RELATIVE = 0.01
BOUNDARY_ABSOLUTE = 0.002  # (px/px)^2


class FlowEstimator:
    """One DIS instance, reused across frames (its buffers are sized on the first call). Not thread-safe: one per
    thread, as OpenCV objects are."""

    def __init__(self, preset: str = DEFAULT_PRESET) -> None:
        if preset not in DIS_PRESETS:
            raise ValueError(f"unknown DIS preset {preset!r}; valid: {', '.join(DIS_PRESETS)}")
        self.preset = preset
        self._dis = cv2.DISOpticalFlow_create(DIS_PRESETS[preset])

    def __call__(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """Flow from ``first`` to ``second`` (same size; RGB or grey, uint8 or float in 0-255), float32 (H, W, 2)."""
        a, b = _grey(first), _grey(second)
        if a.shape != b.shape:
            raise ValueError(f"frames differ in size: {a.shape} and {b.shape}")
        return self._dis.calc(a, b, None)

    def pair(self, first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(forward, backward): the flow from ``first`` to ``second`` and from ``second`` to ``first``."""
        return self(first, second), self(second, first)

    def video(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For N frames, ``(forward, backward)`` of shape (N-1, H, W, 2): ``forward[k]`` from frame k to k+1,
        ``backward[k]`` from frame k+1 to k."""
        greys = [_grey(frame) for frame in frames]
        forward = np.stack([self._dis.calc(a, b, None) for a, b in zip(greys[:-1], greys[1:], strict=True)])
        backward = np.stack([self._dis.calc(b, a, None) for a, b in zip(greys[:-1], greys[1:], strict=True)])
        return forward, backward


def dis_flow(first: np.ndarray, second: np.ndarray, *, preset: str = DEFAULT_PRESET) -> np.ndarray:
    """Flow from ``first`` to ``second`` with a fresh DIS instance (use ``FlowEstimator`` for many frames)."""
    return FlowEstimator(preset)(first, second)


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Backward warp: ``out(p) = image(p + flow(p))``, bilinear, edge pixels repeated outside the frame (mask those
    with ``out_of_frame``). ``image`` (H, W) or (H, W, C), any dtype OpenCV remaps (uint8 stays uint8)."""
    flow = _flow(flow)
    if image.shape[:2] != flow.shape[:2]:
        raise ValueError(f"image {image.shape[:2]} and flow {flow.shape[:2]} differ in size")
    map_x, map_y = _sample_points(flow)
    source = np.ascontiguousarray(image if image.dtype in (np.uint8, np.float32) else image.astype(np.float32))
    if source.ndim == 3 and source.shape[2] > 4:  # remap takes at most 4 channels
        return np.stack([warp(source[..., c], flow) for c in range(source.shape[2])], axis=-1)
    out = cv2.remap(source, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(source.shape)


def out_of_frame(flow: np.ndarray) -> np.ndarray:
    """bool (H, W): where ``p + flow(p)`` falls outside the frame, so a warp has nothing to sample there."""
    flow = _flow(flow)
    height, width = flow.shape[:2]
    map_x, map_y = _sample_points(flow)
    return (map_x < 0) | (map_x > width - 1) | (map_y < 0) | (map_y > height - 1)


def disocclusion(flow_to_other: np.ndarray, flow_from_other: np.ndarray) -> np.ndarray:
    """bool (H, W), Ruder's disocclusion inequality: the forward-backward check fails. ``flow_to_other`` is
    ``w^`` (from this frame to the other), ``flow_from_other`` is ``w`` (from the other frame to this one)."""
    w_hat = _flow(flow_to_other)
    w_tilde = warp(_flow(flow_from_other), w_hat)
    round_trip = np.sum(np.square(w_tilde + w_hat), axis=-1)
    lengths = np.sum(np.square(w_tilde), axis=-1) + np.sum(np.square(w_hat), axis=-1)
    return round_trip > DISOCCLUSION_RELATIVE * lengths + DISOCCLUSION_ABSOLUTE


def motion_boundaries(flow: np.ndarray) -> np.ndarray:
    """bool (H, W), Ruder's motion-boundary inequality: the flow changes fast relative to its size (central
    differences, one-sided at the frame's edges)."""
    flow = _flow(flow).astype(np.float64)
    du_dy, du_dx = np.gradient(flow[..., 0])
    dv_dy, dv_dx = np.gradient(flow[..., 1])
    gradient = du_dx**2 + du_dy**2 + dv_dx**2 + dv_dy**2
    return gradient > BOUNDARY_RELATIVE * np.sum(flow**2, axis=-1) + BOUNDARY_ABSOLUTE


def consistency_mask(flow_to_other: np.ndarray, flow_from_other: np.ndarray) -> np.ndarray:
    """float32 (H, W) of 0 and 1 on this frame's grid: 1 where the pixel is visible in both frames and the flow is
    trusted (module docstring), 0 where it is disoccluded, on a motion boundary or maps outside the other frame."""
    w_hat = _flow(flow_to_other)
    rejected = disocclusion(w_hat, flow_from_other) | motion_boundaries(w_hat) | out_of_frame(w_hat)
    return (~rejected).astype(np.float32)


def video_masks(forward: np.ndarray, backward: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """From ``FlowEstimator.video``'s flows, ``(masks_to_next, masks_to_previous)``, each (N-1, H, W):
    ``masks_to_next[k]`` on frame k for warping frame k+1 onto it (warping error), ``masks_to_previous[k]`` on
    frame k+1 for warping frame k onto it (Ruder's temporal loss and initialisation of frame k+1)."""
    to_next = np.stack([consistency_mask(f, b) for f, b in zip(forward, backward, strict=True)])
    to_previous = np.stack([consistency_mask(b, f) for f, b in zip(forward, backward, strict=True)])
    return to_next, to_previous


def pair_warping_error(current: np.ndarray, following: np.ndarray, flow_to_following: np.ndarray,
                       mask: np.ndarray) -> float:
    """Lai's ``E_warp(V_t, V_t+1)`` for one pair: uint8 frames are scaled to [0, 1], float frames taken as they are.
    A mask with no visible pixel gives 0 (nothing to compare)."""
    a, b = _unit(current), _unit(following)
    warped = warp(b, flow_to_following)
    mask = np.asarray(mask, dtype=np.float64)
    visible = float(mask.sum())
    if visible == 0:
        return 0.0
    per_pixel = np.sum(np.square(a - warped), axis=-1) if a.ndim == 3 else np.square(a - warped)
    return float(np.sum(mask * per_pixel) / visible)


def warping_error(stylized: np.ndarray, flows_to_next: np.ndarray, masks_to_next: np.ndarray) -> float:
    """Lai's video warping error: the mean of ``pair_warping_error`` over the N-1 consecutive pairs of
    ``stylized`` (N, H, W, 3), with flows and masks computed on the input frames."""
    if len(stylized) < 2:
        return 0.0
    errors = [pair_warping_error(stylized[k], stylized[k + 1], flows_to_next[k], masks_to_next[k])
              for k in range(len(stylized) - 1)]
    return float(np.mean(errors))


def warping_error_of(stylized: np.ndarray, originals: np.ndarray, *, preset: str = DEFAULT_PRESET) -> float:
    """The warping error of ``stylized`` with flows and masks computed by DIS on ``originals`` (same size)."""
    forward, backward = FlowEstimator(preset).video(originals)
    to_next, _ = video_masks(forward, backward)
    return warping_error(stylized, forward, to_next)


def endpoint_error(estimate: np.ndarray, truth: np.ndarray, *, border: int = 0) -> float:
    """Mean Euclidean distance between two flow fields in pixels, ``border`` pixels cropped from each side."""
    estimate, truth = _flow(estimate), _flow(truth)
    if border:
        estimate = estimate[border:-border, border:-border]
        truth = truth[border:-border, border:-border]
    return float(np.mean(np.linalg.norm(estimate - truth, axis=-1)))


# -- internals ---------------------------------------------------------------------------------------------------


def _flow(flow: np.ndarray) -> np.ndarray:
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"a flow field is (H, W, 2), got {flow.shape}")
    return np.ascontiguousarray(flow, dtype=np.float32)


def _sample_points(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    height, width = flow.shape[:2]
    xs = np.arange(width, dtype=np.float32)[None, :]
    ys = np.arange(height, dtype=np.float32)[:, None]
    return xs + flow[..., 0], ys + flow[..., 1]


def _grey(frame: np.ndarray) -> np.ndarray:
    """8-bit single channel for DIS: RGB to luma (BT.601 weights, OpenCV's), floats clipped from 0-255."""
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        frame = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
    if frame.ndim == 3:
        frame = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
    return np.ascontiguousarray(frame)


def _unit(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    return frame.astype(np.float32) / 255.0 if frame.dtype == np.uint8 else frame.astype(np.float32)
