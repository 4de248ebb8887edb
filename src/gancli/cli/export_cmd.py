"""gancli export CKPT --format safetensors|onnx|torchscript"""
from pathlib import Path
from typing import Optional

import typer

from gancli.cli._common import handle_errors, writable_output


@handle_errors
def export_command(
    checkpoint: Path = typer.Argument(..., help="A gancli .safetensors checkpoint."),
    fmt: str = typer.Option("safetensors", "--format", "-f", help="safetensors (generator only, still loadable by gancli), torchscript or onnx."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output file (default: CKPT-generator.EXT beside the checkpoint)."),
    ema: Optional[bool] = typer.Option(None, "--ema/--no-ema", help="Export the EMA generator (default: when present)."),
) -> None:
    """Export the generator for use outside training."""
    from gancli import checkpoint as ckpt_io
    from gancli.export import FORMATS, export
    from gancli.errors import GancliError

    if fmt not in FORMATS:
        raise GancliError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    ckpt_io.read(checkpoint)
    if out is not None:
        out = writable_output(out)
    path = export(checkpoint, fmt, out, ema=ema)
    typer.echo(f"exported {fmt} generator to {path}", err=True)
