"""gancli plot RUN [RUN ...] [--out curves.png]: training curves from metrics.jsonl."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from gancli.cli._common import handle_errors, writable_output


@handle_errors
def plot_command(
    runs: list[Path] = typer.Argument(..., help="Run directories (several share one figure, one colour each)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="The PNG to write (default: RUN/curves.png for one run, curves.png for several)."),
) -> None:
    """Plot loss terms (smoothed, raw values faint), learning rates, img/s and the scores gancli eval recorded of the run's checkpoints (RUN/evals.jsonl) against steps and kimg."""
    from gancli.curves import plot_runs

    target = out if out is not None else (runs[0] / "curves.png" if len(runs) == 1 else Path("curves.png"))
    written = plot_runs(runs, writable_output(target))
    typer.echo(f"wrote {written}", err=True)
