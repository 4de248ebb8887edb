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
    """A 0-dim bool tensor on the device: every gradient of ``params`` is finite.

    Each gradient's 2-norm is taken in float32: a NaN or inf element makes it non-finite, and no finite
    fp16 gradient overflows it (a norm in fp16 does past 65504; in float32 only elements past ~1e19 do).
    One foreach kernel where ``torch._foreach_norm`` takes a dtype (torch 2.4 on), a norm per gradient
    before; no host sync.
    """
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.ones((), dtype=torch.bool)
    try:
        norms = torch._foreach_norm(grads, 2, dtype=torch.float32)
    except TypeError:  # torch < 2.4
        norms = [torch.linalg.vector_norm(g, dtype=torch.float32) for g in grads]
    return torch.stack(norms).isfinite().all()


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
