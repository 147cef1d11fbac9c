"""worker/engine/flow.py: DIS flow against the exact motion of synthetic pans and zooms, backward warping, Ruder's
consistency mask (closed forms and a moving patch with known occlusion) and Lai's warping error.

Flow threshold: mean endpoint error under 0.25 px, 8 px in from the borders (where content enters and DIS has no
match). Measured here: 0.004 px for a whole-pixel pan, 0.05-0.10 px with sub-pixel pans and 1-2 % zoom per frame
at 64-96 px. A quarter pixel is where a warped stylization starts to smear visibly (bilinear warping of a one-pixel
stroke misplaced by 0.25 px keeps 75 % of its peak), and it leaves 2.5x headroom over the worst measured case for
other CPUs and OpenCV builds.
"""

from __future__ import annotations

import numpy as np
import pytest

from worker.engine import flow
from worker.video.synthetic import moving_patch_clip, pan_zoom_clip, pan_zoom_flow

BORDER = 8
MOTIONS = [  # (size (h, w), dx, dy, zoom per frame)
    ((64, 64), 2.0, 0.0, 1.0),
    ((72, 96), 1.5, -0.5, 1.01),
    ((96, 96), 0.7, 0.3, 1.02),
    ((64, 80), -3.0, 1.0, 0.99),
]


@pytest.mark.parametrize(("size", "dx", "dy", "zoom"), MOTIONS)
def test_dis_recovers_the_synthetic_motion(cat: np.ndarray, size, dx: float, dy: float, zoom: float) -> None:
    frames, truth = pan_zoom_clip(cat, 8, size, dx, zoom, dy_px_per_frame=dy)
    forward, backward = flow.FlowEstimator("medium").video(frames)
    true_back = pan_zoom_flow(size, dx, zoom, dy_px_per_frame=dy, backward=True)
    assert forward.shape == backward.shape == (7, *size, 2) and forward.dtype == np.float32
    for k in range(7):
        assert flow.endpoint_error(forward[k], truth[k], border=BORDER) < 0.25
        assert flow.endpoint_error(backward[k], true_back, border=BORDER) < 0.25


def test_dis_flow_direction_and_input_types(cat: np.ndarray) -> None:
    frames, truth = pan_zoom_clip(cat, 2, 64, 2.0, 1.0)
    for a, b in ((frames[0], frames[1]), (frames[0].astype(np.float32), frames[1].astype(np.float64)),
                 (frames[0].mean(axis=2), frames[1].mean(axis=2))):
        estimate = flow.dis_flow(a, b)
        assert flow.endpoint_error(estimate, truth[0], border=BORDER) < 0.25
        assert np.median(estimate[..., 0]) == pytest.approx(2.0, abs=0.1)  # content moves right: +x
    with pytest.raises(ValueError, match="preset"):
        flow.FlowEstimator("slowest")
    with pytest.raises(ValueError, match="differ"):
        flow.dis_flow(frames[0], frames[1][:32])


def test_warp_convention_on_a_whole_pixel_shift() -> None:
    image = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    shift = np.zeros((20, 30, 2), np.float32)
    shift[..., 0] = 3.0  # out(p) = image(p + (3, 0))
    warped = flow.warp(image, shift)
    assert warped.dtype == np.uint8 and warped.shape == image.shape
    np.testing.assert_array_equal(warped[:, :27], image[:, 3:])
    np.testing.assert_array_equal(flow.out_of_frame(shift)[:, 27:], True)
    assert not flow.out_of_frame(shift)[:, :27].any()
    assert flow.warp(image.astype(np.float64), shift).dtype == np.float32
    np.testing.assert_array_equal(flow.warp(image[..., 0], shift)[:, :27], image[:, 3:, 0])


@pytest.mark.parametrize(("size", "dx", "dy", "zoom"), MOTIONS)
def test_warping_by_the_true_flow_reproduces_the_frame_where_visible(cat: np.ndarray, size, dx, dy, zoom) -> None:
    frames, truth = pan_zoom_clip(cat, 4, size, dx, zoom, dy_px_per_frame=dy)
    current, following = frames[1].astype(np.float32), frames[2]
    warped = flow.warp(following, truth[1])  # frame 2 brought onto frame 1's grid
    visible = ~flow.out_of_frame(truth[1])
    error = np.abs(warped.astype(np.float32) - current)[visible].mean()
    unwarped = np.abs(following.astype(np.float32) - current)[visible].mean()
    # Two bilinear resamplings (render and warp) of a photo: about 1-2 grey levels, against 10+ without the warp.
    assert error < 3.0 and unwarped > 4 * error


def test_mask_of_a_pure_pan_is_exactly_the_part_that_leaves_the_frame() -> None:
    forward = pan_zoom_flow((32, 40), 2.0, 1.0)
    backward = pan_zoom_flow((32, 40), 2.0, 1.0, backward=True)
    mask = flow.consistency_mask(forward, backward)  # on frame k, for warping frame k+1 onto it
    assert mask.dtype == np.float32 and set(np.unique(mask)) <= {0.0, 1.0}
    np.testing.assert_array_equal(mask[:, 38:], 0.0)  # x + 2 > 39: those pixels are gone in frame k+1
    np.testing.assert_array_equal(mask[:, :38], 1.0)
    previous = flow.consistency_mask(backward, forward)  # on frame k+1: its first two columns are new
    np.testing.assert_array_equal(previous[:, :2], 0.0)
    np.testing.assert_array_equal(previous[:, 2:], 1.0)


def test_mask_of_a_smooth_zoom_has_no_boundaries() -> None:
    forward = pan_zoom_flow((48, 48), 0.5, 1.02)
    backward = pan_zoom_flow((48, 48), 0.5, 1.02, backward=True)
    assert not flow.motion_boundaries(backward).any() and not flow.disocclusion(backward, forward).any()


def test_disocclusion_inequality_closed_form() -> None:
    """|w~ + w^|^2 > 0.01 (|w~|^2 + |w^|^2) + 0.5 with constant flows: w^ = (a, 0) and w = (-a + e, 0) give
    e^2 > 0.01 ((a - e)^2 + a^2) + 0.5."""
    def constant(value: float) -> np.ndarray:
        field = np.zeros((6, 6, 2), np.float32)
        field[..., 0] = value
        return field

    for a, e in ((0.5, 0.5), (0.5, 0.8), (3.0, 0.7), (3.0, 0.75), (20.0, 1.0), (20.0, 1.5)):
        expected = e**2 > 0.01 * ((a - e) ** 2 + a**2) + 0.5
        assert flow.disocclusion(constant(a), constant(-a + e))[2, 2] == expected, (a, e)


def test_motion_boundary_inequality_closed_form() -> None:
    """|grad u^|^2 + |grad v^|^2 > 0.01 |w^|^2 + 0.002: a ramp of slope s in u is a boundary when s^2 exceeds the
    threshold; a step of 1 px between two regions is one (central differences give slope 0.5 at the step)."""
    ys, xs = np.mgrid[0:10, 0:10].astype(np.float32)
    for slope in (0.03, 0.05, 0.1):
        ramp = np.stack([slope * xs, np.zeros_like(xs)], axis=-1)
        expected = slope**2 > 0.01 * ramp[5, 5, 0] ** 2 + 0.002
        assert flow.motion_boundaries(ramp)[5, 5] == expected
    step = np.zeros((10, 10, 2), np.float32)
    step[:, 5:, 0] = 1.0
    boundary = flow.motion_boundaries(step)
    assert boundary[:, 4:6].all() and not boundary[:, :4].any() and not boundary[:, 6:].any()


def test_mask_catches_the_occlusions_of_a_moving_patch(cat: np.ndarray) -> None:
    clip = moving_patch_clip(cat, 6, 80, 24, (3, 2))
    for k in range(5):
        exact = flow.consistency_mask(clip.forward[k], clip.backward[k])
        assert (exact[clip.occluded[k]] == 0).all()  # covered in frame k+1: never compared
        assert exact[~clip.occluded[k]].mean() > 0.95  # the rest: kept, but the patch's rim (motion boundary)
    forward, backward = flow.FlowEstimator().video(clip.frames)
    to_next, to_previous = flow.video_masks(forward, backward)
    assert to_next.shape == to_previous.shape == (5, 80, 80)
    # With DIS's flow: most of the truly occluded pixels, and few others, are masked (measured 95 % and 12 %).
    assert np.mean([(to_next[k][clip.occluded[k]] == 0).mean() for k in range(5)]) > 0.8
    assert np.mean([to_next[k][~clip.occluded[k]].mean() for k in range(5)]) > 0.8
    assert np.mean([(to_previous[k][clip.disoccluded[k]] == 0).mean() for k in range(5)]) > 0.5


def test_warping_error_of_a_consistent_stylization_is_near_zero_and_of_noise_large(cat: np.ndarray) -> None:
    frames, _truth = pan_zoom_clip(cat, 10, (72, 96), 1.5, 1.01, dy_px_per_frame=-0.5)
    # A "stylization" that is a fixed colour map of the frames moves with the content: perfectly consistent.
    # (Inverted tones, a linear map, so it commutes with the bilinear warp.)
    consistent = 255 - frames
    noise = np.random.default_rng(3).integers(0, 256, frames.shape, dtype=np.uint8)
    forward, backward = flow.FlowEstimator().video(frames)
    to_next, _ = flow.video_masks(forward, backward)
    low = flow.warping_error(consistent, forward, to_next)
    high = flow.warping_error(noise, forward, to_next)
    # Independent uniform noise: 3 * 1/6 = 0.5 for whole-pixel motion, less with sub-pixel motion (bilinear
    # averaging of noise lowers its variance); a consistent video: interpolation error only (measured 4e-4).
    assert low < 2e-3 and high > 0.25 and high > 100 * low
    assert flow.warping_error_of(consistent, frames) == pytest.approx(low, rel=1e-6)
    assert flow.warping_error(consistent[:1], forward, to_next) == 0.0


def test_pair_warping_error_closed_form() -> None:
    """Lai's formula: the squared RGB distance summed over channels, averaged over the mask's visible pixels."""
    a = np.zeros((4, 4, 3), np.uint8)
    b = np.full((4, 4, 3), 51, np.uint8)  # 0.2 in [0, 1]: 3 * 0.04 = 0.12 per pixel
    still = np.zeros((4, 4, 2), np.float32)
    mask = np.zeros((4, 4), np.float32)
    mask[:2] = 1
    assert flow.pair_warping_error(a, b, still, mask) == pytest.approx(0.12, rel=1e-5)
    b[2:] = 255  # under the mask's zeros: ignored
    assert flow.pair_warping_error(a, b, still, mask) == pytest.approx(0.12, rel=1e-5)
    assert flow.pair_warping_error(a, b, still, np.zeros((4, 4))) == 0.0
    assert flow.pair_warping_error(a.astype(np.float32), np.full((4, 4, 3), 0.5, np.float32), still,
                                   np.ones((4, 4))) == pytest.approx(0.75)
