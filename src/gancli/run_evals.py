"""RUN/evals.jsonl: the scores `gancli eval` measured of a run's checkpoints, for `gancli plot`'s FID-over-time panel.

A checkpoint inside a training run (RUN/checkpoints/*.safetensors beside RUN/metrics.jsonl) gets one
line per evaluation: its step and images seen, which generator, and every number with its label
(the label names the extractor, N and split, so scores of different protocols never share a curve).
The report's JSON (``--out``) stays the full record; this file is the run's index of it.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Optional

EVALS_FILE = "evals.jsonl"
PLOTTED = ("fid", "kid_mean", "intra_fid", "class_acc")  # the numbers drawn against the step, if measured


def run_of_checkpoint(checkpoint: str | Path) -> Optional[Path]:
    """The run directory holding ``checkpoint``, or None for a checkpoint outside a run."""
    path = Path(checkpoint)
    if path.parent.name != "checkpoints":
        return None
    run = path.parent.parent
    return run if (run / "metrics.jsonl").is_file() else None


def eval_line(report) -> Optional[dict[str, Any]]:
    """What evals.jsonl keeps of one report, or None when it did not score a checkpoint's step."""
    source = report.protocol.get("source", {})
    if source.get("kind") != "checkpoint" or not isinstance(source.get("step"), int):
        return None
    return {
        "step": source["step"],
        "images_seen": source.get("images_seen"),
        "generator": source.get("generator"),
        "truncation": report.protocol.get("truncation"),
        "checkpoint_sha256": source.get("checkpoint_sha256"),
        "results": {k: v for k, v in report.results.items() if isinstance(v, (int, float))},
        "labels": dict(report.labels),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def record_eval(report, *, warn: Callable[[str], None]) -> Optional[Path]:
    """Append ``report`` to its run's evals.jsonl; a run that cannot be written only costs a warning."""
    source = report.protocol.get("source", {})
    run = run_of_checkpoint(source.get("checkpoint", "")) if source.get("kind") == "checkpoint" else None
    line = eval_line(report) if run is not None else None
    if line is None:
        return None
    target = run / EVALS_FILE
    try:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line, ensure_ascii=False, allow_nan=False, default=str) + "\n")
    except (OSError, ValueError) as exc:
        warn(f"warning: could not add this score to {target} ({exc}); gancli plot will not show it")
        return None
    return target


def read_evals(run: str | Path) -> list[dict[str, Any]]:
    """The run's evaluation lines, a later measurement of the same step, generator and label replacing an earlier one."""
    path = Path(run) / EVALS_FILE
    if not path.is_file():
        return []
    latest: dict[tuple, dict] = {}
    for text in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(text)
        except json.JSONDecodeError:
            continue  # a line cut short by a kill
        if not isinstance(row, dict) or not isinstance(row.get("step"), int):
            continue
        latest[(row["step"], row.get("generator"), row.get("truncation"), json.dumps(row.get("labels"), sort_keys=True))] = row
    return sorted(latest.values(), key=lambda row: row["step"])


def score_series(rows: list[dict[str, Any]]) -> dict[str, tuple[str, list[tuple[int, float]]]]:
    """label (with the generator, and the truncation when set) -> (result key, [(step, value)]) per plotted number."""
    series: dict[str, tuple[str, list[tuple[int, float]]]] = {}
    for row in rows:
        for key in PLOTTED:
            value = row.get("results", {}).get(key)
            if not isinstance(value, (int, float)):
                continue
            label = row.get("labels", {}).get(key, key)
            extra = [row["generator"]] if row.get("generator") else []
            if row.get("truncation") is not None:
                extra.append(f"truncation {row['truncation']}")
            name = f"{label}, {', '.join(extra)}" if extra else label
            series.setdefault(name, (key, []))[1].append((row["step"], float(value)))
    return series
