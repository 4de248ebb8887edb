"""Markdown tables, and refreshing benchmarks/RESULTS.md in place.

RESULTS.md keeps hand-written prose outside generated blocks; each run replaces its own block
(``<!-- bench:NAME -->`` … ``<!-- /bench:NAME -->``) and appends one line to the history table.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Sequence

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HISTORY_HEADER = "| date (UTC) | command | CPU | cores | torch | load avg | DCGAN 64×64 gancli/plain fp32 |\n|---|---|---|---|---|---|---|"
HISTORY_TITLE = "## Run history"


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(lines)


def fmt(value: float, digits: int = 1) -> str:
    if value is None or value != value:
        return "n/a"
    if 0 < abs(value) < 1:  # minutes-per-step cases: two significant digits rather than "0.1"
        return f"{value:.2g}"
    return f"{value:.{digits}f}"


def refresh_block(text: str, name: str, body: str) -> str:
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{begin}\n{body.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        return pattern.sub(lambda _: block, text)
    if HISTORY_TITLE in text:
        head, tail = text.split(HISTORY_TITLE, 1)
        return head.rstrip() + "\n\n" + block + "\n\n" + HISTORY_TITLE + tail
    return text.rstrip() + "\n\n" + block + "\n"


def append_history(text: str, row: str) -> str:
    if HISTORY_TITLE not in text:
        text = text.rstrip() + f"\n\n{HISTORY_TITLE}\n\n{HISTORY_HEADER}\n"
    return text.rstrip() + "\n" + row + "\n"


def update_results(blocks: dict[str, str], history_row: str, path: Path = RESULTS) -> Path:
    text = path.read_text(encoding="utf-8") if path.exists() else "# gancli benchmark results\n"
    for name, body in blocks.items():
        text = refresh_block(text, name, body)
    text = append_history(text, history_row)
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
