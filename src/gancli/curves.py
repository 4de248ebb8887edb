"""Training curves as a picture: ``gancli plot RUN [RUN ...]`` and RUN/curves.png at each checkpoint.

From RUN/metrics.jsonl: every loss term (smoothed, the raw values faint), the learning rates and
img/s against the step, with thousands of images on a second axis; from RUN/evals.jsonl the scores
`gancli eval` measured of the run's checkpoints (FID, KID, class accuracy, intra-FID: one line per
protocol label). Several runs share one figure, one colour each. Needs matplotlib (``pip install 'gancli[plot]'``).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Sequence

from gancli.errors import GancliError

SMOOTHING = 0.9  # weight of the past in the exponential moving average drawn over the raw values


def have_matplotlib() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def smoothed(values: Sequence[float], weight: float = SMOOTHING) -> list[float]:
    """TensorBoard's debiased exponential moving average."""
    out, average, total = [], 0.0, 0.0
    for value in values:
        average = weight * average + (1 - weight) * value
        total = weight * total + (1 - weight)
        out.append(average / total)
    return out


def runs_metrics(runs: Sequence[Path]) -> dict[str, list[dict]]:
    from gancli.train.lab import read_metrics

    found = {}
    for run in runs:
        path = Path(run) / "metrics.jsonl"
        if not path.is_file():
            raise GancliError(f"{run} has no metrics.jsonl; pass a run directory written by gancli train")
        rows = read_metrics(path)
        if not rows:
            raise GancliError(f"{path} holds no metrics lines yet; plot again after the first --log-every steps")
        found[Path(run).name if len(runs) == 1 else str(run)] = rows
    return found


SCORES_TITLE = "scores recorded by gancli eval (RUN/evals.jsonl)"


def runs_scores(runs: Sequence[Path], names: Sequence[str]) -> dict[str, dict]:
    """run name -> score series (see gancli.run_evals.score_series), for the runs that have any."""
    from gancli.run_evals import read_evals, score_series

    found = {}
    for run, name in zip(runs, names):
        series = score_series(read_evals(run))
        if series:
            found[name] = series
    return found


def _draw_scores(axis, scores, colours, styles) -> None:
    """One line with markers per run and score label; class accuracy on a second axis on the right."""
    right = None
    for r, (name, series) in enumerate(scores.items()):
        for k, (label, (key, points)) in enumerate(series.items()):
            steps, values = zip(*points)
            target = axis
            if key == "class_acc":  # a share in [0, 1] beside distances in the tens
                right = right or axis.twinx()
                target = right
            colour = colours[(r if len(scores) > 1 else k) % len(colours)]
            text = f"{name}: {label}" if len(scores) > 1 else label
            target.plot(steps, values, marker="o", markersize=3, color=colour,
                        linestyle=styles[k % len(styles)] if len(scores) > 1 else "-", linewidth=1.4, label=text)
    if right is not None:
        right.legend(fontsize=7, loc="upper right")


def plot_runs(runs: Sequence[Path], out: Path) -> Path:
    """Write the figure of ``runs`` to ``out`` (PNG)."""
    if not have_matplotlib():
        raise GancliError("gancli plot needs matplotlib: pip install 'gancli[plot]'")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = runs_metrics(runs)
    terms = sorted({k for rows in metrics.values() for row in rows for k in row
                    if "/" in k and not k.startswith(("lr/", "augment/"))})
    panels = [("loss terms", terms), ("learning rate", ["lr/G", "lr/D"]), ("img/s", ["images_per_second"]),
              ("ADA p", ["augment/p"])]
    logged = {k for rows in metrics.values() for row in rows for k in row}
    panels = [(title, keys) for title, keys in panels if logged.intersection(keys)]
    scores = runs_scores(runs, list(metrics))
    if scores:
        panels.insert(1, (SCORES_TITLE, []))
    figure, axes = plt.subplots(len(panels), 1, figsize=(9, 3.2 * len(panels)), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    styles = ["-", "--", ":", "-."]
    for axis, (title, keys) in zip(axes[:, 0], panels):
        if title == SCORES_TITLE:
            _draw_scores(axis, scores, colours, styles)
        for r, (name, rows) in enumerate(metrics.items()):
            for k, key in enumerate(keys):
                points = [(row["step"], row[key]) for row in rows if isinstance(row.get(key), (int, float))]
                if not points:
                    continue
                steps, values = zip(*points)
                colour = colours[(r if len(metrics) > 1 else k) % len(colours)]
                label = f"{name}: {key}" if len(metrics) > 1 else key
                style = styles[k % len(styles)] if len(metrics) > 1 else "-"
                if title == "loss terms":
                    axis.plot(steps, values, color=colour, alpha=0.25, linewidth=0.8, linestyle=style)
                    values = smoothed(values)
                axis.plot(steps, values, color=colour, linestyle=style, linewidth=1.4, label=label)
        axis.set_title(title, fontsize=10, loc="left")
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
        if axis.lines:
            axis.legend(fontsize=7, loc="best", ncol=2)
        _kimg_axis(axis, metrics)
    figure.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=90)
    plt.close(figure)
    return out


def _kimg_axis(axis, metrics: dict[str, list[dict]]) -> None:
    """Thousands of images seen along the top, read off the first run's (step, images_seen) pairs."""
    rows = next(iter(metrics.values()))
    pairs = [(row["step"], row["images_seen"]) for row in rows if "images_seen" in row]
    if len(pairs) < 2:
        return
    import numpy as np

    steps, images = (np.array(v, dtype=float) for v in zip(*pairs))
    top = axis.secondary_xaxis(
        "top", functions=(lambda s: np.interp(s, steps, images) / 1000, lambda k: np.interp(k * 1000, images, steps)))
    top.set_xlabel("kimg", fontsize=8)
