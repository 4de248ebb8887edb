"""`gancli eval CKPT --truncation-sweep 0.25,0.5,0.75,1`: the quality–variety trade-off of one generator
(Brock et al. 2019, BigGAN, figure 2: FID against IS, and precision against recall, as truncation varies).

Every value is measured with the same latents (--seed), the same reference examples and features, and the
same metrics; the report has one row per value and the protocol they share. For a W-space generator the
values are ψ (w' = w_avg + ψ(w − w_avg)), for a z generator T (coordinates with |z_i| > T are redrawn);
"none" measures the untruncated generator.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from gancli.errors import GancliError
from gancli.evaluation.report import format_number

REPORT_FORMAT = "gancli-truncation-sweep/1"
DEFAULT_SWEEP_METRICS = ("fid", "is", "pr", "class-acc")  # class-acc only where the model and extractor allow it
SHOWN = ("fid", "is_mean", "precision", "recall", "class_acc", "intra_fid", "kid_mean", "density", "coverage")
UNTRUNCATED = "none"


@dataclass
class SweepReport:
    values: list[Optional[float]]  # None: untruncated
    symbol: str  # "ψ" or "T"
    rows: list[dict[str, Any]]  # one per value: truncation, and every result
    labels: dict[str, str]
    protocol: dict[str, Any]
    caveats: list[str] = field(default_factory=list)
    classification: dict[str, Any] = field(default_factory=dict)
    floors: dict[str, dict] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)
    title: str = ""
    examples: list[Any] = field(default_factory=list)  # per value: the first measured images (uint8), not in the JSON

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT, "title": self.title, "truncation_symbol": self.symbol, "values": self.values,
            "results": self.rows, "labels": self.labels, "floors": self.floors, "protocol": self.protocol,
            "classification": self.classification, "caveats": self.caveats, "timings_s": self.timings_s,
        }

    def to_json(self) -> str:
        from gancli.evaluation.report import _finite_or_null

        return json.dumps(_finite_or_null(self.to_dict()), indent=2, ensure_ascii=False) + "\n"

    def write_json(self, path: str | Path) -> Path:
        from gancli.checkpoint import atomic_write_text

        target = Path(path).expanduser()
        atomic_write_text(target, self.to_json())
        return target

    def write_png(self, path: str | Path) -> Path:
        from gancli.evaluation.charts import sweep_figure

        return sweep_figure(self, Path(path).expanduser())

    def shown_keys(self) -> list[str]:
        return [key for key in SHOWN if key in self.labels]

    def value_texts(self) -> list[str]:
        """Each truncation value as the report writes it ("none" for no truncation)."""
        return [describe_value(value) for value in self.values]

    def plain_text(self) -> str:
        """A row per truncation value, a column per main number (per-class values are in the JSON)."""
        keys = self.shown_keys()
        header = [self.symbol] + [self.labels[key].split(" (")[0] for key in keys]
        table = [header] + [[describe_value(row["truncation"])] + [format_number(row.get(key)) for key in keys] for row in self.rows]
        widths = [max(len(line[column]) for line in table) for column in range(len(header))]
        lines = [self.title] if self.title else []
        lines += ["  ".join(cell.rjust(width) for cell, width in zip(line, widths)) for line in table]
        lines += [f"note: {caveat}" for caveat in self.caveats]
        return "\n".join(lines) + "\n"


def describe_value(value: Optional[float]) -> str:
    return UNTRUNCATED if value is None else f"{value:g}"


def parse_sweep(text: str) -> list[Optional[float]]:
    """"0.25,0.5,1,none" → [0.25, 0.5, 1.0, None]; one clear line for anything else."""
    values: list[Optional[float]] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        if part.lower() == UNTRUNCATED:
            values.append(None)
            continue
        try:
            values.append(float(part))
        except ValueError:
            raise GancliError(f"--truncation-sweep takes comma-separated numbers (or none), e.g. 0.25,0.5,1; got {part!r}") from None
    if not values:
        raise GancliError("--truncation-sweep needs at least one value, e.g. 0.25,0.5,1")
    if len(set(values)) != len(values):
        raise GancliError(f"--truncation-sweep lists a value twice: {text}")
    return values


def truncation_sweep(
    source: str,
    values: str | Sequence[Optional[float]],
    *,
    data: Optional[str] = None,
    metrics: Optional[str | Sequence[str]] = None,
    num_samples: Optional[int] = None,
    split: str = "test",
    seed: int = 0,
    ema: Optional[bool] = None,
    bn_mode: Optional[str] = None,
    standing_stats: Optional[int] = None,
    extractor: Optional[str] = None,
    inception_weights: Optional[str] = None,
    use_cache: bool = True,
    cache_dir: Optional[str | Path] = None,
    device: Optional[str] = None,
    allow_download: Optional[bool] = None,
    log: Optional[Callable[[str], None]] = None,
) -> SweepReport:
    """Measure checkpoint `source` at each truncation value; arguments as for `evaluate`. Default metrics:
    fid, is, pr, and class-acc for a conditional model whose extractor has the data's classes."""
    from gancli.evaluation.inputs import is_checkpoint
    from gancli.evaluation.generation import truncation_space
    from gancli.evaluation.run import measure, prepare

    chosen_values = parse_sweep(values) if isinstance(values, str) else list(values)
    if not is_checkpoint(source):
        raise GancliError(f"--truncation-sweep applies to checkpoints; {source!r} is data (real-vs-real)")
    plan = prepare(
        source, data=data, metrics=metrics, num_samples=num_samples, split=split, source_split=None, seed=seed,
        truncations=chosen_values, ema=ema, bn_mode=bn_mode, standing_stats=standing_stats, extractor=extractor,
        inception_weights=inception_weights, use_cache=use_cache, cache_dir=cache_dir, probe=False, probe_train=1,
        device=device, allow_download=allow_download, log=log, default_metrics=DEFAULT_SWEEP_METRICS,
    )
    say = plan.say
    space = truncation_space(plan.measured.pipe)
    reports, rows, timings = [], [], {}
    for value in chosen_values:
        clock = time.perf_counter()
        say(f"truncation {space['symbol']} = {describe_value(value)}")
        report = measure(plan, value)
        reports.append(report)
        rows.append({"truncation": value, **report.results})
        timings[f"{space['symbol']}={describe_value(value)}_s"] = round(time.perf_counter() - clock, 3)
    first = reports[0]
    protocol = dict(first.protocol)
    protocol["truncation"] = {"values": chosen_values, **space, "untruncated": f"{UNTRUNCATED!r} in values: no truncation"}
    protocol["experiment"] = ("Brock et al. 2019 (BigGAN), figure 2: the same latents and reference measured at each "
                              "truncation value")
    differing = [describe_value(value) for value, report in zip(chosen_values, reports)
                 if report.protocol["metrics"] != first.protocol["metrics"]]
    if differing:  # the metrics' effective parameters are the same at every value unless a metric adapts to its data
        for row, report in zip(rows, reports):
            row["metric_parameters"] = report.protocol["metrics"]
    caveats = list(dict.fromkeys(caveat for report in reports for caveat in report.caveats))
    title = first.title + f"; truncation sweep {space['symbol']} = {', '.join(describe_value(v) for v in chosen_values)}"
    return SweepReport(
        values=chosen_values, symbol=space["symbol"], rows=rows, labels=first.labels, protocol=protocol, caveats=caveats,
        classification=first.classification, floors=first.floors, timings_s={**timings, "total_s": round(time.perf_counter() - plan.started, 3)},
        title=title, examples=[report.examples for report in reports] if first.examples is not None else [],
    )
