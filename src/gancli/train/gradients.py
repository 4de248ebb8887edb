"""Backward and the optimizer step of one phase repeat: loss scaling, synchronisation, skipping.

With fp16 a GradScaler scales every loss for backward; the step then unscales, lets the
objective's ``after_backward`` hook see true gradients, and skips the step (backing the
scale off) when a gradient overflowed, which is how the scale finds its level. Without
a scaler a step whose gradients are not finite is skipped too, so a bad batch can never
write NaN into the weights. Either way the decision needs one look at the device per
optimizer step; the gradients were averaged over the processes first, so every process
sees the same gradients and takes the same decision without another collective.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
from torch import Tensor


def backward(loss: Tensor, scaler: Optional["torch.amp.GradScaler"]) -> None:
    if scaler is not None:
        scaler.scale(loss).backward()
    else:
        loss.backward()


def gradients_finite(params: Sequence[torch.nn.Parameter]) -> Tensor:
    """A 0-dim bool tensor on the device: every gradient of ``params`` is finite."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.ones((), dtype=torch.bool)
    return torch.isfinite(torch.nn.utils.get_total_norm(grads, foreach=True))


def optimizer_step(
    optimizer: torch.optim.Optimizer,
    params: Sequence[torch.nn.Parameter],
    *,
    scaler: Optional["torch.amp.GradScaler"],
    after_backward: Callable[[], None],
) -> bool:
    """Step ``optimizer`` unless a gradient is not finite; returns whether it stepped.

    Under a scaler the scale is always updated, so a skipped step backs it off.
    """
    if scaler is not None:
        scale = scaler.get_scale()
        scaler.unscale_(optimizer)
        after_backward()
        scaler.step(optimizer)
        scaler.update()
        return scaler.get_scale() >= scale
    after_backward()
    if not bool(gradients_finite(params)):
        return False
    optimizer.step()
    return True
