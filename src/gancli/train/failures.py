"""What a run says when it cannot go on: non-finite values (with the remedies), write errors (with what
survived), and the checks that find them."""
from __future__ import annotations

from pathlib import Path

import torch

from gancli.errors import GancliError
from gancli.train.rundir import RunDir


class NonFiniteLoss(GancliError):
    pass


def last_good(rundir: RunDir) -> str:
    if rundir.last.exists():
        return f"the last good checkpoint is {rundir.last}"
    return "no checkpoint was written yet"


def nonfinite_message(step: int, what: str, rundir: RunDir) -> str:
    return (
        f"step {step}: {what} became non-finite (NaN or inf); {last_good(rundir)}. Try a lower learning rate "
        f"(--set lr=...), full precision (--precision no), a gradient penalty computed in fp32, "
        f"or --max-nonfinite N to skip up to N bad steps"
    )


def write_error(rundir: RunDir, path: Path, exc: OSError) -> GancliError:
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


def nonfinite_weights(tensors: dict[str, torch.Tensor]) -> str:
    """The network ("G", "D" or "G_ema") with a NaN/inf weight, or ""."""
    for name, value in tensors.items():
        network = name.split(".", 1)[0]
        if network in ("G", "D", "G_ema", "D_ema") and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            return {"G": "generator", "D": "discriminator", "G_ema": "EMA generator", "D_ema": "averaged discriminator"}[network]
    return ""


def all_finite(terms: dict[str, torch.Tensor]) -> bool:
    return all(bool(torch.isfinite(v.detach()).all()) for v in terms.values())


def first_bad(terms: dict[str, torch.Tensor], side: str) -> str:
    for name, value in terms.items():
        if name != "loss" and not bool(torch.isfinite(value.detach()).all()):
            return f"the {side} loss term {name!r}"
    if "loss" in terms and not bool(torch.isfinite(terms["loss"].detach()).all()):
        return f"the {side} loss"
    return f"the {side} gradients"


def weights_finite(module: torch.nn.Module, step: int) -> bool:
    # a cheap periodic guard; gradients are checked before every optimizer step
    if step % 100:
        return True
    return all(bool(torch.isfinite(p).all()) for p in module.parameters())
