"""The training loop: one plain function over a family's phases (stylegan2-ada style).

Setup builds the family's GAN (at the checkpoint's growth phase when resuming), places
it, makes the EMA and the optimizers and restores state. Each iteration then runs the
objective's phases in order; a phase repeat is one optimizer step: ``accumulate``
micro-batches of forward and backward, one all-reduce of the phase network's gradients
(gancli.train.distributed says why the trainer owns it), the ``after_backward`` hook and
the step. Before any process branches on something only it can see (a non-finite loss, a
stop signal, a failure) the processes agree on it (gancli.train.distributed.Consensus), so
all of them skip the same step or stop together, with the failing process's message.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import torch

import gancli
from gancli import checkpoint as ckpt_io
from gancli.config import RunConfig, to_toml
from gancli.errors import GancliError
from gancli.objective import GAN, Progress, Step, check_phases
from gancli.plugins import API_VERSION, PluginFault, get_record
from gancli.randomness import mix_seed
from gancli.train import distributed
from gancli.train.ema import EMA
from gancli.train.gradients import backward, optimizer_step
from gancli.train.progress import Progress as ProgressDisplay
from gancli.train.rundir import RunDir
from gancli.train.state import add_new_parameters, optimizer_state


@dataclass
class TrainResult:
    run_dir: Path
    last_checkpoint: Path
    step: int
    images_seen: int
    seconds: float
    images_per_second: float
    stopped_by: Optional[str] = None  # "SIGINT" / "SIGTERM" when interrupted


class NonFiniteLoss(GancliError):
    pass


class _Stop:
    """Turns SIGINT/SIGTERM into a flag the loop checks between steps, so a checkpoint is saved first."""

    def __init__(self) -> None:
        self.signal_name: Optional[str] = None
        self._previous: dict[int, Any] = {}
        self._depth = 0

    def __enter__(self) -> "_Stop":
        self._depth += 1
        if self._depth > 1:  # already installed by an outer block
            return self
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. inside some test runners)
                pass
        return self

    def _handle(self, signum, frame) -> None:
        if self.signal_name is not None:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name

    def __exit__(self, *exc) -> None:
        self._depth -= 1
        if self._depth:
            return
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


def build_gan(run: RunConfig, family_config, spec) -> tuple[GAN, Any]:
    record = get_record(run.family)
    with PluginFault(record, "loading its model code"):
        builder = record.family.load_builder()
    with PluginFault(record, "building the model"):
        gan = builder(family_config, spec)
    if not isinstance(gan, GAN):
        raise GancliError(f"plugin {record.label}: build() must return gancli.objective.GAN, got {type(gan).__name__}")
    return gan, record


def _cpu_has_native_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def make_accelerator(precision: Optional[str]):
    """An Accelerator for device placement, autocast, the fp16 GradScaler and the process group.

    ``precision`` None takes the launcher's setting (``accelerate launch --mixed_precision``).
    """
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    # the state is a process-wide singleton; forget a previous in-process run's precision
    AcceleratorState._reset_state()
    # launched as several processes (torchrun, accelerate launch --multi_gpu) on a machine
    # without CUDA: accelerate only forms a gloo process group when told it is on the CPU
    several_cpu_processes = not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1
    extra = {"cpu": True} if several_cpu_processes else {}
    if precision == "fp16" and not torch.cuda.is_available():
        raise GancliError("--precision fp16 needs a CUDA GPU; on the CPU use --precision bf16 or no")
    accelerator = Accelerator(mixed_precision=precision, **extra)
    effective = str(accelerator.mixed_precision)
    if effective == "fp16" and accelerator.device.type == "cpu":
        raise GancliError("mixed precision fp16 (from the launcher) needs a CUDA GPU; on the CPU use bf16 or no")
    if effective == "bf16" and accelerator.device.type == "cpu" and not _cpu_has_native_bf16():
        print(
            "warning: this CPU has no native bf16 (AVX512-BF16 or AMX); bf16 convolutions are emulated "
            "and usually slower than fp32 here; --precision no is likely faster",
            file=sys.stderr,
        )
    return accelerator


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
    with _Stop() as stop, (rundir.lock() if main else nullcontext()):
        try:
            return _train(run, family_config, out=out, resume=resume, data=data, show_progress=show_progress, stop=stop,
                          notes=notes, scaler=scaler)
        except BaseException:
            if main and not held_run:
                rundir.remove_created_since(before)
            raise


def _train(
    run: RunConfig, family_config: Any, *, out: Path, resume: bool, data, show_progress: bool, stop: _Stop,
    notes=(), scaler=None,
) -> TrainResult:
    # ---------------------------------------------------------------- setup
    rundir = RunDir(Path(out))
    if resume:
        rundir.check_resumable()
    else:
        rundir.check_new_run()
    accelerator = make_accelerator(run.train.precision)
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
    run: RunConfig, family_config: Any, *, out: Path, resume: bool, data, show_progress: bool, stop: _Stop,
    notes, rundir: RunDir, accelerator, consensus: "distributed.Consensus", scaler,
) -> TrainResult:
    from gancli.data.sources import load_data
    from gancli.data.stream import BatchStream, default_workers
    from gancli.sampling import image_grid, latents as make_latents, points_plot, save_image

    world, rank = accelerator.num_processes, accelerator.process_index
    main = accelerator.is_main_process
    device = accelerator.device
    run = run.model_copy(update={"train": run.train.model_copy(update={"precision": str(accelerator.mixed_precision)})})
    accumulate = run.train.accumulate
    _check_batch(run.train.batch_size, world, accumulate, "train.batch_size")
    if data is None:
        data = load_data(
            run.data.source, resolution=run.data.resolution, channels=run.data.channels, split=run.data.split,
            labeled=run.data.labeled, seed=run.train.seed,
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
    channels_last = run.train.channels_last and spec.kind == "image" and device.type != "mps"
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    G.to(device=device, memory_format=memory_format)
    D.to(device=device, memory_format=memory_format)
    ema = (
        EMA(G, half_life_kimg=run.train.ema_half_life_kimg, decay=run.train.ema_decay,
            start_step=run.train.ema_start_step, buffers=getattr(objective, "ema_buffers", "copy"))
        if run.train.ema
        else None
    )
    d_ema = (EMA(D, half_life_kimg=1.0, decay=run.train.ema_discriminator_decay, buffers="copy")
             if run.train.ema_discriminator else None)
    G, D = _maybe_sync_batchnorm(run, objective, G, D, world, device)
    with PluginFault(record, "making the optimizers"):
        opt_g, opt_d = objective.optimizers(G, D)
    step, consumed, nonfinite = 0, 0, 0
    if resume:
        from gancli.train.resume import restore

        step, consumed, nonfinite = restore(
            ckpt, run=run, G=G, D=D, ema=ema, optimizers={"G": opt_g, "D": opt_d}, objective=objective,
            rank=rank, world=world, scaler=scaler, record=record, d_ema=d_ema,
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
            raise _write_error(rundir, rundir.config, exc) from None

    on_main(prepare_run_dir)

    num_workers = run.train.num_workers if run.train.num_workers is not None else default_workers(data)
    if main and show_progress and num_workers and run.train.num_workers is None:
        print(f"data: decoding images in {num_workers} worker processes (set train.num_workers to change)",
              file=sys.stderr)
    stream = BatchStream(
        data, global_batch=run.train.batch_size, seed=run.train.seed, rank=rank, world_size=world, device=device,
        num_workers=num_workers, consumed=consumed, channels_last=channels_last,
    )
    z_dim = int(getattr(G, "z_dim"))
    num_classes = int(getattr(G, "num_classes", 0) or 0)
    fixed_z = make_latents(run.train.sample_grid, z_dim, seed=run.train.seed).to(device)
    fixed_y = (torch.arange(run.train.sample_grid, device=device) % num_classes) if num_classes else None
    lab = None  # 2-D runs: a GAN Lab-style animation, one frame per sample step (gancli.train.lab)
    if main and spec.kind == "points" and spec.dim == 2:
        from gancli.train.lab import Lab

        lab = Lab.for_run(rundir.root, data.values, resume_step=step if resume else None, seed=run.train.seed)

    modules = {"G": G, "D": D}
    optimizers = {"G": opt_g, "D": opt_d}
    trainable = {name: [p for p in m.parameters() if p.requires_grad] for name, m in modules.items()}
    draws = torch.Generator(device=device)

    def reduce_mean(value: torch.Tensor) -> torch.Tensor:
        consensus.agree()
        return distributed.mean(value, world)
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

    def sample_grid(at_step: int):
        model = ema.model if ema is not None else G
        was_training = model.training
        model.eval()
        with torch.no_grad(), accelerator.autocast(), PluginFault(record, f"sampling at step {at_step}"):
            x = model(fixed_z, fixed_y).float().cpu()
        model.train(was_training)
        if spec.kind == "points":
            reference = data.values[: min(len(data), 2000)]
            return model, points_plot(x, reference=reference)
        from gancli.data.images import to_uint8

        return model, image_grid(to_uint8(x))

    def save_samples(at_step: int) -> None:
        model, image = sample_grid(at_step)
        try:
            save_image(image, rundir.sample_path(at_step))
        except OSError as exc:
            raise _write_error(rundir, rundir.sample_path(at_step), exc) from None
        if lab is not None:
            with PluginFault(record, f"drawing the lab frame at step {at_step}"):
                lab.record(at_step, model, D, objective)

    def save_checkpoint(at_step: int) -> None:
        prepare_for_sampling(at_step)
        consensus.agree()  # before the gather of per-process state
        with PluginFault(record, "saving its state"):
            tensors, state_meta = _collect_state(
                accelerator, G, D, ema, optimizers, objective, world, nonfinite=nonfinite, d_ema=d_ema, scaler=scaler
            )
        if bad_weights := _nonfinite_weights(tensors):
            # never write a checkpoint that would poison every later resume or sample (checked on
            # every process: the weights are the same everywhere, so all of them stop together)
            raise NonFiniteLoss(_nonfinite_message(at_step, f"the {bad_weights} weights", rundir))

        def write() -> None:
            metadata = {
                "gancli.format": ckpt_io.FORMAT_VERSION,
                "gancli.version": gancli.__version__,
                "gancli.family": run.family,
                "gancli.plugin.distribution": record.distribution,
                "gancli.plugin.version": record.version,
                "gancli.plugin.api_version": record.family.api_version,
                "gancli.api_version": API_VERSION,
                "gancli.config": json.dumps(run.model_dump(mode="json"), sort_keys=True),
                "gancli.data_spec": spec.to_json(),
                "gancli.step": str(at_step),
                "gancli.images_seen": str(stream.consumed),
                "gancli.state": json.dumps({**state_meta, "consumed": stream.consumed, "world_size": world}),
            }
            path = rundir.step_checkpoint(at_step)
            try:
                if metrics_file is not None:
                    # metric lines up to a checkpoint are as durable as the checkpoint; later ones are
                    # replaced on resume (RunDir.truncate_metrics)
                    os.fsync(metrics_file.fileno())
                ckpt_io.save(path, tensors, metadata)
                ckpt_io.atomic_link_or_copy(path, rundir.last)
                rundir.prune_checkpoints(run.train.keep_checkpoints)
            except OSError as exc:
                raise _write_error(rundir, path, exc) from None

        on_main(write)

    def write_lab() -> None:
        if lab is None:
            return
        try:
            lab.write()
        except OSError as exc:
            raise _write_error(rundir, rundir.root / "lab.gif", exc) from None

    def save_stage(label: str, at_step: int) -> None:
        """The grid at the end of a stage (growth phase), for RUN/growth.gif."""
        from gancli.train.stages import stage_path

        _, image = sample_grid(at_step)
        path = stage_path(rundir.samples, label)
        try:
            save_image(image, path)
        except OSError as exc:
            raise _write_error(rundir, path, exc) from None

    def write_metrics(line: dict[str, Any]) -> None:
        try:
            # one write per line, flushed: a kill can cut only the last line short
            metrics_file.write(json.dumps(line) + "\n")
            metrics_file.flush()
        except OSError as exc:
            raise _write_error(rundir, rundir.metrics, exc) from None

    def grown() -> None:
        """The networks gained layers: optimizers and the EMA follow, by parameter name."""
        consensus.agree()
        for name, module in modules.items():
            module.to(device=device, memory_format=memory_format)
            distributed.broadcast_module(module, world)
            add_new_parameters(optimizers[name], module)
            trainable[name] = [p for p in module.parameters() if p.requires_grad]
        if ema is not None:
            ema.follow(G)
        if d_ema is not None:
            d_ema.follow(D)

    def run_repeat(phase, index: int, repeat: int, repeats: int, chunks, caches, batch: int):
        """One optimizer step of ``phase``: forward/backward over the micro-batches, sync, step.

        Returns (the last Step, the loss terms, the outcome): "stepped"; "overflow" (the scaler
        skipped the step and backed its scale off, as it does to find its level); or "nonfinite"
        (a loss on some process, or without a scaler a gradient, was not finite: no process stepped).
        """
        module, optimizer = modules[phase.network], optimizers[phase.network]
        frozen_d = [(p, p.requires_grad) for p in D.parameters()] if phase.network == "G" else []
        for p, _ in frozen_d:
            p.requires_grad_(False)  # D's weight gradients are never needed in a G phase
        optimizer.zero_grad(set_to_none=True)
        micro_batch = batch // (world * accumulate)
        totals: dict[str, torch.Tensor] = {}
        loss_bad = torch.zeros((), dtype=torch.bool, device=device)
        s = None
        try:
            for micro, (real, labels) in enumerate(chunks):
                s = Step(
                    index=step, real=real, labels=labels, G=G, D=D, z_dim=z_dim, num_classes=num_classes,
                    seed=run.train.seed, phase=phase.name, phase_index=index, repeat=repeat, repeats=repeats,
                    micro=micro, accumulate=accumulate, rank=rank, world_size=world, images_seen=stream.consumed,
                    batch_size=micro_batch, device=device, autocast=accelerator.autocast, generator=draws,
                    cache=caches[micro], reduce_mean=reduce_mean,
                )
                terms = phase.loss(s)
                loss = terms["loss"]
                loss_bad |= ~torch.isfinite(loss.detach())
                backward(loss / accumulate if accumulate > 1 else loss, scaler)
                for key, value in terms.items():
                    value = value.detach()
                    totals[key] = totals[key] + value if key in totals else value
        finally:
            for p, wanted in frozen_d:
                p.requires_grad_(wanted)  # each parameter's own flag: a family may freeze some on purpose
        if accumulate > 1:
            totals = {k: v / accumulate for k, v in totals.items()}
        if consensus.agree(nonfinite=loss_bad).nonfinite:
            optimizer.zero_grad(set_to_none=True)
            return s, totals, "nonfinite"
        distributed.all_reduce_gradients(trainable[phase.network], world)
        stepped = optimizer_step(
            optimizer, trainable[phase.network], scaler=scaler,
            after_backward=lambda: objective.after_backward(phase, module),
        )
        if stepped:
            return s, totals, "stepped"
        # the gradients were averaged first, so every process sees the same ones and decides alike
        if scaler is not None:
            return s, totals, "overflow"
        optimizer.zero_grad(set_to_none=True)
        return s, totals, "nonfinite"

    try:
        metrics_file = open(rundir.metrics, "a", encoding="utf-8") if main else None
    except OSError as exc:
        raise _write_error(rundir, rundir.metrics, exc) from None
    display = ProgressDisplay(run.train.steps, step, enabled=show_progress and main, title=run.family,
                              images_seen=stream.consumed)
    last_terms: dict[str, torch.Tensor] = {}
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
                progress = Progress(step, stream.consumed)
                with PluginFault(record, f"training step {step}"):
                    label = objective.stage(progress)
                if label != stage_label:
                    if stage_label is not None:  # the stage that just ended
                        prepare_for_sampling(step)
                        on_main(lambda: save_stage(stage_label, step))
                    stage_label = label
                with PluginFault(record, f"training step {step}"):
                    objective.begin_step(progress, G, D)
                    batch = objective.batch_size(progress) or run.train.batch_size
                _check_batch(batch, world, accumulate, "the batch size")
                caches: list[dict[str, Any]] = [{} for _ in range(accumulate)]
                chunks = None
                skipped = None  # the phase and terms where a non-finite value stopped this step
                with PluginFault(record, f"training step {step}"):
                    for index, phase in enumerate(phases):
                        if not phase.due(step):
                            continue
                        repeats = phase.times(step)
                        for repeat in range(repeats):
                            if phase.real == "new" or (phase.real == "last" and chunks is None):
                                real, labels = stream.next(batch)
                                chunks = list(zip(real.chunk(accumulate), _chunks(labels, accumulate)))
                            phase_chunks = chunks if phase.real != "none" else [(None, None)] * accumulate
                            s, terms, outcome = run_repeat(phase, index, repeat, repeats, phase_chunks, caches, batch)
                            last_terms[phase.log_prefix] = terms
                            if outcome == "nonfinite":
                                skipped = (phase, terms)
                                break
                            if phase.after_step is not None:
                                phase.after_step(s)
                            if d_ema is not None and phase.network == "D":
                                d_ema.update(D, step=step, batch_size=batch)
                        if skipped is not None:
                            break
                stopping = consensus.agree(stop=stop.signal_name is not None).stop
                if skipped is not None:
                    # every process skips this same step (agreed in run_repeat); its cadences still run
                    nonfinite += 1
                    phase, terms = skipped
                    bad = _first_bad(terms, phase.name) if not _all_finite(terms) else (
                        f"the {phase.name} loss on another process" if world > 1 else f"the {phase.name} gradients")
                    if nonfinite > run.train.max_nonfinite:
                        raise NonFiniteLoss(_nonfinite_message(step, bad, rundir))
                    display.log(f"step {step}: skipped, {bad} not finite ({nonfinite}/{run.train.max_nonfinite})")
                elif not _weights_finite(G, step):
                    raise NonFiniteLoss(_nonfinite_message(step, "the generator weights", rundir))
                elif ema is not None:
                    ema.update(G, step=step, batch_size=batch)
                step += 1
                with PluginFault(record, f"growing its networks after step {step}"):
                    # before anything is saved: a checkpoint's networks are those of its own progress
                    if objective.grow(Progress(step, stream.consumed), G, D):
                        grown()
                if main and step == start_step + SPEED_PROBE_STEPS and device.type == "cpu":
                    _warn_if_days(time.perf_counter() - t0, SPEED_PROBE_STEPS, run.train.steps - step, display)

                if step % run.train.log_every == 0 or step == run.train.steps:
                    terms = {f"{prefix}/{k}": float(v.float().item()) for prefix, t in last_terms.items()
                             for k, v in t.items()}
                    elapsed = time.perf_counter() - t0
                    rate = (stream.consumed - start_consumed) / elapsed if elapsed > 0 else 0.0
                    line = {"step": step, "images_seen": stream.consumed, "seconds": round(elapsed, 3),
                            "images_per_second": round(rate, 2), **terms}
                    on_main(lambda: write_metrics(line))
                    display.update(step, terms, images_seen=stream.consumed)
                else:
                    display.update(step, images_seen=stream.consumed)
                if run.train.sample_every and step % run.train.sample_every == 0:
                    prepare_for_sampling(step)
                    on_main(lambda: save_samples(step))
                if run.train.checkpoint_every and step % run.train.checkpoint_every == 0:
                    save_checkpoint(step)
                    last_saved_step = step
            if stopping:
                stopped_by = stop.signal_name or "SIGTERM"
            if last_saved_step != step:
                save_checkpoint(step)
            if not run.train.sample_every or step % run.train.sample_every:
                prepare_for_sampling(step)
                on_main(lambda: save_samples(step))
            if stage_label is not None:
                from gancli.train.stages import write_growth_gif

                prepare_for_sampling(step)
                on_main(lambda: save_stage(f"{stage_label} (step {step})", step))
                on_main(lambda: write_growth_gif(rundir.samples, rundir.root / "growth.gif"))
            on_main(write_lab)
    finally:
        display.close()
        stream.close()
        if metrics_file is not None:
            metrics_file.close()
    consensus.agree()  # every process finished (or all stop with the one that failed)
    seconds = time.perf_counter() - t0
    return TrainResult(
        run_dir=rundir.root, last_checkpoint=rundir.last, step=step, images_seen=stream.consumed, seconds=seconds,
        images_per_second=(stream.consumed - start_consumed) / seconds if seconds > 0 else 0.0,
        stopped_by=stopped_by,
    )


SPEED_PROBE_STEPS = 3  # iterations timed before estimating how long a CPU run takes


def _warn_if_days(seconds: float, steps_done: int, steps_left: int, display) -> None:
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


def _chunks(labels: Optional[torch.Tensor], parts: int) -> list[Optional[torch.Tensor]]:
    return list(labels.chunk(parts)) if labels is not None else [None] * parts


def _check_batch(batch: int, world: int, accumulate: int, what: str) -> None:
    if batch % (world * accumulate):
        raise GancliError(
            f"{what} {batch} must be divisible by processes × train.accumulate = {world} × {accumulate}"
        )


def _maybe_sync_batchnorm(run: RunConfig, objective, G, D, world: int, device: torch.device):
    """Cross-replica BatchNorm when asked for (train.sync_batchnorm) or when the family asks for it."""
    from gancli.nn.norms import has_batch_norm

    wanted = run.train.sync_batchnorm
    if wanted is None:
        wanted = bool(getattr(objective, "sync_batchnorm", False))
    if not wanted or world == 1 or not (has_batch_norm(G) or has_batch_norm(D)):
        return G, D
    if device.type != "cuda":
        if run.train.sync_batchnorm:
            raise GancliError(
                "train.sync_batchnorm needs CUDA processes (PyTorch's SyncBatchNorm runs on GPUs only); "
                "drop it to let each process normalise with its own batch"
            )
        print("note: BatchNorm is not synchronized across CPU processes; each normalises with its own batch",
              file=sys.stderr)
        return G, D
    convert = torch.nn.SyncBatchNorm.convert_sync_batchnorm
    return convert(G), convert(D)


def _last_good(rundir: RunDir) -> str:
    if rundir.last.exists():
        return f"the last good checkpoint is {rundir.last}"
    return "no checkpoint was written yet"


def _nonfinite_message(step: int, what: str, rundir: RunDir) -> str:
    return (
        f"step {step}: {what} became non-finite (NaN or inf); {_last_good(rundir)}. Try a lower learning rate "
        f"(--set lr=...), full precision (--precision no), a gradient penalty computed in fp32, "
        f"or --max-nonfinite N to skip up to N bad steps"
    )


def _write_error(rundir: RunDir, path: Path, exc: OSError) -> GancliError:
    import errno

    reason = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is exceeded",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EROFS: "the file system is read-only",
    }.get(exc.errno, exc.strerror or str(exc))
    if rundir.last.exists():
        return GancliError(
            f"could not write {path}: {reason}; the last checkpoint {rundir.last} is intact — free disk space "
            f"or fix the permissions, then run the same command with --resume"
        )
    return GancliError(
        f"could not write {path}: {reason}; no checkpoint was written yet — free disk space or fix the "
        f"permissions, then start the run again"
    )


def _nonfinite_weights(tensors: dict[str, torch.Tensor]) -> str:
    """The network ("G", "D" or "G_ema") with a NaN/inf weight, or ""."""
    for name, value in tensors.items():
        network = name.split(".", 1)[0]
        if network in ("G", "D", "G_ema", "D_ema") and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            return {"G": "generator", "D": "discriminator", "G_ema": "EMA generator", "D_ema": "averaged discriminator"}[network]
    return ""


def _all_finite(terms: dict[str, torch.Tensor]) -> bool:
    return all(bool(torch.isfinite(v.detach()).all()) for v in terms.values())


def _first_bad(terms: dict[str, torch.Tensor], side: str) -> str:
    for name, value in terms.items():
        if name != "loss" and not bool(torch.isfinite(value.detach()).all()):
            return f"the {side} loss term {name!r}"
    if "loss" in terms and not bool(torch.isfinite(terms["loss"].detach()).all()):
        return f"the {side} loss"
    return f"the {side} gradients"


def _weights_finite(module: torch.nn.Module, step: int) -> bool:
    # a cheap periodic guard; gradients are checked before every optimizer step
    if step % 100:
        return True
    return all(bool(torch.isfinite(p).all()) for p in module.parameters())


def _collect_state(accelerator, G, D, ema, optimizers, objective, world, *, nonfinite: int, d_ema=None, scaler=None):
    """Checkpoint tensors and JSON state; per-process state is gathered from every process."""
    tensors: dict[str, torch.Tensor] = {}
    tensors.update({f"G.{k}": v for k, v in G.state_dict().items()})
    tensors.update({f"D.{k}": v for k, v in D.state_dict().items()})
    if ema is not None:
        tensors.update({f"G_ema.{k}": v for k, v in ema.model.state_dict().items()})
    if d_ema is not None:
        tensors.update({f"D_ema.{k}": v for k, v in d_ema.model.state_dict().items()})
    meta: dict[str, Any] = {"optimizers": {}, "nonfinite": nonfinite}
    for name, module in (("G", G), ("D", D)):
        opt_tensors, opt_meta = optimizer_state(optimizers[name], module, f"state.opt.{name}")
        tensors.update(opt_tensors)
        meta["optimizers"][name] = opt_meta
    local = {f"objective.{k}": v for k, v in objective.state_tensors().items()}
    local["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available() and accelerator.device.type == "cuda":
        local["rng.cuda"] = torch.cuda.get_rng_state(accelerator.device)
    for r, values in enumerate(distributed.gather_tensor_dicts(local, world, accelerator.device)):
        tensors.update({f"state.rank.{r}.{k}": v for k, v in values.items()})
    if scaler is not None:
        meta["scaler"] = {k: v for k, v in scaler.state_dict().items() if not isinstance(v, torch.Tensor)}
    return tensors, meta
