"""An evaluation's numbers with their protocol: a JSON document and a table for people."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPORT_FORMAT = "gancli-eval/2"  # /2: floors, effective metric parameters, data identities

# value key -> the key holding its spread, shown as "value ± spread" on one row
SPREAD_OF = {"kid_mean": "kid_std", "is_mean": "is_std", "parzen_ll_mean": "parzen_ll_sem"}


@dataclass
class EvalReport:
    results: dict[str, float]  # flat named numbers, e.g. fid, kid_mean, precision, modes_captured
    labels: dict[str, str]  # how each number is shown; feature metrics name their extractor
    protocol: dict[str, Any]  # everything that determines the numbers
    classification: dict[str, Any] = field(default_factory=dict)
    caveats: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    title: str = ""
    floors: dict[str, dict] = field(default_factory=dict)  # result key -> measured real-vs-real floor that applies
    examples: Any = None  # the first measured images (uint8), for pictures; not part of the JSON

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT,
            "title": self.title,
            "results": self.results,
            "labels": self.labels,
            "floors": self.floors,
            "protocol": self.protocol,
            "classification": self.classification,
            "caveats": self.caveats,
            "timings_s": self.timings_s,
        }

    def to_json(self) -> str:
        # NaN and inf are not JSON; a metric without a value (no high-quality sample, ...) becomes null
        return json.dumps(_finite_or_null(self.to_dict()), indent=2, ensure_ascii=False) + "\n"

    def write_json(self, path: str | Path) -> Path:
        from gancli.checkpoint import atomic_write_text

        target = Path(path).expanduser()
        atomic_write_text(target, self.to_json())
        return target

    def rows(self) -> list[tuple[str, str]]:
        """(label, formatted value) per quantity; spreads join their value, modes show as 'k / K'."""
        hidden = set(SPREAD_OF.values()) | {"total_modes"}
        rows = []
        for key, value in self.results.items():
            if key in hidden:
                continue
            text = format_number(value)
            if key in SPREAD_OF and SPREAD_OF[key] in self.results:
                text += f" ± {format_number(self.results[SPREAD_OF[key]])}"
            if key == "modes_captured" and "total_modes" in self.results:
                text = f"{format_number(value)} / {format_number(self.results['total_modes'])}"
            if key in self.floors:
                text += f" ({self.floors[key]['text']})"
            rows.append((self.labels.get(key, key), text))
        return rows

    def plain_text(self) -> str:
        """The table as aligned text lines, for pipes and log files."""
        rows = self.rows()
        width = max((len(label) for label, _ in rows), default=0)
        lines = [self.title] if self.title else []
        lines += [f"{label.ljust(width)}  {text}" for label, text in rows]
        lines += [f"note: {caveat}" for caveat in self.caveats]
        return "\n".join(lines) + "\n"

    def rich_table(self):
        from rich.table import Table

        table = Table(title=self.title or None, title_justify="left")
        table.add_column("metric")
        table.add_column("value", justify="right")
        for label, text in self.rows():
            table.add_row(label, text)
        if self.caveats:
            table.caption = "\n".join(f"note: {caveat}" for caveat in self.caveats)
            table.caption_justify = "left"
        return table


def format_number(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if float(value).is_integer() and abs(value) < 1e9:
        return str(int(value))
    return f"{value:.5g}"


def _finite_or_null(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite_or_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(item) for item in value]
    return value
