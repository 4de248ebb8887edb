"""Evaluation pictures, drawn with Pillow only.

- The disturbance experiment: one panel per metric (a line per disturbance against the level) and, below,
  a strip of example images per disturbance and level.
- The truncation sweep: FID against IS and precision against recall with each point labelled by its
  truncation value (BigGAN's figure 2), other numbers against the value, and example images per value.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

PALETTE = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189), (140, 86, 75)]
PANEL_W, PANEL_H, PANELS_PER_ROW = 320, 230, 4
MARGIN_L, MARGIN_R, MARGIN_T, MARGIN_B = 52, 12, 26, 34
STRIP_LABEL_W, IMAGES_PER_LEVEL, LEVEL_GAP = 130, 4, 10


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _ticks(lo: float, hi: float, count: int = 4) -> list[float]:
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(lo / step) * step
    ticks = [start]
    while ticks[-1] < hi - 1e-12 * max(1.0, abs(hi)):
        ticks.append(ticks[-1] + step)
    return ticks


def _panel(draw, left: int, top: int, title: str, series: dict[str, list[tuple[float, float]]], colours: dict, font):
    x0, x1 = left + MARGIN_L, left + PANEL_W - MARGIN_R
    y0, y1 = top + PANEL_H - MARGIN_B, top + MARGIN_T
    values = [y for points in series.values() for _, y in points if y is not None and math.isfinite(y)]
    ticks = _ticks(min(values, default=0.0), max(values, default=1.0))
    lo, hi = ticks[0], ticks[-1]

    def px(x: float, y: float) -> tuple[float, float]:
        return x0 + x * (x1 - x0), y0 - (y - lo) / (hi - lo) * (y0 - y1)

    for tick in ticks:
        _, y = px(0.0, tick)
        draw.line([(x0, y), (x1, y)], fill=(232, 232, 232))
        draw.text((x0 - 6, y), f"{tick:.4g}", fill="black", font=font, anchor="rm")
    for level in (0.0, 0.25, 0.5, 0.75, 1.0):
        x, _ = px(level, lo)
        draw.line([(x, y0), (x, y0 + 3)], fill="black")
        draw.text((x, y0 + 5), f"{level:g}", fill="black", font=font, anchor="ma")
    draw.rectangle([x0, y1, x1, y0], outline="black")
    draw.text((left + PANEL_W / 2, top + 6), title, fill="black", font=font, anchor="ma")
    draw.text(((x0 + x1) / 2, y0 + 18), "disturbance level", fill=(90, 90, 90), font=font, anchor="ma")
    for name, points in series.items():
        finite = [px(x, y) for x, y in points if y is not None and math.isfinite(y)]
        if len(finite) > 1:
            draw.line(finite, fill=colours[name], width=2)
        for x, y in finite:
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colours[name])


def disturbance_figure(report, path: Path) -> Path:
    """Write the report's picture to `path` (PNG, atomically) and return the path."""
    import io

    import numpy as np
    from PIL import Image, ImageDraw

    from gancli.checkpoint import atomic_write_bytes

    names = list(report.rows)
    colours = {name: PALETTE[index % len(PALETTE)] for index, name in enumerate(names)}
    keys = report.shown_keys()
    panel_rows = math.ceil((len(keys) + 1) / PANELS_PER_ROW)  # one slot for the legend
    some = next(iter(report.examples.values()))[0]
    side = some.shape[-1]
    scale = max(1, round(56 / side))
    cell = side * scale
    strip_w = STRIP_LABEL_W + len(report.levels) * (IMAGES_PER_LEVEL * cell + LEVEL_GAP)
    width = max(PANELS_PER_ROW * PANEL_W, strip_w)
    strips_top = 34 + panel_rows * PANEL_H + 24
    height = strips_top + 22 + len(names) * (cell + 8) + 10
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    font, title_font = _font(12), _font(14)
    draw.text((10, 8), report.title, fill="black", font=title_font)

    for index, key in enumerate(keys):
        row, column = divmod(index, PANELS_PER_ROW)
        series = {name: [(r["level"], r.get(key)) for r in report.rows[name]] for name in names}
        _panel(draw, column * PANEL_W, 34 + row * PANEL_H, report.labels[key], series, colours, font)
    legend_row, legend_column = divmod(len(keys), PANELS_PER_ROW)
    legend_left, legend_top = legend_column * PANEL_W + 30, 34 + legend_row * PANEL_H + 40
    for index, name in enumerate(names):
        y = legend_top + index * 22
        draw.line([(legend_left, y + 7), (legend_left + 28, y + 7)], fill=colours[name], width=3)
        draw.text((legend_left + 36, y), name, fill="black", font=font)

    draw.text((10, strips_top - 18), f"examples (first {IMAGES_PER_LEVEL} measured images) at each level:", fill="black", font=font)
    for column, level in enumerate(report.levels):
        left = STRIP_LABEL_W + column * (IMAGES_PER_LEVEL * cell + LEVEL_GAP)
        draw.text((left + IMAGES_PER_LEVEL * cell / 2, strips_top), f"level {level:g}", fill="black", font=font, anchor="ma")
    for row, name in enumerate(names):
        top = strips_top + 22 + row * (cell + 8)
        draw.text((10, top + cell / 2), name, fill=colours[name], font=font, anchor="lm")
        for column, batch in enumerate(report.examples[name]):
            left = STRIP_LABEL_W + column * (IMAGES_PER_LEVEL * cell + LEVEL_GAP)
            for index in range(min(IMAGES_PER_LEVEL, len(batch))):
                pixels = batch[index].permute(1, 2, 0).numpy()
                image = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels.astype(np.uint8))
                canvas.paste(image.convert("RGB").resize((cell, cell), Image.NEAREST), (left + index * cell, top))

    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())
    return path


# ---------------------------------------------------------------- the truncation sweep

SWEEP_PAIRS = (("is_mean", "fid", "FID against IS"), ("recall", "precision", "precision against recall"))
SWEEP_PANEL_W, SWEEP_PANEL_H, SWEEP_PANELS_PER_ROW, SWEEP_TITLE_H = 380, 300, 3, 34
SWEEP_EXAMPLES, SWEEP_CELL, SWEEP_STRIP_LABEL_W = 8, 48, 90


def sweep_panels(report) -> list[tuple[Optional[str], str, str]]:
    """(x key or None for the truncation value itself, y key, title) of each panel: the two pairs of
    BigGAN's figure 2 where both numbers were measured, then every other main number against the value."""
    keys = set(report.shown_keys())
    panels, paired = [], set()
    for x, y, title in SWEEP_PAIRS:
        if {x, y} <= keys:
            panels.append((x, y, title))
            paired |= {x, y}
    for key in report.shown_keys():
        if key not in paired:
            panels.append((None, key, f"{report.labels[key].split(' (')[0]} against {report.symbol}"))
    return panels


def sweep_figure_size(report) -> tuple[int, int]:
    count = len(sweep_panels(report))
    columns, rows = min(count, SWEEP_PANELS_PER_ROW), math.ceil(count / SWEEP_PANELS_PER_ROW)
    width = max(columns * SWEEP_PANEL_W, SWEEP_STRIP_LABEL_W + SWEEP_EXAMPLES * SWEEP_CELL + 10)
    strips = len(report.values) * (SWEEP_CELL + 6) + 30 if report.examples else 0
    return width, SWEEP_TITLE_H + rows * SWEEP_PANEL_H + strips


def _tick_text(tick: float, ticks: list[float]) -> str:
    """A tick with as many decimals as the tick step needs (1.0002 and 1.0004 stay apart)."""
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
    decimals = next((d for d in range(12) if abs(round(step, d) - step) <= 1e-6 * step), 12)
    return f"{tick:.{decimals}f}"


def _xy_panel(draw, left: int, top: int, title: str, x_label: str, y_label: str, points, categories, font) -> None:
    """Points (x, y, text) joined in order; `categories` (tick texts) makes x categorical (0, 1, 2, …)."""
    x0, x1 = left + MARGIN_L + 10, left + SWEEP_PANEL_W - MARGIN_R - 14
    y0, y1 = top + SWEEP_PANEL_H - MARGIN_B - 8, top + MARGIN_T + 20
    finite = [(x, y, text) for x, y, text in points if y is not None and math.isfinite(y) and math.isfinite(x)]
    y_ticks = _ticks(min((y for _, y, _ in finite), default=0.0), max((y for _, y, _ in finite), default=1.0))
    if categories is not None:
        x_ticks = list(range(len(categories)))
        x_lo, x_hi = -0.5, len(categories) - 0.5
    else:
        x_ticks = _ticks(min((x for x, _, _ in finite), default=0.0), max((x for x, _, _ in finite), default=1.0))
        x_lo, x_hi = x_ticks[0], x_ticks[-1]

    def px(x: float, y: float) -> tuple[float, float]:
        return (x0 + (x - x_lo) / (x_hi - x_lo) * (x1 - x0),
                y0 - (y - y_ticks[0]) / (y_ticks[-1] - y_ticks[0]) * (y0 - y1))

    for tick in y_ticks:
        _, y = px(x_lo, tick)
        draw.line([(x0, y), (x1, y)], fill=(232, 232, 232))
        draw.text((x0 - 6, y), _tick_text(tick, y_ticks), fill="black", font=font, anchor="rm")
    for index, tick in enumerate(x_ticks):
        x, _ = px(tick, y_ticks[0])
        draw.line([(x, y0), (x, y0 + 3)], fill="black")
        text = categories[index] if categories is not None else _tick_text(tick, x_ticks)
        draw.text((x, y0 + 5), text, fill="black", font=font, anchor="ma")
    draw.rectangle([x0, y1, x1, y0], outline="black")
    draw.text((left + SWEEP_PANEL_W / 2, top + 6), title, fill="black", font=font, anchor="ma")
    draw.text(((x0 + x1) / 2, y0 + 20), x_label, fill=(90, 90, 90), font=font, anchor="ma")
    draw.text((x0 - 40, y1 - 20), y_label, fill=(90, 90, 90), font=font)
    at = [px(x, y) + (text,) for x, y, text in finite]
    if len(at) > 1:
        draw.line([(x, y) for x, y, _ in at], fill=PALETTE[0], width=2)
    for x, y, text in at:
        draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=PALETTE[1])
        draw.text((x + 6, y - 6), text, fill="black", font=font, anchor="lb")


def sweep_figure(report, path: Path) -> Path:
    """The truncation sweep's picture: FID against IS and precision against recall, each point labelled with its
    truncation value (BigGAN's figure 2), other numbers against the value, and example images per value."""
    import io

    import numpy as np
    from PIL import Image, ImageDraw

    from gancli.checkpoint import atomic_write_bytes

    width, height = sweep_figure_size(report)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    font, title_font = _font(12), _font(14)
    draw.text((10, 8), report.title, fill="black", font=title_font)
    # the line runs from the strongest truncation to none: ascending values, untruncated last
    order = sorted(range(len(report.values)), key=lambda i: (report.values[i] is None, report.values[i] or 0.0))
    value_texts = report.value_texts()
    texts = [f"{report.symbol}={value_texts[i]}" for i in order]
    for index, (x_key, y_key, title) in enumerate(sweep_panels(report)):
        row, column = divmod(index, SWEEP_PANELS_PER_ROW)
        left, top = column * SWEEP_PANEL_W, SWEEP_TITLE_H + row * SWEEP_PANEL_H
        y_label = report.labels[y_key].split(" (")[0]
        rows = [report.rows[i] for i in order]
        if x_key is None:
            points = [(position, row_.get(y_key), "") for position, row_ in enumerate(rows)]
            _xy_panel(draw, left, top, title, f"truncation {report.symbol}", y_label, points,
                      [value_texts[i] for i in order], font)
        else:
            points = [(row_.get(x_key), row_.get(y_key), text) for row_, text in zip(rows, texts)]
            points = [(x, y, text) for x, y, text in points if x is not None]
            _xy_panel(draw, left, top, title, report.labels[x_key].split(" (")[0], y_label, points, None, font)
    if report.examples:
        top = height - len(report.values) * (SWEEP_CELL + 6) - 26
        draw.text((10, top), f"the first {SWEEP_EXAMPLES} measured images at each value (same latents):", fill="black", font=font)
        for line, i in enumerate(order):
            y = top + 20 + line * (SWEEP_CELL + 6)
            draw.text((10, y + SWEEP_CELL / 2), texts[line], fill="black", font=font, anchor="lm")
            batch = report.examples[i]
            for column in range(min(SWEEP_EXAMPLES, len(batch))):
                pixels = batch[column].permute(1, 2, 0).numpy().astype(np.uint8)
                image = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
                canvas.paste(image.convert("RGB").resize((SWEEP_CELL, SWEEP_CELL), Image.NEAREST),
                             (SWEEP_STRIP_LABEL_W + column * SWEEP_CELL, y))
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())
    return path
