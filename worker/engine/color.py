"""Colour preservation (Gatys, Bethge, Hertzmann & Shechtman 2017, "Controlling Perceptual Factors in Neural
Style Transfer", section 5). Pure numpy on float32 RGB images in 0-255.

- luminance: style transfer on the luminance channel only. Both images become grey (Y of YIQ in all three
  channels); the style's luminance is matched to the content's mean and standard deviation (as the paper does so
  the style's brightness does not leak in); after optimisation the result's Y is recombined with the content's
  I and Q, so the output keeps the content's colours exactly.
- histogram: before optimising, the style image's colours are transformed linearly so that their mean and
  covariance equal the content's (the paper's "colour histogram matching", using the symmetric matrix square
  root), then style transfer runs as usual.
"""

from __future__ import annotations

import numpy as np

# NTSC YIQ (the paper's choice); rows are output channels.
_RGB_TO_YIQ = np.array(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]], dtype=np.float64
)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ)


def rgb_to_yiq(image: np.ndarray) -> np.ndarray:
    return (image.astype(np.float64) @ _RGB_TO_YIQ.T).astype(np.float32)


def yiq_to_rgb(image: np.ndarray) -> np.ndarray:
    return (image.astype(np.float64) @ _YIQ_TO_RGB.T).astype(np.float32)


def luminance_as_rgb(image: np.ndarray) -> np.ndarray:
    """The Y channel repeated into three channels (a grey RGB image the backbone can read)."""
    y = rgb_to_yiq(image)[..., :1]
    return np.repeat(y, 3, axis=-1)


def match_luminance(style_grey: np.ndarray, content_grey: np.ndarray) -> np.ndarray:
    """Shift and scale the style's luminance to the content's mean and standard deviation."""
    s_mean, s_std = float(style_grey.mean()), float(style_grey.std()) + 1e-6
    c_mean, c_std = float(content_grey.mean()), float(content_grey.std())
    return np.clip((style_grey - s_mean) * (c_std / s_std) + c_mean, 0, 255).astype(np.float32)


def recombine_luminance(result_rgb: np.ndarray, content_rgb: np.ndarray) -> np.ndarray:
    """The result's luminance with the content's chroma (I, Q)."""
    yiq = rgb_to_yiq(content_rgb)
    yiq[..., 0] = rgb_to_yiq(result_rgb)[..., 0]
    return np.clip(yiq_to_rgb(yiq), 0, 255)


def _sqrtm(cov: np.ndarray, inverse: bool = False) -> np.ndarray:
    values, vectors = np.linalg.eigh(cov)
    values = np.clip(values, 1e-5, None)
    power = -0.5 if inverse else 0.5
    return (vectors * values**power) @ vectors.T


def match_color_histogram(style_rgb: np.ndarray, content_rgb: np.ndarray) -> np.ndarray:
    """The style image with its colour mean and covariance set to the content's."""
    s = style_rgb.reshape(-1, 3).astype(np.float64)
    c = content_rgb.reshape(-1, 3).astype(np.float64)
    s_mean, c_mean = s.mean(0), c.mean(0)
    transform = _sqrtm(np.cov(c, rowvar=False)) @ _sqrtm(np.cov(s, rowvar=False), inverse=True)
    matched = (s - s_mean) @ transform.T + c_mean
    return np.clip(matched, 0, 255).reshape(style_rgb.shape).astype(np.float32)
