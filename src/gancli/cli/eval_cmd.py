"""gancli eval SOURCE --data D --metrics ...  |  gancli eval train-extractor --data D --out FILE"""
from pathlib import Path
from typing import Optional

import typer
from typer import _click as click
from typer.core import TyperGroup

from gancli.cli._common import handle_errors, writable_output
from gancli.errors import GancliError

MEASURE = "measure"


class _SourceOrCommand(TyperGroup):
    """`gancli eval SOURCE ...` runs the `measure` command; a known command name runs that command."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [MEASURE, *args]
        return super().parse_args(ctx, args)

    def format_help(self, ctx, formatter) -> None:
        # One page for both uses: the SOURCE form with all its options, then the commands.
        measure = self.commands[MEASURE]
        formatter.write_usage(ctx.command_path, "SOURCE [OPTIONS]")
        formatter.write_usage(ctx.command_path, "train-extractor --data D --out FILE [OPTIONS]", prefix="   or: ")
        self.format_help_text(ctx, formatter)
        measure_ctx = click.Context(measure, info_name=ctx.info_name, parent=ctx.parent)
        rows = [record for param in measure.get_params(measure_ctx) if (record := param.get_help_record(measure_ctx))]
        with formatter.section("Arguments and options of gancli eval SOURCE"):
            formatter.write_dl(rows)
        self.format_commands(ctx, formatter)


eval_app = typer.Typer(
    cls=_SourceOrCommand,
    no_args_is_help=True,
    rich_markup_mode=None,
    help=(
        "Measure a checkpoint's samples, or a dataset (real-vs-real floors), against reference data: "
        "FID, KID, IS, precision/recall, density/coverage (images; features of --extractor), class accuracy and "
        "intra-FID (conditional models), mode coverage "
        "and Parzen log-likelihood (2-D points); a semi-supervised discriminator's accuracy, and a linear "
        "probe on D's features with --probe. Every number is printed with its protocol (--out writes it as "
        "JSON). 'gancli eval train-extractor' trains the small domain classifier that --extractor PATH uses "
        "when the Inception weights are not at hand; its numbers are labelled with its name and hash, never "
        "as Inception FID. Examples: gancli eval run/checkpoints/last.safetensors --extractor fmnist.safetensors; "
        "gancli eval fashion-mnist --split-source train --split test --extractor fmnist.safetensors; "
        "gancli eval ring/checkpoints/last.safetensors --data ring8; gancli eval fashion-mnist --disturb all --extractor fmnist.safetensors -n 5000 --out disturb.json (the FID paper's disturbance experiment, with disturb.png); "
        "gancli eval cond/checkpoints/last.safetensors --metrics class-acc,intra-fid,fid --extractor fmnist.safetensors (conditional models); "
        "gancli eval CKPT --truncation-sweep 0.5,1,1.5,2 --extractor fmnist.safetensors --out sweep.json (with sweep.png)."
    ),
)


@eval_app.command(MEASURE, help="Measure SOURCE (the default command: 'gancli eval SOURCE' is 'gancli eval measure SOURCE').")
@handle_errors
def measure_command(
    source: str = typer.Argument(..., help="A gancli checkpoint (.safetensors), an exported model folder or hf://owner/name, or a data source (alias, folder, .npz, toy, hub dataset id) for real-vs-real floors."),
    data: Optional[str] = typer.Option(None, "--data", "-d", help="Reference data (default: a checkpoint's training data; for a data SOURCE, SOURCE itself)."),
    metrics: Optional[str] = typer.Option(None, "--metrics", "-m", help="Comma-separated: fid,kid,is,pr,dc,parzen (images), class-acc,intra-fid (conditional models), modes,parzen (2-D points). Default: fid,kid,pr,dc,is for images (fid,is,pr and class-acc with --truncation-sweep); modes,parzen for points."),
    num_samples: Optional[int] = typer.Option(None, "--num-samples", "-n", help="Measured samples, and reference ones when the data has as many (default: 10000 images, 2500 points)."),
    split: str = typer.Option("test", "--split", help="Split of the reference data: train or test."),
    split_source: Optional[str] = typer.Option(None, "--split-source", help="Split of a data SOURCE: train (default) or test."),
    seed: int = typer.Option(0, "--seed", help="Seed of the latents (checkpoint) or of the subset (data SOURCE)."),
    truncation: Optional[float] = typer.Option(None, "--truncation", "-t", help="Checkpoints: z models redraw |z_i| > T (T > 0); W-space models use ψ (w_avg + ψ(w − w_avg), ψ ≥ 0)."),
    truncation_sweep: Optional[str] = typer.Option(None, "--truncation-sweep", help="Checkpoints: measure at each comma-separated truncation value (none: untruncated) into one report; with --out, the curve (FID against IS, precision against recall) as a PNG beside the JSON."),
    ema: Optional[bool] = typer.Option(None, "--ema/--no-ema", help="Measure the EMA generator (default: when the checkpoint has one)."),
    bn_mode: Optional[str] = typer.Option(None, "--bn-mode", help="Checkpoints: BatchNorm normalises with its running statistics (eval mode; the default) or with batch statistics (batch). Recorded in the protocol."),
    standing_stats: Optional[int] = typer.Option(None, "--standing-stats", help="Checkpoints: re-estimate the generator's BatchNorm statistics from N forward passes before sampling (BigGAN); the file is unchanged."),
    extractor: Optional[str] = typer.Option(None, "--extractor", "-e", help="'inception' (the default; needs its weights file) or the path of an extractor from 'gancli eval train-extractor'."),
    inception_weights: Optional[Path] = typer.Option(None, "--inception-weights", help="Path of pt_inception-2015-12-05-6726825d.pth (default: the torch hub cache)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Recompute the reference features instead of using (and filling) the cache."),
    probe: bool = typer.Option(False, "--probe", help="Also fit a linear classifier on frozen D features of labelled train data; report its test accuracy."),
    probe_train: int = typer.Option(10_000, "--probe-train", help="Labelled train examples for --probe (a seeded subset)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:1, ... (default: cuda if available)."),
    intra_fid_reference: str = typer.Option("matched", "--intra-fid-reference", help="intra-fid: compare each class's samples with as many real examples of it (matched) or with every real example of the class (all: Miyato & Koyama's protocol, 5000 samples per class against all real ones)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the results with their protocol as JSON."),
    disturb: Optional[str] = typer.Option(None, "--disturb", help="The FID paper's experiment on a data SOURCE: disturb its images with noise, blur, swirl, salt-and-pepper, rectangles, mix (comma-separated, or all) and measure each level against the clean --split."),
    levels: str = typer.Option("0,0.25,0.5,0.75,1", "--levels", help="Disturbance levels in [0, 1] (1 = the paper's strongest setting; 0, the clean images, is always measured)."),
    mix_with: Optional[str] = typer.Option(None, "--mix-with", help="Foreign images for --disturb mix (any --data source; default: rendered digits)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="With --disturb or --truncation-sweep: write the picture here (default: --out with .png)."),
) -> None:
    """Measure SOURCE against reference data."""
    import sys

    from gancli.evaluation import evaluate

    if out is not None:
        out = writable_output(out)
    if disturb is not None:
        _disturbance_command(
            source, disturb=disturb, levels=levels, data=data, split=split, split_source=split_source, metrics=metrics,
            num_samples=num_samples, seed=seed, extractor=extractor, inception_weights=inception_weights,
            mix_with=mix_with, no_cache=no_cache, device=device, out=out, plot=plot,
            checkpoint_only={"--truncation": truncation, "--truncation-sweep": truncation_sweep, "--ema/--no-ema": ema,
                             "--probe": probe or None, "--bn-mode": bn_mode, "--standing-stats": standing_stats},
        )
        return
    for flag, value in (("--levels", levels if levels != "0,0.25,0.5,0.75,1" else None), ("--mix-with", mix_with)):
        if value is not None:
            raise GancliError(f"{flag} belongs to --disturb; add --disturb KIND or drop {flag}")
    if truncation_sweep is not None:
        _sweep_command(
            source, values=truncation_sweep, data=data, metrics=metrics, num_samples=num_samples, split=split, seed=seed,
            ema=ema, bn_mode=bn_mode, standing_stats=standing_stats, extractor=extractor,
            inception_weights=inception_weights, no_cache=no_cache, device=device, out=out, plot=plot,
            refused={"--truncation": truncation, "--probe": probe or None, "--split-source": split_source},
        )
        return
    if plot is not None:
        raise GancliError("--plot belongs to --disturb and --truncation-sweep; add one of them or drop --plot")
    report = evaluate(
        source, data=data, metrics=metrics, num_samples=num_samples, split=split, source_split=split_source,
        seed=seed, truncation=truncation, ema=ema, bn_mode=bn_mode, standing_stats=standing_stats, extractor=extractor,
        inception_weights=str(inception_weights) if inception_weights is not None else None,
        use_cache=not no_cache, probe=probe, probe_train=probe_train, device=device,
        log=lambda message: typer.echo(message, err=True), intra_fid_reference=intra_fid_reference,
    )
    if sys.stdout.isatty():
        from rich.console import Console

        Console().print(report.rich_table())
    else:
        typer.echo(report.plain_text(), nl=False)
    if out is not None:
        report.write_json(out)
        typer.echo(f"wrote {out}", err=True)
    from gancli.run_evals import record_eval

    recorded = record_eval(report, warn=lambda message: typer.echo(message, err=True))
    if recorded is not None:
        typer.echo(f"added to {recorded} (gancli plot draws it against the step)", err=True)


def _sweep_command(source, *, values, data, metrics, num_samples, split, seed, ema, bn_mode, standing_stats, extractor,
                   inception_weights, no_cache, device, out, plot, refused) -> None:
    from gancli.evaluation.sweep import parse_sweep, truncation_sweep

    for flag, value in refused.items():
        if value is not None:
            why = "sets one truncation; the sweep sets each" if flag == "--truncation" else "does not change with the truncation"
            raise GancliError(f"{flag} {why}: drop {flag} or --truncation-sweep")
    chosen = parse_sweep(values)
    if plot is not None:
        plot = writable_output(plot)
    elif out is not None:
        plot = out.with_suffix(".png")
    report = truncation_sweep(
        source, chosen, data=data, metrics=metrics, num_samples=num_samples, split=split, seed=seed, ema=ema,
        bn_mode=bn_mode, standing_stats=standing_stats, extractor=extractor,
        inception_weights=str(inception_weights) if inception_weights is not None else None, use_cache=not no_cache,
        device=device, log=lambda message: typer.echo(message, err=True),
    )
    typer.echo(report.plain_text(), nl=False)
    if out is not None:
        report.write_json(out)
        typer.echo(f"wrote {out}", err=True)
    if plot is not None:
        report.write_png(plot)
        typer.echo(f"wrote {plot}", err=True)


def _disturbance_command(source, *, disturb, levels, data, split, split_source, metrics, num_samples, seed, extractor,
                         inception_weights, mix_with, no_cache, device, out, plot, checkpoint_only) -> None:
    from gancli.evaluation.disturbance_run import disturbance_experiment

    for flag, value in checkpoint_only.items():
        if value is not None:
            raise GancliError(f"{flag} applies to checkpoints; --disturb measures disturbed real images")
    if plot is not None:
        plot = writable_output(plot)
    elif out is not None:
        plot = out.with_suffix(".png")
    report = disturbance_experiment(
        source, disturbances=disturb, levels=levels, data=data, split=split, source_split=split_source,
        num_samples=num_samples, metrics=metrics, seed=seed, extractor=extractor,
        inception_weights=str(inception_weights) if inception_weights is not None else None, mix_with=mix_with,
        use_cache=not no_cache, device=device, log=lambda message: typer.echo(message, err=True),
    )
    typer.echo(report.plain_text(), nl=False)
    if out is not None:
        report.write_json(out)
        typer.echo(f"wrote {out}", err=True)
    if plot is not None:
        report.write_png(plot)
        typer.echo(f"wrote {plot}", err=True)


@eval_app.command("train-extractor")
@handle_errors
def train_extractor_command(
    data: str = typer.Option(..., "--data", "-d", help="Labelled image data (alias, folder with class sub-folders, IDX, .npz with labels)."),
    out: Path = typer.Option(..., "--out", "-o", help="The extractor file to write (.safetensors)."),
    steps: int = typer.Option(1200, "--steps", help="Training steps (1200 reach about 91% test accuracy on Fashion-MNIST)."),
    batch: int = typer.Option(128, "--batch", help="Images per step."),
    seed: int = typer.Option(0, "--seed", help="Same data, settings and seed: same weights."),
    resolution: int = typer.Option(32, "--resolution", help="Input side of the classifier (a multiple of 8); images are resized to it."),
    name: Optional[str] = typer.Option(None, "--name", help="The extractor's name in every result (default: DATA-cnn)."),
) -> None:
    """Train a small classifier whose features and logits --extractor PATH uses (a few CPU minutes)."""
    from gancli.evaluation import train_domain_extractor

    out = writable_output(out)
    trained = train_domain_extractor(
        data, out, steps=steps, batch_size=batch, seed=seed, resolution=resolution, name=name,
        log=lambda message: typer.echo(message, err=True),
    )
    typer.echo(
        f"wrote {trained.path}: extractor {trained.name!r}, test accuracy {trained.test_accuracy:.4f} on "
        f"{trained.test_count} images, sha256 {trained.sha256}, {trained.seconds:.0f} s"
    )
