"""Optimizer construction for objectives: settings, Adam/RMSprop, lazy-regularization corrections, lr decay."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch


@dataclass
class OptimizerSettings:
    name: str = "adam"  # adam | rmsprop
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    eps: float = 1e-8


def lazy_regularization(lr: float, betas: tuple[float, float], interval: int) -> tuple[float, tuple[float, float]]:
    """Adam settings for a network regularized every ``interval`` steps (Karras et al. 2020, app. B):
    lr × c and β ** c with c = k / (k + 1), so the main and regularization steps together
    behave like one step of the original settings."""
    if interval <= 1:
        return lr, tuple(betas)
    c = interval / (interval + 1)
    return lr * c, (betas[0] ** c, betas[1] ** c)


def linear_lr_decay(optimizers, step: int, decay_steps: int, start: int = 0) -> None:
    """Every param group's learning rate at ``step`` of a linear decay that holds the starting rate
    until ``start`` and reaches 0 at step ``decay_steps`` (start 0: the WGAN-GP CIFAR ResNet and SNGAN
    schedules; ``start`` < ``decay_steps``, which AdversarialObjective checks when it is built). Each
    group keeps its starting rate as ``initial_lr``, so the schedule is a function of the step and a
    resumed run continues it."""
    factor = min(1.0, max(0.0, (decay_steps - step) / (decay_steps - start))) if decay_steps else 1.0
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group["lr"] = group.setdefault("initial_lr", group["lr"]) * factor


def make_optimizer(params, settings: OptimizerSettings, lr: float,
                   betas: Optional[tuple[float, float]] = None) -> torch.optim.Optimizer:
    params = [p for p in params if p.requires_grad]
    if settings.name == "adam":
        # foreach is the fast multi-tensor path on every device
        return torch.optim.Adam(params, lr=lr, betas=tuple(betas or settings.betas), eps=settings.eps, foreach=True)
    if settings.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, foreach=True)
    raise ValueError(f"unknown optimizer {settings.name!r}")
