"""Continue a run from its checkpoint, exactly: weights, optimizers, EMA, RNG and data position."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from gancli import checkpoint as ckpt_io
from gancli.config import RunConfig
from gancli.errors import GancliError
from gancli.train.state import load_optimizer_state

# train.* settings that change the maths of a step; the rest (steps, logging, sampling,
# checkpointing, workers) may change between a run and its continuation
STEP_DEFINING_TRAIN_KEYS = ("batch_size", "precision", "seed", "ema", "ema_half_life_kimg", "ema_start_step")


def check_compatible(ckpt: ckpt_io.Checkpoint, run: RunConfig, spec) -> None:
    """Refuse to continue a run with a different family, plugin major version or architecture."""
    if ckpt.family != run.family:
        raise GancliError(f"{ckpt.path} is a {ckpt.family!r} run; the command trains {run.family!r}")
    from gancli.plugins import get_record

    record = get_record(run.family)
    if record.version.split(".")[0] != ckpt.metadata["gancli.plugin.version"].split(".")[0]:
        raise GancliError(
            f"{ckpt.path} was written by {ckpt.plugin}; installed is {record.label} (another major version); "
            f"install the matching plugin version to resume"
        )
    saved = ckpt.config
    differences = []
    for key, value in (saved.get("model") or {}).items():
        if run.model.get(key) != value:
            differences.append(f"model.{key} ({value!r} → {run.model.get(key)!r})")
    for key in STEP_DEFINING_TRAIN_KEYS:
        if (saved.get("train") or {}).get(key) != getattr(run.train, key):
            differences.append(f"train.{key} ({saved['train'].get(key)!r} → {getattr(run.train, key)!r})")
    saved_spec = ckpt.spec
    for field in ("kind", "channels", "resolution", "num_classes", "dim"):
        if getattr(saved_spec, field) != getattr(spec, field):
            differences.append(f"data {field} ({getattr(saved_spec, field)} → {getattr(spec, field)})")
    if differences:
        raise GancliError(
            "cannot resume with different settings: " + ", ".join(differences)
            + "; resume with the run's own settings or start a new run with another --out"
        )


def restore(
    path: Path, *, run: RunConfig, spec, G, D, ema, opt_g, opt_d, objective, latent_gen, rank: int, world: int
) -> tuple[int, int]:
    """Load everything from ``path``; returns (step, images consumed)."""
    ckpt = ckpt_io.read(path)
    check_compatible(ckpt, run, spec)
    state = ckpt.state
    if state.get("world_size", 1) != world:
        raise GancliError(
            f"{path} was trained with {state.get('world_size', 1)} processes, this run has {world}; "
            f"resume with the same number of processes"
        )
    _load_module(G, ckpt.tensors("G."), path, "generator")
    _load_module(D, ckpt.tensors("D."), path, "discriminator")
    if ema is not None:
        if not ckpt.has("G_ema."):
            raise GancliError(f"{path} has no EMA weights; resume without train.ema")
        _load_module(ema.model, ckpt.tensors("G_ema."), path, "EMA generator")
    states = ckpt.tensors("state.")
    load_optimizer_state(opt_g, "opt_g", states, state["opt_g"])
    load_optimizer_state(opt_d, "opt_d", states, state["opt_d"])
    objective.load_state_tensors({k[len("objective.") :]: v for k, v in states.items() if k.startswith("objective.")})
    torch.set_rng_state(states[f"rng.torch.{rank}"])
    latent_gen.set_state(states[f"rng.latents.{rank}"].to(torch.uint8))
    if f"rng.cuda.{rank}" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state(states[f"rng.cuda.{rank}"])
    return ckpt.step, int(state.get("consumed", ckpt.images_seen))


def _load_module(module: torch.nn.Module, tensors: dict[str, Any], path: Path, what: str) -> None:
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise GancliError(f"{path}: the {what} weights do not fit this model ({first})") from None


def resume_tree(path: Path) -> dict[str, Any]:
    """The config of the run at ``path`` as a recipe tree, the base layer of a resumed command."""
    ckpt = ckpt_io.read(path)
    tree = json.loads(json.dumps(ckpt.config))
    return tree
