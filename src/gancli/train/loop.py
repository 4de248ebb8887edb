"""The training loop: one plain function around a family's Objective (stylegan2-ada style)."""
from __future__ import annotations

import json
import math
import os
import signal
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch

import gancli
from gancli import checkpoint as ckpt_io
from gancli.config import RunConfig, to_toml
from gancli.errors import GancliError
from gancli.objective import GAN, Step
from gancli.plugins import API_VERSION, PluginFault, get_record
from gancli.train.ema import EMA
from gancli.train.progress import Progress
from gancli.train.rundir import RunDir
from gancli.train.state import generator_state, load_optimizer_state, optimizer_state


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


def make_accelerator(precision: str):
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    if precision == "fp16" and not torch.cuda.is_available():
        raise GancliError("--precision fp16 needs a CUDA GPU; on the CPU use --precision bf16 or no")
    if precision == "bf16" and not torch.cuda.is_available() and not _cpu_has_native_bf16():
        import sys

        print(
            "warning: this CPU has no native bf16 (AVX512-BF16 or AMX); bf16 convolutions are emulated "
            "and usually slower than fp32 here; --precision no is likely faster",
            file=sys.stderr,
        )
    # separate DDP wrappers for G and D; no buffer broadcast, or two D forwards (real, fake)
    # before one backward break with BatchNorm (pytorch #22095)
    ddp = DistributedDataParallelKwargs(broadcast_buffers=False)
    from accelerate.state import AcceleratorState

    # the state is a process-wide singleton; forget a previous in-process run's precision
    AcceleratorState._reset_state()
    # launched as several processes (torchrun, accelerate launch --multi_gpu) on a machine
    # without CUDA: accelerate only forms a gloo process group when told it is on the CPU
    several_cpu_processes = not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1
    extra = {"cpu": True} if several_cpu_processes else {}
    return Accelerator(mixed_precision=precision, kwargs_handlers=[ddp], **extra)


def train(
    run: RunConfig,
    family_config: Any,
    *,
    out: Path,
    resume: bool = False,
    data=None,
    show_progress: bool = True,
) -> TrainResult:
    """Train ``run.family`` on ``run.data`` into run directory ``out``.

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
            return _train(run, family_config, out=out, resume=resume, data=data, show_progress=show_progress, stop=stop)
        except BaseException:
            if main and not held_run:
                rundir.remove_created_since(before)
            raise


def _train(
    run: RunConfig, family_config: Any, *, out: Path, resume: bool, data, show_progress: bool, stop: _Stop
) -> TrainResult:
    from gancli.data.sources import load_data
    from gancli.data.stream import BatchStream
    from gancli.sampling import image_grid, latents as make_latents, points_plot, save_image

    rundir = RunDir(Path(out))
    if resume:
        rundir.check_resumable()
    else:
        rundir.check_new_run()
    accelerator = make_accelerator(run.train.precision)
    world, rank = accelerator.num_processes, accelerator.process_index
    if run.train.batch_size % world:
        raise GancliError(f"batch size {run.train.batch_size} must be divisible by the {world} processes")
    if data is None:
        data = load_data(
            run.data.source, resolution=run.data.resolution, channels=run.data.channels, split=run.data.split,
            labeled=run.data.labeled, seed=run.train.seed,
        )
    spec = data.spec
    if len(data) == 0:
        raise GancliError(f"{run.data.source} holds no examples")

    torch.manual_seed(run.train.seed)  # identical initial weights on every process
    gan, record = build_gan(run, family_config, spec)
    G, D, objective = gan.generator, gan.discriminator, gan.objective
    device = accelerator.device
    channels_last = run.train.channels_last and spec.kind == "image" and device.type != "mps"
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    G.to(device=device, memory_format=memory_format)
    D.to(device=device, memory_format=memory_format)
    ema = (
        EMA(G, half_life_kimg=run.train.ema_half_life_kimg, decay=run.train.ema_decay, start_step=run.train.ema_start_step)
        if run.train.ema
        else None
    )
    with PluginFault(record, "making the optimizers"):
        opt_g, opt_d = objective.optimizers(G, D)

    step, consumed = 0, 0
    latent_gen = torch.Generator(device=device).manual_seed(run.train.seed * 7919 + 1 + rank)
    if resume:
        from gancli.train.resume import restore

        step, consumed = restore(
            rundir.last, run=run, spec=spec, G=G, D=D, ema=ema, opt_g=opt_g, opt_d=opt_d, objective=objective,
            latent_gen=latent_gen, rank=rank, world=world,
        )
        if step >= run.train.steps:
            raise GancliError(
                f"the run is already at step {step}; ask for more with --steps N (N > {step})"
            )

    if accelerator.is_main_process:
        rundir.create()
        rundir.remove_stale_temporaries()
        try:
            ckpt_io.atomic_write_text(rundir.config, to_toml(run))
            if resume:
                rundir.truncate_metrics(step)
        except OSError as exc:
            raise _write_error(rundir, rundir.config, exc) from None
    accelerator.wait_for_everyone()

    if getattr(objective, "find_unused_parameters", False) and accelerator.ddp_handler is not None:
        accelerator.ddp_handler.find_unused_parameters = True  # growing or branching models
    G_run, D_run, opt_g, opt_d = accelerator.prepare(G, D, opt_g, opt_d)
    G_module, D_module = accelerator.unwrap_model(G_run), accelerator.unwrap_model(D_run)
    if resume and accelerator.scaler is not None:
        saved_scaler = ckpt_io.read(rundir.last).state.get("scaler")
        if saved_scaler:  # fp16: continue with the loss scale the run had reached
            accelerator.scaler.load_state_dict(saved_scaler)
    stream = BatchStream(
        data, global_batch=run.train.batch_size, seed=run.train.seed, rank=rank, world_size=world, device=device,
        num_workers=run.train.num_workers, consumed=consumed, channels_last=channels_last,
    )
    z_dim = int(getattr(G_module, "z_dim"))
    num_classes = int(getattr(G_module, "num_classes", 0) or 0)
    fixed_z = make_latents(run.train.sample_grid, z_dim, seed=run.train.seed).to(device)
    fixed_y = (torch.arange(run.train.sample_grid, device=device) % num_classes) if num_classes else None
    lab = None  # 2-D runs: a GAN Lab-style animation, one frame per sample step (gancli.train.lab)
    if accelerator.is_main_process and spec.kind == "points" and spec.dim == 2:
        from gancli.train.lab import Lab

        lab = Lab.for_run(rundir.root, data.values, resume_step=step if resume else None, seed=run.train.seed)

    def grad_scale() -> float:
        scaler = accelerator.scaler
        return float(scaler.get_scale()) if scaler is not None else 1.0

    def save_samples(at_step: int) -> None:
        model = ema.model if ema is not None else G_module
        was_training = model.training
        model.eval()
        with torch.no_grad(), accelerator.autocast(), PluginFault(record, f"sampling at step {at_step}"):
            x = model(fixed_z, fixed_y).float().cpu()
        model.train(was_training)
        if spec.kind == "points":
            reference = data.values[: min(len(data), 2000)]
            image = points_plot(x, reference=reference)
        else:
            from gancli.data.images import to_uint8

            image = image_grid(to_uint8(x))
        try:
            save_image(image, rundir.sample_path(at_step))
        except OSError as exc:
            raise _write_error(rundir, rundir.sample_path(at_step), exc) from None
        if lab is not None:
            with PluginFault(record, f"drawing the lab frame at step {at_step}"):
                lab.record(at_step, model, D_module, objective)

    def save_checkpoint(at_step: int) -> Path:
        with PluginFault(record, "saving its state"):
            tensors, state_meta = _collect_state(
                accelerator, G_module, D_module, ema, opt_g, opt_d, objective, latent_gen, world
            )
        if bad_weights := _nonfinite_weights(tensors):
            # never write a checkpoint that would poison every later resume or sample (checked on
            # every process: the weights are the same everywhere, so all of them stop together)
            raise NonFiniteLoss(_nonfinite_message(at_step, f"the {bad_weights} weights", rundir))
        if not accelerator.is_main_process:
            return rundir.last
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
        return path

    try:
        metrics_file = open(rundir.metrics, "a", encoding="utf-8") if accelerator.is_main_process else None
    except OSError as exc:
        raise _write_error(rundir, rundir.metrics, exc) from None
    progress = Progress(run.train.steps, step, enabled=show_progress and accelerator.is_main_process, title=run.family)
    n_critic = max(1, int(getattr(objective, "n_critic", 1)))
    nonfinite = 0
    last_terms: dict[str, torch.Tensor] = {}
    t0 = time.perf_counter()
    start_step, start_consumed = step, stream.consumed
    stopped_by = None
    last_saved_step = step if resume else -1

    try:
        with stop:
            while step < run.train.steps:
                # also a signal that came during setup; with several processes all stop at the same step
                if _any_process(stop.signal_name is not None, world, device):
                    stopped_by = stop.signal_name or "SIGTERM"
                    break
                with PluginFault(record, f"training step {step}"):
                    objective.begin_step(step, G_module, D_module)
                    s = None
                    skip = False
                    for _ in range(n_critic):
                        real, labels = stream.next()
                        s = Step(
                            index=step, real=real, labels=labels, G=G_run, D=D_run, z_dim=z_dim,
                            num_classes=num_classes, latent_generator=latent_gen, grad_scale=grad_scale(),
                            autocast=accelerator.autocast,
                        )
                        opt_d.zero_grad(set_to_none=True)
                        d_terms = objective.d_loss(s)
                        if not _finite_everywhere(d_terms["loss"], world):
                            skip = True
                            bad = _first_bad(d_terms, "D")
                            break
                        accelerator.backward(d_terms["loss"])
                        opt_d.step()
                        objective.after_d_step(s)
                    if not skip:
                        # D's weights get no gradient in the G step; freezing them skips that work
                        D_module.requires_grad_(False)
                        s.D = D_module
                        opt_g.zero_grad(set_to_none=True)
                        g_terms = objective.g_loss(s)
                        if _finite_everywhere(g_terms["loss"], world):
                            accelerator.backward(g_terms["loss"])
                            opt_g.step()
                            objective.after_g_step(s)
                        else:
                            skip = True
                            bad = _first_bad(g_terms, "G")
                        D_module.requires_grad_(True)
                    if skip:
                        nonfinite += 1
                        opt_d.zero_grad(set_to_none=True)
                        opt_g.zero_grad(set_to_none=True)
                        s.cache.clear()
                        if nonfinite > run.train.max_nonfinite:
                            raise NonFiniteLoss(_nonfinite_message(step, bad, rundir))
                        progress.log(f"step {step}: skipped, {bad} not finite ({nonfinite}/{run.train.max_nonfinite})")
                        step += 1
                        continue
                    if not _weights_finite(G_module, step):
                        raise NonFiniteLoss(_nonfinite_message(step, "the generator weights", rundir))
                if ema is not None:
                    ema.update(G_module, step=step, batch_size=run.train.batch_size)
                step += 1
                last_terms = {f"d/{k}": v for k, v in d_terms.items()} | {f"g/{k}": v for k, v in g_terms.items()}

                if step % run.train.log_every == 0 or step == run.train.steps:
                    terms = {k: float(v.detach().float().item()) for k, v in last_terms.items()}
                    elapsed = time.perf_counter() - t0
                    rate = (stream.consumed - start_consumed) / elapsed if elapsed > 0 else 0.0
                    if metrics_file is not None:
                        line = {"step": step, "images_seen": stream.consumed, "seconds": round(elapsed, 3),
                                "images_per_second": round(rate, 2), **terms}
                        try:
                            # one write per line, flushed: a kill can cut only the last line short
                            metrics_file.write(json.dumps(line) + "\n")
                            metrics_file.flush()
                        except OSError as exc:
                            raise _write_error(rundir, rundir.metrics, exc) from None
                    progress.update(step, terms)
                else:
                    progress.update(step)
                if accelerator.is_main_process and run.train.sample_every and step % run.train.sample_every == 0:
                    save_samples(step)
                if run.train.checkpoint_every and step % run.train.checkpoint_every == 0:
                    save_checkpoint(step)
                    last_saved_step = step
            if last_saved_step != step:
                save_checkpoint(step)
            if accelerator.is_main_process and (not run.train.sample_every or step % run.train.sample_every):
                save_samples(step)
            if lab is not None:
                try:
                    lab.write()
                except OSError as exc:
                    raise _write_error(rundir, rundir.root / "lab.gif", exc) from None
    finally:
        progress.close()
        if metrics_file is not None:
            metrics_file.close()
    accelerator.wait_for_everyone()
    seconds = time.perf_counter() - t0
    return TrainResult(
        run_dir=rundir.root, last_checkpoint=rundir.last, step=step, images_seen=stream.consumed, seconds=seconds,
        images_per_second=(stream.consumed - start_consumed) / seconds if seconds > 0 else 0.0,
        stopped_by=stopped_by,
    )


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
        if network in ("G", "D", "G_ema") and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            return {"G": "generator", "D": "discriminator", "G_ema": "EMA generator"}[network]
    return ""


def _finite(loss: torch.Tensor) -> bool:
    return bool(torch.isfinite(loss.detach()).all())


def _any_process(flag: bool, world: int, device: torch.device) -> bool:
    """Whether ``flag`` is set on any process (a signal may reach the processes at different steps)."""
    if world == 1:
        return flag
    import torch.distributed as dist

    value = torch.tensor([int(flag)], dtype=torch.int32, device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def _finite_everywhere(loss: torch.Tensor, world: int) -> bool:
    """Whether the loss is finite on every process: all must skip a bad step together, or DDP waits forever."""
    ok = torch.isfinite(loss.detach()).all().to(torch.int32).reshape(1)
    if world > 1:
        import torch.distributed as dist

        dist.all_reduce(ok, op=dist.ReduceOp.MIN)
    return bool(ok.item())


def _first_bad(terms: dict[str, torch.Tensor], side: str) -> str:
    for name, value in terms.items():
        if name != "loss" and not _finite(value):
            return f"the {side} loss term {name!r}"
    return f"the {side} loss"


def _weights_finite(module: torch.nn.Module, step: int) -> bool:
    # a cheap periodic guard; losses are checked every step
    if step % 100:
        return True
    return all(bool(torch.isfinite(p).all()) for p in module.parameters())


def _collect_state(accelerator, G, D, ema, opt_g, opt_d, objective, latent_gen, world):
    tensors: dict[str, torch.Tensor] = {}
    tensors.update({f"G.{k}": v for k, v in G.state_dict().items()})
    tensors.update({f"D.{k}": v for k, v in D.state_dict().items()})
    if ema is not None:
        tensors.update({f"G_ema.{k}": v for k, v in ema.model.state_dict().items()})
    g_tensors, g_meta = optimizer_state(opt_g.optimizer if hasattr(opt_g, "optimizer") else opt_g, "state.opt_g")
    d_tensors, d_meta = optimizer_state(opt_d.optimizer if hasattr(opt_d, "optimizer") else opt_d, "state.opt_d")
    tensors.update(g_tensors)
    tensors.update(d_tensors)
    tensors.update({f"state.objective.{k}": v for k, v in objective.state_tensors().items()})
    rng = {"torch": torch.get_rng_state(), "latents": generator_state(latent_gen).cpu()}
    if torch.cuda.is_available() and accelerator.device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(accelerator.device)
    for name, value in rng.items():
        value = value.to(accelerator.device)
        gathered = accelerator.gather(value.unsqueeze(0)) if world > 1 else value.unsqueeze(0)
        for r in range(gathered.shape[0]):
            tensors[f"state.rng.{name}.{r}"] = gathered[r].cpu()
    scaler = accelerator.scaler
    meta: dict[str, Any] = {"opt_g": g_meta, "opt_d": d_meta}
    if scaler is not None:
        meta["scaler"] = {k: v for k, v in scaler.state_dict().items()
                          if not isinstance(v, torch.Tensor)}
    return tensors, meta
