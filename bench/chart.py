"""A small line chart drawn with Pillow (the project has no plotting library, and a curve in the docs needs no more):
named series of (x, y) points, linear axes with a few rounded ticks, a legend and an optional horizontal guide.

    from bench.chart import line_chart
    line_chart({"single": [(0, 3.1), (60, 1.0)], "c2f": [(0, 2.0), (30, 0.9)]}, "seconds", "score",
               title="cat x Starry Night, 512 px", guide_y=1.0).save("curve.png")
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from PIL import Image, ImageDraw

COLOURS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (23, 190, 207))
WIDTH_PX, HEIGHT_PX = 720, 420
MARGIN_PX = {"left": 64, "right": 150, "top": 34, "bottom": 46}


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering [low, high] (steps of 1, 2 or 5 times a power of ten)."""
    span = max(high - low, 1e-12)
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    return [first + i * step for i in range(int(math.ceil((high - first) / step)) + 1)]


def line_chart(series: Mapping[str, Sequence[tuple[float, float]]], x_label: str, y_label: str, *,
               title: str = "", guide_y: float | None = None, y_max: float | None = None) -> Image.Image:
    """The chart as an RGB image; ``y_max`` clips the y axis (points above it are drawn at the top edge)."""
    xs = [x for points in series.values() for x, _ in points]
    ys = [y for points in series.values() for _, y in points] + ([guide_y] if guide_y is not None else [])
    x_ticks = nice_ticks(0.0, max(xs))
    y_ticks = nice_ticks(min(0.0, min(ys)), min(max(ys), y_max) if y_max is not None else max(ys))
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]
    left, top = MARGIN_PX["left"], MARGIN_PX["top"]
    right, bottom = WIDTH_PX - MARGIN_PX["right"], HEIGHT_PX - MARGIN_PX["bottom"]

    def at(x: float, y: float) -> tuple[float, float]:
        y = min(max(y, y0), y1)
        return (left + (x - x0) / (x1 - x0) * (right - left), bottom - (y - y0) / (y1 - y0) * (bottom - top))

    image = Image.new("RGB", (WIDTH_PX, HEIGHT_PX), "white")
    draw = ImageDraw.Draw(image)
    draw.text((left, 10), title, fill="black")
    for x in x_ticks:
        px, _ = at(x, y0)
        draw.line([(px, top), (px, bottom)], fill=(232, 232, 232))
        draw.text((px - 10, bottom + 6), f"{x:g}", fill="black")
    for y in y_ticks:
        _, py = at(x0, y)
        draw.line([(left, py), (right, py)], fill=(232, 232, 232))
        draw.text((8, py - 6), f"{y:g}", fill="black")
    draw.rectangle([left, top, right, bottom], outline="black")
    draw.text(((left + right) // 2 - 20, HEIGHT_PX - 20), x_label, fill="black")
    draw.text((8, top - 18), y_label, fill="black")
    if guide_y is not None:
        _, py = at(x0, guide_y)
        for start in range(int(left), int(right), 12):
            draw.line([(start, py), (min(start + 6, right), py)], fill=(90, 90, 90))
    for index, (name, points) in enumerate(series.items()):
        colour = COLOURS[index % len(COLOURS)]
        if len(points) > 1:
            draw.line([at(x, y) for x, y in points], fill=colour, width=2)
        legend_y = top + 18 * index
        draw.line([(right + 12, legend_y + 6), (right + 32, legend_y + 6)], fill=colour, width=3)
        draw.text((right + 38, legend_y), name, fill="black")
    return image
