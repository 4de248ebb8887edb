"""The training loop: one plain function over a family's phases (stylegan2-ada style).

Setup builds the family's GAN (at the checkpoint's growth phase when resuming), places it, makes
the EMA and the optimizers and restores state. Each iteration then runs the objective's phases
(gancli.train.step) and, after it, every cadence: growth, the metrics line, the sample grid and
the checkpoint, on a skipped step too. Before any process branches on something only it can see
(a non-finite loss, a stop signal, a failure) the processes agree on it
(gancli.train.distributed.Consensus), so all of them skip the same step or stop together, with
the failing process's message. Side outputs (gancli.train.outputs), checkpoint files
(gancli.train.checkpointing) and failure messages (gancli.train.failures) live apart.
"""
from __future__ import annotations

import os
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from gancli import checkpoint as ckpt_io
from gancli.config import RunConfig, to_toml
from gancli.errors import GancliError
from gancli.objective import GAN, Progress, check_phases
from gancli.plugins import PluginFault, get_record
from gancli.randomness import mix_seed
from gancli.train import distributed
from gancli.train.accelerator import check_batch, make_accelerator, maybe_sync_batchnorm
from gancli.train.augmentation import Augmentation, sum_over_processes
from gancli.train.checkpointing import checkpoint_metadata, collect_state, write_checkpoint
from gancli.train.ema import EMA
from gancli.train.failures import (
    NonFiniteLoss, all_finite, first_bad, nonfinite_message, nonfinite_weights, weights_finite, write_error,
)
from gancli.train.outputs import SideOutputs
from gancli.train.progress import SPEED_PROBE_STEPS, Progress as ProgressDisplay, warn_if_days
from gancli.train.rundir import RunDir
from gancli.train.signals import StopSignals
from gancli.train.state import add_new_parameters
from gancli.train.step import PhaseRunner
from gancli.train.tracking import Trackers, check_trackers

__all__ = ["TrainResult", "NonFiniteLoss", "build_gan", "make_accelerator", "train"]


@dataclass
class TrainResult:
    run_dir: Path
    last_checkpoint: Path
    step: int
    images_seen: int
    seconds: float
    images_per_second: float
    stopped_by: Optional[str] = None  # "SIGINT" / "SIGTERM" when interrupted


def build_gan(run: RunConfig, family_config, spec) -> tuple[GAN, Any]:
    record = get_record(run.family)
    with PluginFault(record, "loading its model code"):
        builder = record.family.load_builder()
    with PluginFault(record, "building the model"):
        gan = builder(family_config, spec)
    if not isinstance(gan, GAN):
        raise GancliError(f"plugin {record.label}: build() must return gancli.objective.GAN, got {type(gan).__name__}")
    return gan, record


def train(
    run: RunConfig,
    family_config: Any,
    *,
    out: Path,
    resume: bool = False,
    data=None,
    show_progress: bool = True,
    notes: tuple[str, ...] | list[str] = (),
    scaler=None,
) -> TrainResult:
    """Train ``run.family`` on ``run.data`` into run directory ``out``.

    ``notes`` are printed (main process) once the data has loaded, i.e. when training will start.
    ``scaler`` (a ``torch.amp.GradScaler``) replaces accelerate's, which exists only for fp16 on
    CUDA: the loss-scaling path can then run anywhere, e.g. on the CPU in tests.

    SIGINT and SIGTERM, even during setup, stop the run before the next step with a checkpoint
    (``TrainResult.stopped_by`` says which). Only one process at a time may train into a run
    directory. A new run that fails before its first checkpoint leaves nothing behind, so the
    same ``out`` can be used again.
    """
    rundir = RunDir(Path(out))
    main = os.environ.get("RANK", "0") == "0"  # set by torchrun / accelerate launch
    held_run = rundir.holds_run()
    before = rundir.snapshot()
    with StopSignals() as stop, (rundir.lock() if main else nullcontext()):
        try:
            return _train(run, family_config, out=out, resume=resume, data=data, show_progress=show_progress, stop=stop,
                          notes=notes, scaler=scaler)
        except BaseException:
            if main and not held_run:
                rundir.remove_created_since(before)
            raise


def _train(
    run: RunConfig, family_config: Any, *, out: Path, resume: bool, data, show_progress: bool, stop: StopSignals,
    notes=(), scaler=None,
) -> TrainResult:
    # ---------------------------------------------------------------- setup
    rundir = RunDir(Path(out))
    if resume:
        rundir.check_resumable()
    else:
        rundir.check_new_run()
    trackers = check_trackers(run.train.log_with)
    accelerator = make_accelerator(run.train.precision, log_with=trackers, project_dir=rundir.root / "trackers")
    world, rank = accelerator.num_processes, accelerator.process_index
    consensus = distributed.Consensus(world, rank, accelerator.device)
    try:
        return _train_with(run, family_config, out=out, resume=resume, data=data, show_progress=show_progress,
                           stop=stop, notes=notes, rundir=rundir, accelerator=accelerator, consensus=consensus,
                           scaler=scaler if scaler is not None else accelerator.scaler)
    except BaseException as exc:
        consensus.fail(exc)  # the other processes stop with this message instead of waiting for this one
        raise
    finally:
        if world > 1:
            distributed.settle()


def _train_with(
    run: RunConfig, family_config: Any, *, out: Path, resume: bool, data, show_progress: bool, stop: StopSignals,
    notes, rundir: RunDir, accelerator, consensus: "distributed.Consensus", scaler,
) -> TrainResult:
    from gancli.data.sources import load_data
    from gancli.data.stream import BatchStream, default_workers

    world, rank = accelerator.num_processes, accelerator.process_index
    main = accelerator.is_main_process
    device = accelerator.device
    run = run.model_copy(update={"train": run.train.model_copy(update={"precision": str(accelerator.mixed_precision)})})
    accumulate = run.train.accumulate
    check_batch(run.train.batch_size, world, accumulate, "train.batch_size")
    if data is None:
        data = load_data(
            run.data.source, resolution=run.data.resolution, channels=run.data.channels, split=run.data.split,
            labeled=run.data.labeled, seed=run.train.seed, limit=run.data.limit, mirror=run.data.mirror,
        )
    spec = data.spec
    if len(data) == 0:
        raise GancliError(f"{run.data.source} holds no examples")
    for note in notes if main else ():
        print(note, file=sys.stderr)

    torch.manual_seed(run.train.seed)  # identical initial weights on every process
    gan, record = build_gan(run, family_config, spec)
    G, D, objective = gan.generator, gan.discriminator, gan.objective
    with PluginFault(record, "describing its phases"):
        phases = check_phases(objective.phases())
    ckpt = None
    start = Progress(0, 0)
    if resume:
        from gancli.train.resume import check_resumable_checkpoint, read_for_resume

        ckpt = read_for_resume(rundir.last)
        check_resumable_checkpoint(ckpt, run, spec)
        start = Progress(ckpt.step, ckpt.images_seen)
    with PluginFault(record, "growing its networks"):
        objective.grow(start, G, D)  # build at the checkpoint's phase, so its weights load strictly
    if run.train.keep_freed_memory and device.type == "cpu":
        from gancli.train.allocator import keep_freed_memory

        keep_freed_memory()
    if run.train.allocator != "system":
        from gancli.train.allocator import active

        if not active(run.train.allocator) and main:
            print(f"note: train.allocator={run.train.allocator} is not in effect in this process: `gancli train` "
                  "restarts itself with it preloaded; from Python, start the interpreter with LD_PRELOAD", file=sys.stderr)
    channels_last = run.train.channels_last and spec.kind == "image" and device.type != "mps"
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    G.to(device=device, memory_format=memory_format)
    D.to(device=device, memory_format=memory_format)
    ema = (
        EMA(G, half_life_kimg=run.train.ema_half_life_kimg, decay=run.train.ema_decay,
            start_step=run.train.ema_start_step, buffers=getattr(objective, "ema_buffers", "copy"),
            rampup=run.train.ema_rampup)
        if run.train.ema
        else None
    )
    d_ema = (EMA(D, half_life_kimg=1.0, decay=run.train.ema_discriminator_decay, buffers="copy")
             if run.train.ema_discriminator else None)
    G, D = maybe_sync_batchnorm(run, objective, G, D, world, device)
    with PluginFault(record, "making the optimizers"):
        opt_g, opt_d = objective.optimizers(G, D)
    augmentation = Augmentation.for_run(run.train)
    if augmentation is not None and spec.kind != "image":
        raise GancliError(f"--augment {run.train.augment} transforms images; {run.data.source} holds {spec.kind}")
    step, consumed, nonfinite = 0, 0, 0
    if resume:
        from gancli.train.resume import restore

        step, consumed, nonfinite = restore(
            ckpt, run=run, G=G, D=D, ema=ema, optimizers={"G": opt_g, "D": opt_d}, objective=objective,
            rank=rank, world=world, scaler=scaler, record=record, d_ema=d_ema, augmentation=augmentation,
        )
        if step >= run.train.steps:
            raise GancliError(f"the run is already at step {step}; ask for more with --steps N (N > {step})")
    else:
        # noise inputs, dropout and the like differ between processes; latents are counter-based
        torch.manual_seed(mix_seed(run.train.seed, rank, 0x5EED))

    def on_main(action: Callable[[], None]) -> None:
        """Run ``action`` on the main process; if it fails, every process stops with its message."""
        if main:
            action()  # a failure reaches the others through _train's consensus.fail
        consensus.agree()

    with PluginFault(record, "reporting its training stage"):
        stage_label = objective.stage(Progress(step, consumed))

    def prepare_run_dir() -> None:
        rundir.create()
        rundir.remove_stale_temporaries()
        try:
            ckpt_io.atomic_write_text(rundir.config, to_toml(run))
            if resume:
                rundir.truncate_metrics(step)
                from gancli.train.stages import reopen_stages

                reopen_stages(rundir.samples, stage_label)
        except OSError as exc:
            raise write_error(rundir, rundir.config, exc) from None

    on_main(prepare_run_dir)

    num_workers = run.train.num_workers if run.train.num_workers is not None else default_workers(data)
    if main and show_progress and num_workers and run.train.num_workers is None:
        print(f"data: decoding images in {num_workers} worker processes (set train.num_workers to change)",
              file=sys.stderr)
    stream = BatchStream(
        data, global_batch=run.train.batch_size, seed=run.train.seed, rank=rank, world_size=world, device=device,
        num_workers=num_workers, consumed=consumed, channels_last=channels_last,
    )
    outputs = SideOutputs(run=run, spec=spec, data=data, rundir=rundir, accelerator=accelerator, record=record, G=G,
                          D=D, objective=objective, ema=ema, main=main, resume_step=step if resume else None)
    optimizers = {"G": opt_g, "D": opt_d}
    trackers = Trackers(accelerator, run.train.log_with, run=run, run_name=rundir.root.name)
    outputs.trackers = trackers

    def reduce_mean(value: torch.Tensor) -> torch.Tensor:
        consensus.agree()
        return distributed.mean(value, world)

    runner = PhaseRunner(run=run, phases=phases, G=G, D=D, objective=objective, optimizers=optimizers, scaler=scaler,
                         consensus=consensus, accelerator=accelerator, stream=stream, d_ema=d_ema,
                         reduce_mean=reduce_mean, augmentation=augmentation)
    prepared_for_sampling = {"step": -1}

    def prepare_for_sampling(at_step: int) -> None:
        if prepared_for_sampling["step"] == at_step:
            return
        with torch.no_grad(), PluginFault(record, f"preparing to sample at step {at_step}"):
            if ema is not None:
                objective.before_sampling(ema.model, is_ema=True)
            else:
                objective.before_sampling(G, is_ema=False)
        prepared_for_sampling["step"] = at_step

    def save_samples(at_step: int) -> None:
        prepare_for_sampling(at_step)
        on_main(lambda: outputs.samples(at_step))

    def save_stage(label: str, at_step: int) -> None:
        prepare_for_sampling(at_step)
        on_main(lambda: outputs.stage(label, at_step))

    def save_checkpoint(at_step: int) -> None:
        prepare_for_sampling(at_step)
        consensus.agree()  # before the gather of per-process state
        with PluginFault(record, "saving its state"):
            tensors, state = collect_state(accelerator, G, D, ema, optimizers, objective, world, nonfinite=nonfinite,
                                           d_ema=d_ema, scaler=scaler, augmentation=augmentation)
        if bad_weights := nonfinite_weights(tensors):
            # never write a checkpoint that would poison every later resume or sample (checked on
            # every process: the weights are the same everywhere, so all of them stop together)
            raise NonFiniteLoss(nonfinite_message(at_step, f"the {bad_weights} weights", rundir))
        metadata = checkpoint_metadata(run, record, spec, step=at_step, consumed=stream.consumed, state=state,
                                       world=world)
        on_main(lambda: write_checkpoint(rundir, at_step, tensors, metadata, keep=run.train.keep_checkpoints,
                                         metrics_file=outputs.metrics_file))
        on_main(outputs.curves)

    def grown() -> None:
        """The networks gained layers: optimizers and the EMA follow, by parameter name."""
        consensus.agree()
        for name, module in (("G", G), ("D", D)):
            module.to(device=device, memory_format=memory_format)
            distributed.broadcast_module(module, world)
            add_new_parameters(optimizers[name], module)
        runner.refresh_trainable()
        if ema is not None:
            ema.follow(G)
        if d_ema is not None:
            d_ema.follow(D)

    display = ProgressDisplay(run.train.steps, step, enabled=show_progress and main, title=run.family,
                              images_seen=stream.consumed)
    t0 = time.perf_counter()
    start_step, start_consumed = step, stream.consumed
    stopped_by = None
    last_saved_step = step if resume else -1

    # ---------------------------------------------------------------- the loop
    try:
        with stop:
            # a signal that came during setup; with several processes all stop at the same step
            stopping = consensus.agree(stop=stop.signal_name is not None).stop
            while step < run.train.steps and not stopping:
                # ---- stage and schedules
                progress = Progress(step, stream.consumed)
                with PluginFault(record, f"training step {step}"):
                    label = objective.stage(progress)
                if label != stage_label:
                    if stage_label is not None:  # the stage that just ended
                        save_stage(stage_label, step)
                    stage_label = label
                with PluginFault(record, f"training step {step}"):
                    objective.begin_step(progress, G, D)
                    batch = objective.batch_size(progress) or run.train.batch_size
                check_batch(batch, world, run.train.accumulate, "the batch size")

                # ---- the phases
                with PluginFault(record, f"training step {step}"):
                    skipped = runner.iteration(step, batch)
                stopping = consensus.agree(stop=stop.signal_name is not None).stop
                if skipped is not None:
                    # every process skips this same step (agreed in PhaseRunner); its cadences still run
                    nonfinite += 1
                    phase, terms = skipped
                    bad = first_bad(terms, phase.name) if not all_finite(terms) else (
                        f"the {phase.name} loss on another process" if world > 1 else f"the {phase.name} gradients")
                    if nonfinite > run.train.max_nonfinite:
                        raise NonFiniteLoss(nonfinite_message(step, bad, rundir))
                    display.log(f"step {step}: skipped, {bad} not finite ({nonfinite}/{run.train.max_nonfinite})")
                elif not weights_finite(G, step):
                    raise NonFiniteLoss(nonfinite_message(step, "the generator weights", rundir))
                elif ema is not None:
                    ema.update(G, step=step, batch_size=batch, images_seen=progress.images_seen)
                step += 1
                if augmentation is not None:
                    augmentation.end_step(step, batch, sum_over_processes(world, consensus))

                # ---- growth, then every cadence
                with PluginFault(record, f"growing its networks after step {step}"):
                    # before anything is saved: a checkpoint's networks are those of its own progress
                    if objective.grow(Progress(step, stream.consumed), G, D):
                        grown()
                if main and step == start_step + SPEED_PROBE_STEPS and device.type == "cpu":
                    warn_if_days(time.perf_counter() - t0, SPEED_PROBE_STEPS, run.train.steps - step, display)
                if step % run.train.log_every == 0 or step == run.train.steps:
                    terms = {f"{prefix}/{k}": float(v.float().item()) for prefix, t in runner.last_terms.items()
                             for k, v in t.items()}
                    if augmentation is not None:
                        terms.update(augmentation.log_terms())
                    elapsed = time.perf_counter() - t0
                    rate = (stream.consumed - start_consumed) / elapsed if elapsed > 0 else 0.0
                    rates = {"lr/G": opt_g.param_groups[0]["lr"], "lr/D": opt_d.param_groups[0]["lr"]}
                    line = {"step": step, "images_seen": stream.consumed, "seconds": round(elapsed, 3),
                            "images_per_second": round(rate, 2), **terms, **rates}
                    on_main(lambda: outputs.metrics_line(line))
                    trackers.scalars({**terms, **rates, "images_per_second": rate, "kimg": stream.consumed / 1000},
                                     step)
                    display.update(step, terms, images_seen=stream.consumed)
                else:
                    display.update(step, images_seen=stream.consumed)
                if run.train.sample_every and step % run.train.sample_every == 0:
                    save_samples(step)
                if run.train.checkpoint_every and step % run.train.checkpoint_every == 0:
                    save_checkpoint(step)
                    last_saved_step = step

            # ---------------------------------------------------------------- the end
            if stopping:
                stopped_by = stop.signal_name or "SIGTERM"
            if last_saved_step != step:
                save_checkpoint(step)
            if not run.train.sample_every or step % run.train.sample_every:
                save_samples(step)
            if stage_label is not None:
                save_stage(f"{stage_label} (step {step})", step)
                on_main(outputs.growth_gif)
            on_main(outputs.lab_gif)
    finally:
        display.close()
        stream.close()
        outputs.close()
        trackers.close()
    consensus.agree()  # every process finished (or all stop with the one that failed)
    seconds = time.perf_counter() - t0
    return TrainResult(
        run_dir=rundir.root, last_checkpoint=rundir.last, step=step, images_seen=stream.consumed, seconds=seconds,
        images_per_second=(stream.consumed - start_consumed) / seconds if seconds > 0 else 0.0,
        stopped_by=stopped_by,
    )
