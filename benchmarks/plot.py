"""A line chart with PIL only (no plotting dependency): FID against wall-clock minutes."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

PALETTE = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (23, 190, 207), (127, 127, 127), (188, 189, 34), (0, 0, 0), (174, 199, 232)]


def _nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    import math

    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(lo / step) * step
    ticks = [round(start, 10)]
    while ticks[-1] < hi - 1e-9:  # the last tick covers the largest value
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def line_chart(series: dict[str, list[tuple[float, float]]], path: Path, *, title: str, x_label: str,
               y_label: str, floor: Optional[float] = None, size=(900, 560)) -> Path:
    from PIL import Image, ImageDraw, ImageFont

    width, height = size
    left, right, top, bottom = 80, 200, 50, 60
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    points = [p for values in series.values() for p in values]
    xs = [x for x, _ in points] or [0.0, 1.0]
    ys = [y for _, y in points] + ([floor] if floor is not None else []) or [0.0, 1.0]
    x_ticks = _nice_ticks(0.0, max(xs))
    y_ticks = _nice_ticks(min(0.0, min(ys)), max(ys))
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]

    def to_px(x: float, y: float) -> tuple[float, float]:
        px = left + (x - x0) / (x1 - x0) * (width - left - right)
        py = height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom)
        return px, py

    for t in x_ticks:
        px, _ = to_px(t, y0)
        draw.line([(px, top), (px, height - bottom)], fill=(230, 230, 230))
        draw.text((px - 8, height - bottom + 6), f"{t:g}", fill="black", font=font)
    for t in y_ticks:
        _, py = to_px(x0, t)
        draw.line([(left, py), (width - right, py)], fill=(230, 230, 230))
        draw.text((left - 45, py - 6), f"{t:g}", fill="black", font=font)
    draw.rectangle([left, top, width - right, height - bottom], outline="black")
    draw.text((left, 18), title, fill="black", font=font)
    draw.text(((width - right + left) / 2 - 40, height - 25), x_label, fill="black", font=font)
    draw.text((10, top - 30), y_label, fill="black", font=font)
    if floor is not None:
        _, py = to_px(x0, floor)
        for start in range(left, width - right, 12):
            draw.line([(start, py), (min(start + 6, width - right), py)], fill=(120, 120, 120), width=2)
        draw.text((width - right + 10, py - 6), "real vs real", fill=(120, 120, 120), font=font)
    for i, (name, values) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        pixels = [to_px(x, y) for x, y in sorted(values)]
        if len(pixels) > 1:
            draw.line(pixels, fill=colour, width=3)
        for px, py in pixels:
            draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill=colour)
        draw.text((width - right + 10, top + 10 + 18 * i), name, fill=colour, font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path
