"""An independent evaluator of stylized images: metrics that no tool here optimises.

    from bench.evaluate import evaluate
    scores = evaluate(output, content, style)      # uint8 RGB arrays; a dict of floats

    python bench/evaluate.py OUTPUT --content CONTENT --style STYLE [--json]

The engines (Gatys and fast styles) both optimise VGG19 feature and Gram losses, so scoring them with VGG19 would
grade each by its own exam. These four metrics use none of that machinery (numpy and scipy only, no Keras):

- ``ssim``: mean SSIM of luminance (Rec. 601 luma, 0-255) between the output and the content, Wang, Bovik, Sheikh &
  Simoncelli 2004, "Image quality assessment: from error visibility to structural similarity", IEEE TIP 13(4):
  11x11 circular-symmetric Gaussian window with sigma 1.5 (``scipy.ndimage.gaussian_filter``, truncated at 3.5
  sigma = radius 5), K1 = 0.01, K2 = 0.03, L = 255, averaged over the positions where the whole window lies inside
  the image. Higher keeps more of the content's structure (1 = identical luminance).
- ``color_swd``: sliced Wasserstein distance (Rabin, Peyre, Delon & Bernot 2011, "Wasserstein barycenter and its
  application to texture mixing") between the CIELAB colours of the output and of the style: the pixels projected
  on ``COLOR_DIRECTIONS`` fixed random unit directions of Lab (seeded), each projection's quantile function sampled
  at ``COLOR_QUANTILES`` points, the distance the root mean square difference over directions and quantiles (an
  SW2 estimate, in Lab units: roughly Delta E). sRGB -> Lab is our own (IEC 61966-2-1 transfer curve, D65 white,
  the sRGB matrix; CIE 1976 L*a*b*). Lower matches the style's palette better.
- ``gram_random``: Gram-matrix distance on a fixed random-weight convolutional network (numpy, weights drawn from
  ``numpy.random.default_rng(GRAM_SEED)``; three 3x3 conv + ReLU layers of ``GRAM_CHANNELS`` channels, 2x2
  average pooling between them, reflection padding). Random networks capture texture surprisingly well
  (Ustyuzhaninov, Brendel, Gatys & Bethge 2017, "What does it take to generate natural textures?", ICLR), and
  these weights have nothing to do with VGG19. Per layer ``||G_out - G_style||_F / ||G_style||_F`` (Grams
  normalised by positions), averaged over layers. Lower matches the style's texture better.
- ``gabor``: Gabor-energy statistics distance at periods 4-16 px (fine texture): luminance (0-1) filtered by
  complex Gabor filters at ``GABOR_PERIODS`` x ``GABOR_ORIENTATIONS`` (one-octave bandwidth: sigma = 0.56 x
  period; even part made zero-mean), energy = modulus; each band's mean energy compared in log space, the
  distance the RMS over bands of ``log(e_out / e_style)`` (0 = the same fine-texture energy spectrum; 0.69 = off
  by a factor 2 on average). ``gabor_energy`` returns the per-band means for other uses (issue 13).

Sizes: the content is resized (Pillow, Lanczos) to the output's size for SSIM; the style is resized so its long
side equals the output's, which is how both engines scale the style (``style_scale`` 1), so texture statistics
compare at the scale the engines aimed for. The colour distance subsamples at most ``COLOR_PIXELS`` pixels per
image with a seeded generator. Everything is deterministic.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import ndimage, signal

# SSIM (Wang et al. 2004, section III.C).
SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5  # radius int(3.5 * 1.5 + 0.5) = 5: the paper's 11x11 window
SSIM_K1, SSIM_K2, SSIM_L = 0.01, 0.03, 255.0
# Colour.
COLOR_DIRECTIONS = 64
COLOR_QUANTILES = 128
COLOR_PIXELS = 65536
COLOR_SEED = 0
# Random-weight network.
GRAM_SEED = 0
GRAM_CHANNELS = (48, 64, 96)
# Gabor bank: periods in half-octave steps from 4 to 16 px.
GABOR_PERIODS = (4.0, 5.657, 8.0, 11.314, 16.0)
GABOR_ORIENTATIONS = 6
GABOR_SIGMA_PER_PERIOD = 0.56  # one-octave half-amplitude bandwidth: (1/pi) sqrt(ln 2 / 2) (2 + 1) / (2 - 1)
GABOR_EPS = 1e-6

METRICS = ("ssim", "color_swd", "gram_random", "gabor")
BETTER = {"ssim": "higher", "color_swd": "lower", "gram_random": "lower", "gabor": "lower"}


def _rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB image of shape (H, W, 3), got {image.shape}")
    return image.astype(np.float64)


def luminance(image: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of 0-255 RGB, 0-255 (what SSIM's authors computed on)."""
    rgb = _rgb(image)
    return rgb @ np.array([0.299, 0.587, 0.114])


def resize(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """uint8 RGB resized to ``(height, width)`` with Pillow's Lanczos filter."""
    from PIL import Image

    image = np.asarray(image)
    if tuple(image.shape[:2]) == tuple(shape):
        return image
    pil = Image.fromarray(np.clip(np.rint(image), 0, 255).astype(np.uint8))
    return np.asarray(pil.resize((shape[1], shape[0]), Image.Resampling.LANCZOS))


def resize_long_side(image: np.ndarray, long_side: int) -> np.ndarray:
    height, width = np.asarray(image).shape[:2]
    scale = long_side / max(height, width)
    return resize(image, (max(1, round(height * scale)), max(1, round(width * scale))))


# --- SSIM ---------------------------------------------------------------------------------------------------------


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM (Wang et al. 2004) of two greyscale 0-255 images (2-D) or of the luminance of two RGB images."""
    x = luminance(a) if np.ndim(a) == 3 else np.asarray(a, np.float64)
    y = luminance(b) if np.ndim(b) == 3 else np.asarray(b, np.float64)
    if x.shape != y.shape:
        raise ValueError(f"ssim needs images of one size, got {x.shape} and {y.shape}")
    c1, c2 = (SSIM_K1 * SSIM_L) ** 2, (SSIM_K2 * SSIM_L) ** 2

    def blur(z: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(z, SSIM_SIGMA, truncate=SSIM_TRUNCATE, mode="reflect")

    mu_x, mu_y = blur(x), blur(y)
    # Local (co)variances as E[xy] - E[x]E[y] under the Gaussian window (eq. 14-16 of the paper).
    var_x = blur(x * x) - mu_x * mu_x
    var_y = blur(y * y) - mu_y * mu_y
    cov = blur(x * y) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    radius = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
    inner = ssim_map[radius:-radius, radius:-radius] if min(x.shape) > 2 * radius else ssim_map
    return float(inner.mean())


# --- colour -------------------------------------------------------------------------------------------------------

# sRGB (linear) -> CIE XYZ, D65 (IEC 61966-2-1), and the D65 reference white.
_SRGB_TO_XYZ = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
_WHITE_D65 = _SRGB_TO_XYZ.sum(axis=1)  # XYZ of RGB (1, 1, 1), so white maps to L* = 100, a* = b* = 0 exactly


def srgb_to_lab(image: np.ndarray) -> np.ndarray:
    """0-255 sRGB (..., 3) -> CIE L*a*b* (..., 3) under D65."""
    c = np.asarray(image, np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _SRGB_TO_XYZ.T / _WHITE_D65
    delta = 6.0 / 29.0
    f = np.where(xyz > delta**3, np.cbrt(xyz), xyz / (3 * delta**2) + 4.0 / 29.0)
    return np.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])],
                    axis=-1)


def color_directions(count: int = COLOR_DIRECTIONS, seed: int = COLOR_SEED) -> np.ndarray:
    """``count`` fixed random unit vectors in Lab space (uniform on the sphere), ``(count, 3)``."""
    v = np.random.default_rng(seed).standard_normal((count, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _subsample(pixels: np.ndarray, limit: int, seed: int) -> np.ndarray:
    if len(pixels) <= limit:
        return pixels
    return pixels[np.random.default_rng(seed).choice(len(pixels), limit, replace=False)]


def sliced_wasserstein(p: np.ndarray, q: np.ndarray, directions: np.ndarray | None = None,
                       quantiles: int = COLOR_QUANTILES) -> float:
    """SW2 estimate between two point sets ``(n, d)`` and ``(m, d)``: root mean square, over the directions and
    ``quantiles`` evenly spaced levels, of the difference of the projections' quantile functions."""
    directions = color_directions() if directions is None else np.asarray(directions, np.float64)
    levels = (np.arange(quantiles) + 0.5) / quantiles
    qp = np.quantile(np.asarray(p, np.float64) @ directions.T, levels, axis=0)
    qq = np.quantile(np.asarray(q, np.float64) @ directions.T, levels, axis=0)
    return float(np.sqrt(np.mean((qp - qq) ** 2)))


def color_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Sliced Wasserstein distance of the Lab colours of two RGB images (any sizes)."""
    pa = _subsample(srgb_to_lab(_rgb(a)).reshape(-1, 3), COLOR_PIXELS, COLOR_SEED)
    pb = _subsample(srgb_to_lab(_rgb(b)).reshape(-1, 3), COLOR_PIXELS, COLOR_SEED + 1)
    return sliced_wasserstein(pa, pb)


# --- Grams on a random-weight network -----------------------------------------------------------------------------


def random_network(seed: int = GRAM_SEED, channels: Sequence[int] = GRAM_CHANNELS) -> list[np.ndarray]:
    """The fixed weights: one ``(in * 9, out)`` matrix per 3x3 layer, He-scaled Gaussian, no bias."""
    rng = np.random.default_rng(seed)
    weights, c_in = [], 3
    for c_out in channels:
        w = rng.standard_normal((c_in * 9, c_out)).astype(np.float32) * np.float32(np.sqrt(2.0 / (c_in * 9)))
        weights.append(w)
        c_in = c_out
    return weights


def _conv3x3_relu(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    padded = np.pad(x, ((1, 1), (1, 1), (0, 0)), mode="reflect")
    # (H, W, C, 3, 3) windows -> rows of C*9 in the weight matrix's (channel, dy, dx) order.
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(0, 1))
    h, wd = x.shape[:2]
    out = windows.reshape(h * wd, -1) @ w
    return np.maximum(out, 0.0).reshape(h, wd, -1)


def _avg_pool2(x: np.ndarray) -> np.ndarray:
    h, w = (x.shape[0] // 2) * 2, (x.shape[1] // 2) * 2
    x = x[:h, :w]
    return x.reshape(h // 2, 2, w // 2, 2, -1).mean(axis=(1, 3))


_NETWORK: list[np.ndarray] | None = None


def random_grams(image: np.ndarray) -> list[np.ndarray]:
    """Gram matrices (normalised by positions) of each layer of the fixed random network on 0-255 RGB."""
    global _NETWORK
    if _NETWORK is None:
        _NETWORK = random_network()
    x = (_rgb(image) / 255.0 - 0.5).astype(np.float32)
    grams = []
    for i, w in enumerate(_NETWORK):
        if i:
            x = _avg_pool2(x)
        x = _conv3x3_relu(x, w)
        flat = x.reshape(-1, x.shape[-1])
        grams.append(flat.T @ flat / len(flat))
    return grams


def gram_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over layers of ``||G_a - G_b||_F / ||G_b||_F`` (``b`` is the reference)."""
    out = []
    for ga, gb in zip(random_grams(a), random_grams(b), strict=True):
        out.append(float(np.linalg.norm(ga - gb) / max(np.linalg.norm(gb), 1e-12)))
    return float(np.mean(out))


# --- Gabor energy -------------------------------------------------------------------------------------------------


def gabor_kernel(period: float, theta: float) -> np.ndarray:
    """Complex Gabor kernel: Gaussian envelope (sigma = 0.56 period), carrier of ``period`` px along ``theta``;
    the even (real) part is made zero-mean so flat regions give no energy."""
    sigma = GABOR_SIGMA_PER_PERIOD * period
    radius = int(np.ceil(3 * sigma))
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1].astype(np.float64)
    along = xx * np.cos(theta) + yy * np.sin(theta)
    envelope = np.exp(-(xx**2 + yy**2) / (2 * sigma**2))
    even = envelope * np.cos(2 * np.pi * along / period)
    even -= envelope * (even.sum() / envelope.sum())
    odd = envelope * np.sin(2 * np.pi * along / period)
    kernel = even + 1j * odd
    return kernel / np.abs(kernel).sum()


def gabor_energy(image: np.ndarray, periods: Sequence[float] = GABOR_PERIODS,
                 orientations: int = GABOR_ORIENTATIONS) -> np.ndarray:
    """Mean Gabor energy of the luminance (0-1) per band, shape ``(len(periods), orientations)``."""
    lum = (luminance(image) if np.ndim(image) == 3 else np.asarray(image, np.float64)) / 255.0
    out = np.empty((len(periods), orientations))
    for i, period in enumerate(periods):
        for j in range(orientations):
            kernel = gabor_kernel(period, np.pi * j / orientations)
            r = kernel.shape[0] // 2
            # Reflect-pad so every output position sees a full kernel; 'valid' gives back the image's size.
            pad = min(r, min(lum.shape) - 1)
            padded = np.pad(lum, pad, mode="reflect")
            response = signal.fftconvolve(padded, kernel, mode="valid") if pad == r else \
                signal.fftconvolve(padded, kernel, mode="same")
            out[i, j] = float(np.abs(response).mean())
    return out


def gabor_distance(a: np.ndarray, b: np.ndarray) -> float:
    """RMS over bands of the log ratio of mean Gabor energies (``b`` is the reference)."""
    ea, eb = gabor_energy(a), gabor_energy(b)
    return float(np.sqrt(np.mean((np.log(ea + GABOR_EPS) - np.log(eb + GABOR_EPS)) ** 2)))


def gabor_bias(a: np.ndarray, b: np.ndarray) -> float:
    """Signed mean over bands of ``log(e_a / e_b)``: below 0 when ``a`` has less fine-texture energy than the
    reference ``b`` (softer), above 0 when more (noisier); ``gabor_distance`` cannot tell the two apart."""
    ea, eb = gabor_energy(a), gabor_energy(b)
    return float(np.mean(np.log(ea + GABOR_EPS) - np.log(eb + GABOR_EPS)))


# --- all together -------------------------------------------------------------------------------------------------


def evaluate(output: np.ndarray, content: np.ndarray, style: np.ndarray) -> dict[str, float]:
    """The four metrics of ``output`` against its ``content`` and ``style`` (uint8 RGB arrays, any sizes)."""
    output = np.asarray(output)
    content_at = resize(np.asarray(content), output.shape[:2])
    style_at = resize_long_side(np.asarray(style), max(output.shape[:2]))
    return {
        "ssim": ssim(output, content_at),
        "color_swd": color_distance(output, style_at),
        "gram_random": gram_distance(output, style_at),
        "gabor": gabor_distance(output, style_at),
    }


def load(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Score a stylized image against its content and style with "
                                     "metrics no engine optimises (SSIM, Lab sliced Wasserstein, random-network "
                                     "Grams, Gabor energy).")
    parser.add_argument("output", type=Path)
    parser.add_argument("--content", type=Path, required=True)
    parser.add_argument("--style", type=Path, required=True)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    scores = evaluate(load(args.output), load(args.content), load(args.style))
    if args.json:
        print(json.dumps(scores))
    else:
        for name in METRICS:
            print(f"{name:<12}{scores[name]:>10.4f}   ({BETTER[name]} is better)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
