"""Progress: a rich bar with live loss terms on a terminal, plain log lines otherwise.

Both show the images seen in kimg and the speed in sec/kimg (NVlabs' units for long runs)
besides the step and the time left.
"""
from __future__ import annotations

import sys
import time
from typing import Optional


def _format_terms(terms: dict[str, float]) -> str:
    return " ".join(f"{k} {v:.4g}" for k, v in terms.items())


def _format_duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s"


class Progress:
    def __init__(self, total: int, start: int, *, enabled: bool, title: str, images_seen: int = 0) -> None:
        self.total = total
        self.enabled = enabled
        self.title = title
        self._bar = None
        self._task = None
        self._start_time = time.perf_counter()
        self._start_step = start
        self._start_images = images_seen
        self._images = images_seen
        if enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = RichProgress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                TimeRemainingColumn(), TextColumn("{task.fields[speed]}"), TextColumn("{task.fields[terms]}"),
                console=Console(stderr=True), refresh_per_second=4,
            )
            self._bar.start()
            self._task = self._bar.add_task(title, total=total, completed=start, terms="", speed="")

    def speed(self, step: int) -> str:
        """'kimg 12.3, 45.6 sec/kimg, ETA 1h 02m' for the steps done since the start."""
        elapsed = time.perf_counter() - self._start_time
        images = self._images - self._start_images
        steps = step - self._start_step
        if images <= 0 or steps <= 0:
            return f"kimg {self._images / 1000:.1f}"
        sec_per_kimg = elapsed / (images / 1000.0)
        eta = elapsed / steps * (self.total - step)
        return f"kimg {self._images / 1000:.1f}, {sec_per_kimg:.1f} sec/kimg, ETA {_format_duration(eta)}"

    def update(self, step: int, terms: Optional[dict[str, float]] = None, *, images_seen: Optional[int] = None) -> None:
        if not self.enabled:
            return
        if images_seen is not None:
            self._images = images_seen
        if self._bar is not None:
            fields = {"terms": _format_terms(terms)} if terms else {}
            self._bar.update(self._task, completed=step, speed=self.speed(step), **fields)
        elif terms is not None:
            print(f"{self.title} step {step}/{self.total} ({self.speed(step)}) {_format_terms(terms)}",
                  file=sys.stderr, flush=True)

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


SPEED_PROBE_STEPS = 3  # iterations timed before estimating how long a CPU run takes


def warn_if_days(seconds: float, steps_done: int, steps_left: int, display) -> None:
    """One warning when the run, at the speed of its first steps, would take a day or more on the CPU."""
    estimate = seconds / steps_done * steps_left
    if estimate < 86400:
        return
    display.log(
        f"warning: at {seconds / steps_done:.1f} s per step on this CPU the remaining {steps_left} steps would take "
        f"about {estimate / 86400:.1f} days; train on a GPU, or use fewer --steps or a lower --resolution"
    )
    if not display.enabled:
        print(f"warning: this CPU run would take about {estimate / 86400:.1f} days ({seconds / steps_done:.1f} s "
              f"per step, {steps_left} steps left); train on a GPU, or use fewer --steps or a lower --resolution",
              file=sys.stderr)
