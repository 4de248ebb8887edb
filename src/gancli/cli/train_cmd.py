"""gancli train FAMILY --data D ..."""
import os
from pathlib import Path
from typing import List, Optional

import typer

from gancli.cli._common import complete_family, complete_recipe, handle_errors


@handle_errors
def train_command(
    family: Optional[str] = typer.Argument(None, help="GAN family (see 'gancli plugins list'); optional with --recipe.", autocompletion=complete_family),
    data: Optional[str] = typer.Option(None, "--data", "-d", help="Image folder, IDX/npz file, HF dataset id, alias (fashion-mnist, mnist, cifar10, ffhq, celeba) or 2-D toy (ring8, grid25, spiral, moons)."),
    recipe: Optional[str] = typer.Option(None, "--recipe", "-r", help="Recipe name (see 'gancli recipes list') or path to a .toml file.", autocompletion=complete_recipe),
    overrides: List[str] = typer.Option([], "--set", "-s", help="Override a setting: key=value (dotted, e.g. train.ema=true, or a bare family field, e.g. lr=1e-4). Repeatable."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Generator updates to train for (in total, when resuming)."),
    batch: Optional[int] = typer.Option(None, "--batch", "-b", help="Batch size, summed over processes."),
    precision: Optional[str] = typer.Option(None, "--precision", help="no, bf16 or fp16 (fp16 needs a CUDA GPU)."),
    resolution: Optional[int] = typer.Option(None, "--resolution", help="Image side in pixels."),
    channels: Optional[int] = typer.Option(None, "--channels", help="1 or 3 (default: as stored)."),
    split: Optional[str] = typer.Option(None, "--split", help="train or test, for sources with splits."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed for weights, latents and data order."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory (default: runs/FAMILY-DATA)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint."),
    sample_every: Optional[int] = typer.Option(None, "--sample-every", help="Steps between sample grids."),
    checkpoint_every: Optional[int] = typer.Option(None, "--checkpoint-every", help="Steps between checkpoints."),
    log_every: Optional[int] = typer.Option(None, "--log-every", help="Steps between metrics.jsonl lines."),
    max_nonfinite: Optional[int] = typer.Option(None, "--max-nonfinite", help="Skip up to N steps with non-finite losses before stopping."),
    log_with: Optional[list[str]] = typer.Option(None, "--log-with", help="Experiment trackers, several allowed (repeat or comma-separate): tensorboard, wandb, mlflow, aim (each an extra: pip install 'gancli[tensorboard]'). metrics.jsonl is always written."),
    augment: Optional[str] = typer.Option(None, "--augment", help="Augment every image D sees: diffaugment (Zhao et al. 2020) or ada (Karras et al. 2020: p adjusted towards E[sign D(real)] = 0.6), for small datasets; none to turn it off."),
    print_config: bool = typer.Option(False, "--print-config", help="Print the resolved config as TOML and exit."),
) -> None:
    """Train a GAN family; writes config.toml, metrics.jsonl, samples/ and checkpoints/ into the run directory."""
    from gancli import config as cfg
    from gancli.errors import GancliError
    from gancli.train.rundir import RunDir, default_run_dir

    if steps is not None and steps <= 0:
        raise GancliError(f"--steps must be positive, got {steps}")
    if batch is not None and batch <= 0:
        raise GancliError(f"--batch must be positive, got {batch}")
    if augment is not None and augment not in ("none", "diffaugment", "ada"):
        raise GancliError(f"--augment must be none, diffaugment or ada, got {augment!r}")
    if precision is not None and precision not in ("no", "bf16", "fp16"):
        raise GancliError(f"--precision must be no, bf16 or fp16, got {precision!r}")
    base = None
    if resume:
        if out is None:
            raise GancliError("--resume needs --out RUN_DIR, the run to continue")
        RunDir(out).check_resumable()
        from gancli.train.resume import resume_tree

        base = resume_tree(RunDir(out).last)
    flags = {
        "data": {"source": data, "resolution": resolution, "channels": channels, "split": split},
        "train": {
            "steps": steps, "batch_size": batch, "precision": precision, "seed": seed,
            "sample_every": sample_every, "checkpoint_every": checkpoint_every, "log_every": log_every,
            "max_nonfinite": max_nonfinite, "augment": augment,
            "log_with": [name.strip() for names in log_with for name in names.split(",") if name.strip()]
            if log_with else None,
        },
    }
    run, family_config = cfg.resolve(family, recipe=recipe, base=base, flags=flags, overrides=list(overrides))
    if print_config:
        typer.echo(cfg.to_toml(run), nl=False)
        return
    if not run.data.source:
        raise GancliError("no data given; pass --data (e.g. --data fashion-mnist or --data path/to/images)")
    set_elsewhere = _recipe_sets_resolution(recipe) or any(o.split("=")[0].endswith("resolution") for o in overrides)
    notes = []
    if resolution is None and not resume and run.data.resolution and not set_elsewhere:
        notes.append(f"note: training at {run.data.resolution}×{run.data.resolution}, the {run.family} family's "
                     f"default resolution (--resolution to change)")
    if out is None:
        out = default_run_dir(run.family, Path(run.data.source).name or run.data.source)
    elif not resume:
        RunDir(out).check_new_run()

    from gancli.train.allocator import restart_with

    restart_with(run.train.allocator)  # before torch is imported; returns at once for "system"
    from gancli.train.loop import train

    result = train(run, family_config, out=out, resume=resume, notes=notes)
    if int(os.environ.get("RANK", "0")) != 0:
        return  # one process reports for all
    where = f"{result.last_checkpoint}"
    if result.stopped_by:
        typer.echo(
            f"stopped by {result.stopped_by} at step {result.step}; checkpoint saved: {where} "
            f"(continue with: gancli train --resume --out {result.run_dir})",
            err=True,
        )
        raise typer.Exit(130 if result.stopped_by == "SIGINT" else 143)
    typer.echo(
        f"trained {run.family} to step {result.step} ({result.images_per_second:.1f} img/s); checkpoint: {where}",
        err=True,
    )


def _recipe_sets_resolution(recipe) -> bool:
    if not recipe:
        return False
    from gancli.config import read_recipe

    return "resolution" in (read_recipe(recipe).get("data") or {})
