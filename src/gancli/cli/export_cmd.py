"""gancli export CKPT --format hf|safetensors|onnx|torchscript"""
from pathlib import Path
from typing import List, Optional

import typer

from gancli.cli._common import handle_errors


@handle_errors
def export_command(
    checkpoint: Path = typer.Argument(..., help="A gancli .safetensors checkpoint, an exported model folder, or a hub id owner/name."),
    fmt: str = typer.Option("safetensors", "--format", "-f", help="hf (a Hugging Face style model folder: model.safetensors, config.json, README.md model card, samples.png), safetensors (generator only, still loadable by gancli), torchscript or onnx (checked against PyTorch after writing)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (hf) or file; must not exist (default: beside the checkpoint, CKPT-hf/ or CKPT-generator.EXT)."),
    raw: bool = typer.Option(False, "--raw", help="Export the trained generator instead of its EMA copy (same as --no-ema)."),
    ema: Optional[bool] = typer.Option(None, "--ema/--no-ema", help="Export the EMA generator (default: when present)."),
    dtype: str = typer.Option("fp32", "--dtype", help="hf and safetensors: fp32, fp16 or bf16 weights (torchscript and onnx are fp32)."),
    truncation: Optional[float] = typer.Option(None, "--truncation", "-t", help="torchscript/onnx of W-space models: ψ fixed into the graph (default 1: none)."),
    noise_mode: Optional[str] = typer.Option(None, "--noise-mode", help="torchscript/onnx of W-space models: const (default, the checkpoint's fixed noise) or none."),
    license: Optional[str] = typer.Option(None, "--license", help="hf: the model card's license identifier, e.g. apache-2.0 (default: unknown)."),
    repo_id: Optional[str] = typer.Option(None, "--repo-id", help="hf: the hub id owner/name the folder will have; the card's usage lines use it."),
    eval_report: Optional[List[Path]] = typer.Option(None, "--eval-report", help="hf: a 'gancli eval --out' JSON of this checkpoint for the card (repeatable; reports in the run folder are found by themselves)."),
) -> None:
    """Export the generator for use outside training: a model folder for the hub, or a checked TorchScript/ONNX graph."""
    from gancli.errors import GancliError
    from gancli.export import FORMATS, export

    if fmt not in FORMATS:
        raise GancliError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if raw and ema is True:
        raise GancliError("--raw exports the trained weights; drop --ema")
    result = export(
        checkpoint, fmt, out, ema=False if raw else ema, dtype=dtype, truncation=truncation, noise_mode=noise_mode,
        license=license, repo_id=repo_id, eval_reports=eval_report or [], log=lambda line: typer.echo(line, err=True),
    )
    for note in result.notes:
        typer.echo(f"note: {note}", err=True)
    what = {"hf": "model folder", "safetensors": "safetensors generator"}.get(fmt, f"{fmt} generator")
    checked = "" if result.max_difference is None or fmt == "hf" else (
        f" (max |{fmt} − PyTorch| = {result.max_difference:.3g} on {result.compared})")
    typer.echo(f"exported the {what} to {result.path}{checked}", err=True)
