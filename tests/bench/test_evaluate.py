"""bench/evaluate.py: the independent evaluator's metrics on closed forms and known orderings (numpy/scipy only,
small images: the whole file runs in a few seconds)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("bench_evaluate", ROOT / "bench" / "evaluate.py")
ev = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ev)


def photo(size: int = 64, seed: int = 0) -> np.ndarray:
    """A deterministic 'photo': smooth colour gradients, edges and some fine texture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    r = 120 + 100 * np.sin(3 * xx + 1.0) * np.cos(2 * yy)
    g = 100 + 80 * (xx > 0.5) + 40 * np.sin(9 * yy)
    b = 90 + 120 * yy * xx
    image = np.stack([r, g, b], axis=-1) + ndimage.gaussian_filter(rng.normal(0, 25, (size, size, 3)), (1, 1, 0))
    return np.clip(image, 0, 255).astype(np.uint8)


def blurred(image: np.ndarray, sigma: float) -> np.ndarray:
    out = ndimage.gaussian_filter(image.astype(np.float64), (sigma, sigma, 0))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def test_identical_images_score_perfectly():
    a = photo()
    scores = ev.evaluate(a, a, a)
    assert scores["ssim"] == pytest.approx(1.0, abs=1e-9)
    for name in ("color_swd", "gram_random", "gabor"):
        assert scores[name] == pytest.approx(0.0, abs=1e-9), name


def test_ssim_of_two_flat_images_is_the_luminance_term():
    # Constant images have no variance, so SSIM reduces to (2ab + C1) / (a^2 + b^2 + C1) (Wang et al. eq. 13).
    a, b = np.full((32, 32), 100.0), np.full((32, 32), 140.0)
    c1 = (0.01 * 255) ** 2
    assert ev.ssim(a, b) == pytest.approx((2 * 100 * 140 + c1) / (100**2 + 140**2 + c1), rel=1e-12)


def test_ssim_is_symmetric_and_falls_with_blur_and_noise():
    a = photo()
    assert ev.ssim(a, blurred(a, 1)) == pytest.approx(ev.ssim(blurred(a, 1), a), rel=1e-12)
    assert 1.0 > ev.ssim(a, blurred(a, 1)) > ev.ssim(a, blurred(a, 3))
    noisy = np.clip(a + np.random.default_rng(1).normal(0, 40, a.shape), 0, 255).astype(np.uint8)
    assert ev.ssim(a, noisy) < ev.ssim(a, blurred(a, 1))


def test_srgb_to_lab_reference_colours():
    lab = ev.srgb_to_lab(np.array([[255, 255, 255], [0, 0, 0], [255, 0, 0], [128, 128, 128]], np.float64))
    assert lab[0] == pytest.approx([100.0, 0.0, 0.0], abs=1e-9)
    assert lab[1] == pytest.approx([0.0, 0.0, 0.0], abs=1e-9)
    assert lab[2] == pytest.approx([53.24, 80.09, 67.20], abs=0.05)  # the usual published sRGB red
    assert lab[3] == pytest.approx([53.59, 0.0, 0.0], abs=0.05)


def test_sliced_wasserstein_of_a_translation_is_the_projected_shift():
    points = np.random.default_rng(2).normal(0, 10, (5000, 3))
    shift = np.array([6.0, -3.0, 2.0])
    directions = ev.color_directions()
    expected = np.sqrt(np.mean((directions @ shift) ** 2))
    assert ev.sliced_wasserstein(points + shift, points) == pytest.approx(expected, rel=1e-9)


def test_a_colour_shift_moves_the_colour_distance_further():
    a = photo()
    warmer = np.clip(a.astype(int) + [30, 0, -30], 0, 255).astype(np.uint8)
    much_warmer = np.clip(a.astype(int) + [70, 0, -70], 0, 255).astype(np.uint8)
    assert 0 < ev.color_distance(warmer, a) < ev.color_distance(much_warmer, a)
    # Colour distance ignores where the colours are: a shuffled image has the same palette.
    shuffled = np.random.default_rng(3).permutation(a.reshape(-1, 3)).reshape(a.shape)
    assert ev.color_distance(shuffled, a) < 0.2 * ev.color_distance(warmer, a)


def test_random_network_is_fixed_and_grams_order_textures():
    assert all(np.array_equal(x, y) for x, y in zip(ev.random_network(), ev.random_network(), strict=True))
    a = photo()
    assert ev.gram_distance(a, a) == 0.0
    assert 0 < ev.gram_distance(blurred(a, 1), a) < ev.gram_distance(blurred(a, 3), a)
    # The same texture elsewhere (another seed of the noise) is closer than a blurred copy of the same image.
    assert ev.gram_distance(photo(seed=5), a) < ev.gram_distance(blurred(a, 3), a)


def test_gabor_energy_sees_fine_texture():
    a = photo()
    bands = ev.gabor_energy(a)
    assert bands.shape == (len(ev.GABOR_PERIODS), ev.GABOR_ORIENTATIONS)
    assert np.all(ev.gabor_energy(np.full((48, 48, 3), 120, np.uint8)) < 1e-9)  # flat: no energy
    assert 0 < ev.gabor_distance(blurred(a, 1), a) < ev.gabor_distance(blurred(a, 2), a)
    # Vertical stripes of period 4 px put their energy at period 4, orientation 0 (carrier along x).
    stripes = np.tile((np.arange(64) % 4 < 2)[None, :, None] * 200 + 20, (64, 1, 3)).astype(np.uint8)
    energy = ev.gabor_energy(stripes)
    assert np.unravel_index(np.argmax(energy), energy.shape) == (0, 0)


def test_gabor_bias_says_softer_or_noisier():
    a = photo()
    assert ev.gabor_bias(a, a) == pytest.approx(0.0, abs=1e-12)
    assert ev.gabor_bias(blurred(a, 2), a) < ev.gabor_bias(blurred(a, 1), a) < 0  # blur removes fine energy
    noisy = np.clip(a + np.random.default_rng(1).normal(0, 30, a.shape), 0, 255).astype(np.uint8)
    assert ev.gabor_bias(noisy, a) > 0


def test_evaluate_resizes_content_and_style_and_the_cli_prints_json(tmp_path, capsys):
    from PIL import Image

    a = photo(64)
    scores = ev.evaluate(a[:48], a, photo(96, seed=4))  # other sizes: resized, not refused
    assert set(scores) == set(ev.METRICS) and all(np.isfinite(list(scores.values())))
    for name, image in (("o.png", a), ("c.png", blurred(a, 1)), ("s.png", photo(seed=6))):
        Image.fromarray(image).save(tmp_path / name)
    # The CLI's main in this process (a subprocess would spend seconds importing scipy again).
    assert ev.main([str(tmp_path / "o.png"), "--content", str(tmp_path / "c.png"), "--style",
                    str(tmp_path / "s.png"), "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == set(ev.METRICS)
