"""Progress: a rich bar with live loss terms on a terminal, plain log lines otherwise."""
from __future__ import annotations

import sys
import time
from typing import Optional


def _format_terms(terms: dict[str, float]) -> str:
    return " ".join(f"{k} {v:.4g}" for k, v in terms.items())


class Progress:
    def __init__(self, total: int, start: int, *, enabled: bool, title: str) -> None:
        self.total = total
        self.enabled = enabled
        self.title = title
        self._bar = None
        self._task = None
        self._start_time = time.perf_counter()
        self._start_step = start
        if enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = RichProgress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                TimeRemainingColumn(), TextColumn("{task.fields[terms]}"),
                console=Console(stderr=True), refresh_per_second=4,
            )
            self._bar.start()
            self._task = self._bar.add_task(title, total=total, completed=start, terms="")

    def update(self, step: int, terms: Optional[dict[str, float]] = None) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            fields = {"terms": _format_terms(terms)} if terms else {}
            self._bar.update(self._task, completed=step, **fields)
        elif terms is not None:
            elapsed = time.perf_counter() - self._start_time
            rate = (step - self._start_step) / elapsed if elapsed > 0 else 0.0
            print(f"{self.title} step {step}/{self.total} ({rate:.2f} it/s) {_format_terms(terms)}", file=sys.stderr, flush=True)

    def log(self, message: str) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.console.log(message)
        else:
            print(message, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
