"""gancli eval SOURCE --data D --metrics ..."""
from pathlib import Path
from typing import Optional

import typer

from gancli.cli._common import handle_errors


@handle_errors
def eval_command(
    source: str = typer.Argument(..., help="A gancli checkpoint, or a data source to measure real-vs-real floors."),
    data: Optional[str] = typer.Option(None, "--data", "-d", help="Reference data (default: the checkpoint's training data)."),
    metrics: Optional[str] = typer.Option(None, "--metrics", "-m", help="Comma-separated metrics (images: fid,is,kid,pr,dc,parzen; points: modes,parzen)."),
    num_samples: int = typer.Option(10_000, "--num-samples", "-n", help="Generated samples (and real ones, when the data has as many)."),
    split: str = typer.Option("test", "--split", help="Split of the reference data."),
    seed: int = typer.Option(0, "--seed", help="Seed for generated samples and subsets."),
    truncation: Optional[float] = typer.Option(None, "--truncation", "-t", help="Sampling truncation."),
    ema: Optional[bool] = typer.Option(None, "--ema/--no-ema", help="Evaluate the EMA generator (default: when present)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the results with their protocol as JSON."),
) -> None:
    """Measure a generator (or a dataset) against reference data."""
    from gancli.evaluation import run_eval

    run_eval(source=source, data=data, metrics=metrics, num_samples=num_samples, split=split, seed=seed,
             truncation=truncation, ema=ema, out=out)
