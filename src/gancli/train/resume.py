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

# train.* settings that define what a step computes; the others (steps, logging, sampling,
# checkpointing, workers, max_nonfinite) and the precision (a remedy for NaNs) may change on resume
STEP_DEFINING_TRAIN_KEYS = ("batch_size", "seed", "ema", "ema_half_life_kimg", "ema_decay", "ema_start_step", "ema_rampup",
                            "ema_discriminator", "ema_discriminator_decay")
DATA_SHAPE_FIELDS = ("kind", "channels", "resolution", "num_classes", "dim")


def release_series(version: str) -> str:
    """The part of a version that must match to resume: the major version, or 0.MINOR before 1.0 (semver)."""
    parts = str(version).split(".")
    if parts[0] == "0" and len(parts) > 1:
        return f"0.{parts[1]}"
    return parts[0]


def resumable_model_fields(family: str) -> frozenset[str]:
    """Model settings the family allows to change on resume (its Config's ``resume_may_change``)."""
    from gancli.plugins import PluginFault, get_record

    record = get_record(family)
    with PluginFault(record, "loading its config model"):
        config_model = record.family.load_config_model()
    return frozenset(getattr(config_model, "resume_may_change", ()) or ())


def check_compatible(ckpt: ckpt_io.Checkpoint, run: RunConfig, spec) -> None:
    """Refuse to continue a run with a different family, plugin major version or architecture."""
    if ckpt.family != run.family:
        raise GancliError(
            f"{ckpt.path} is a {ckpt.family!r} run; the command trains {run.family!r}. Resume it as "
            f"{ckpt.family!r} or start a new run with another --out"
        )
    from gancli.plugins import get_record

    record = get_record(run.family)
    saved_version = ckpt.metadata["gancli.plugin.version"]
    if release_series(record.version) != release_series(saved_version):
        raise GancliError(
            f"{ckpt.path} was written by {ckpt.plugin}; installed is {record.label} (another major version); "
            f"install {ckpt.metadata['gancli.plugin.distribution']}=={saved_version} to resume"
        )
    saved = ckpt.config
    may_change = resumable_model_fields(run.family)
    differences = []
    for key, value in (saved.get("model") or {}).items():
        if key not in may_change and run.model.get(key) != value:
            differences.append(f"model.{key} ({value!r} → {run.model.get(key)!r})")
    saved_train = saved.get("train") or {}
    for key in STEP_DEFINING_TRAIN_KEYS:
        if key in saved_train and saved_train[key] != getattr(run.train, key):
            differences.append(f"train.{key} ({saved_train[key]!r} → {getattr(run.train, key)!r})")
    saved_spec = ckpt.spec
    for field in DATA_SHAPE_FIELDS:
        if getattr(saved_spec, field) != getattr(spec, field):
            differences.append(f"data {field} ({getattr(saved_spec, field)} → {getattr(spec, field)})")
    if differences:
        raise GancliError(
            "cannot resume with different settings: " + ", ".join(differences)
            + "; resume with the run's own settings or start a new run with another --out"
        )


def check_resumable_checkpoint(ckpt: ckpt_io.Checkpoint, run: RunConfig, spec) -> None:
    """Refuse checkpoints this trainer cannot continue: older formats, exports, other settings."""
    if ckpt.metadata["gancli.format"] != ckpt_io.FORMAT_VERSION:
        raise GancliError(
            f"{ckpt.path} was written by gancli {ckpt.metadata['gancli.version']} (checkpoint format "
            f"{ckpt.metadata['gancli.format']}): it still samples, evaluates and exports, but its training state "
            f"cannot be resumed by this gancli; start a new run with another --out"
        )
    state = ckpt.state
    if not isinstance(state.get("optimizers"), dict):
        raise GancliError(
            f"{ckpt.path} holds no training state (optimizers, RNG); it is an exported or damaged file — "
            f"resume from a checkpoint that 'gancli train' wrote"
        )
    check_compatible(ckpt, run, spec)


def restore(
    ckpt: ckpt_io.Checkpoint, *, run: RunConfig, G, D, ema, optimizers: dict[str, Any], objective, rank: int,
    world: int, scaler, record, d_ema=None, augmentation=None,
) -> tuple[int, int, int]:
    """Load everything from ``ckpt`` into models already on their device; returns (step, images consumed,
    non-finite steps skipped so far)."""
    from gancli.plugins import PluginFault

    path = ckpt.path
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
    if d_ema is not None:
        if not ckpt.has("D_ema."):
            raise GancliError(f"{path} has no averaged discriminator; resume without train.ema_discriminator")
        _load_module(d_ema.model, ckpt.tensors("D_ema."), path, "averaged discriminator")
    states = ckpt.tensors("state.")
    mine = f"rank.{rank}."
    try:
        for name, module in (("G", G), ("D", D)):
            load_optimizer_state(optimizers[name], module, f"opt.{name}", states, state["optimizers"][name])
        torch.set_rng_state(states[f"{mine}rng.torch"])
        if f"{mine}rng.cuda" in states and torch.cuda.is_available():
            torch.cuda.set_rng_state(states[f"{mine}rng.cuda"])
        consumed = int(state.get("consumed", ckpt.images_seen))
        nonfinite = int(state.get("nonfinite", 0))
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])  # fp16: continue with the loss scale the run had reached
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise GancliError(f"{path}: its training state does not fit this run ({type(exc).__name__}: {exc})") from None
    objective_state = {
        k[len(mine) + len("objective."):]: v for k, v in states.items() if k.startswith(mine + "objective.")
    }
    with PluginFault(record, "restoring its objective state"):
        objective.load_state_tensors(objective_state)
    if augmentation is not None:  # ADA's p and its running statistic (none when the run had no ADA before)
        augmentation.load_state_tensors(
            {k[len(mine) + len("augment."):]: v for k, v in states.items() if k.startswith(mine + "augment.")})
    return ckpt.step, consumed, nonfinite


def read_for_resume(path: Path) -> ckpt_io.Checkpoint:
    """Read a run's last checkpoint; when it is damaged, name the newest intact one to fall back on."""
    try:
        return ckpt_io.read(path)
    except GancliError as exc:
        from gancli.train.rundir import RunDir

        path = Path(path)
        if path.parent.name != "checkpoints":
            raise
        fallback = RunDir(path.parent.parent).newest_intact_checkpoint()
        if fallback is None:
            raise
        raise GancliError(
            f"{exc}. The newest intact checkpoint is {fallback}: copy it over {path.name} "
            f"(cp {fallback} {path}) and --resume again"
        ) from None


def _load_module(module: torch.nn.Module, tensors: dict[str, Any], path: Path, what: str) -> None:
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise GancliError(
            f"{path}: the {what} weights do not fit this model ({first}); the architecture settings differ"
        ) from None


def resume_tree(path: Path) -> dict[str, Any]:
    """The config of the run at ``path`` as a recipe tree, the base layer of a resumed command."""
    ckpt = read_for_resume(path)
    tree = json.loads(json.dumps(ckpt.config))
    return tree
