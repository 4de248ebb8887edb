"""A training checkpoint: the tensors and JSON state every process contributes, and the file that holds them.

Per-process state (random generators, objective state such as labelled pools) is gathered from every
process, so a resume with the same number of processes continues each of them exactly.
"""
from __future__ import annotations

import json
import os
from typing import Any

import torch

import gancli
from gancli import checkpoint as ckpt_io
from gancli.config import RunConfig
from gancli.plugins import API_VERSION
from gancli.train import distributed
from gancli.train.failures import write_error
from gancli.train.rundir import RunDir
from gancli.train.state import optimizer_state


def collect_state(accelerator, G, D, ema, optimizers, objective, world, *, nonfinite: int, d_ema=None, scaler=None,
                  augmentation=None):
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
    if augmentation is not None:
        local.update({f"augment.{k}": v for k, v in augmentation.state_tensors().items()})
    local["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available() and accelerator.device.type == "cuda":
        local["rng.cuda"] = torch.cuda.get_rng_state(accelerator.device)
    for r, values in enumerate(distributed.gather_tensor_dicts(local, world, accelerator.device)):
        tensors.update({f"state.rank.{r}.{k}": v for k, v in values.items()})
    if scaler is not None:
        meta["scaler"] = {k: v for k, v in scaler.state_dict().items() if not isinstance(v, torch.Tensor)}
    return tensors, meta


def checkpoint_metadata(run: RunConfig, record, spec, *, step: int, consumed: int, state: dict, world: int) -> dict[str, str]:
    """The checkpoint header: format, versions, the run's config and data, progress and resume state."""
    return {
        "gancli.format": ckpt_io.FORMAT_VERSION,
        "gancli.version": gancli.__version__,
        "gancli.family": run.family,
        "gancli.plugin.distribution": record.distribution,
        "gancli.plugin.version": record.version,
        "gancli.plugin.api_version": record.family.api_version,
        "gancli.api_version": API_VERSION,
        "gancli.config": json.dumps(run.model_dump(mode="json"), sort_keys=True),
        "gancli.data_spec": spec.to_json(),
        "gancli.step": str(step),
        "gancli.images_seen": str(consumed),
        "gancli.state": json.dumps({**state, "consumed": consumed, "world_size": world}),
    }


def write_checkpoint(rundir: RunDir, step: int, tensors: dict, metadata: dict, *, keep: int, metrics_file=None) -> None:
    """RUN/checkpoints/step-N.safetensors, then last.safetensors pointing at it; older ones pruned to ``keep``."""
    path = rundir.step_checkpoint(step)
    try:
        if metrics_file is not None:
            # metric lines up to a checkpoint are as durable as the checkpoint; later ones are
            # replaced on resume (RunDir.truncate_metrics)
            os.fsync(metrics_file.fileno())
        ckpt_io.save(path, tensors, metadata)
        ckpt_io.atomic_link_or_copy(path, rundir.last)
        rundir.prune_checkpoints(keep)
    except OSError as exc:
        raise write_error(rundir, path, exc) from None
