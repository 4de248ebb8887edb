"""BatchNorm statistics that belong to the network that uses them.

:func:`standing_statistics` (Brock et al. 2019, "standing statistics") re-estimates the
running mean and variance of every BatchNorm layer from many forward passes of the
network itself, averaged with equal weights. gancli uses it for EMA generators, whose
BatchNorm buffers would otherwise be copies of the live generator's (statistics of
another network), and ``gancli sample --standing-stats N`` offers it at sampling time.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def batch_norm_layers(module: nn.Module) -> list[_BatchNorm]:
    return [m for m in module.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


def has_batch_norm(module: nn.Module) -> bool:
    return bool(batch_norm_layers(module))


@torch.no_grad()
def standing_statistics(
    generator: nn.Module,
    *,
    batches: int = 16,
    batch_size: int = 64,
    seed: int = 0,
    device: Optional[torch.device] = None,
    truncation: Optional[float] = None,
) -> int:
    """Replace the BatchNorm running statistics of ``generator`` by their average over
    ``batches`` forward passes of ``batch_size`` random latents (and uniform classes for a
    conditional generator); returns the number of layers updated.

    Only the BatchNorm layers switch to training mode, so nothing else (dropout, a mapping
    network's moving average of w) changes; the weights are untouched. The latents come
    from their own generator seeded with ``seed``, never from the global random state;
    with ``truncation`` T every |z_i| > T is redrawn, so the statistics match samples drawn
    at that truncation (BigGAN-PyTorch re-estimates them for each truncation it samples at).
    """
    layers = batch_norm_layers(generator)
    if not layers:
        return 0
    if device is None:
        device = next(iter(generator.parameters())).device
    z_dim = int(getattr(generator, "z_dim"))
    num_classes = int(getattr(generator, "num_classes", 0) or 0)
    modes = [(layer, layer.training, layer.momentum) for layer in layers]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # a cumulative average: every pass weighs the same
        layer.train()
    g = torch.Generator(device=device).manual_seed(seed)
    try:
        for _ in range(batches):
            z = torch.randn(batch_size, z_dim, generator=g, device=device)
            while truncation is not None and bool((outside := z.abs() > truncation).any()):
                z[outside] = torch.randn(int(outside.sum()), generator=g, device=device)
            y = torch.randint(0, num_classes, (batch_size,), generator=g, device=device) if num_classes else None
            generator(z, y)
    finally:
        for layer, training, momentum in modes:
            layer.momentum = momentum
            layer.train(training)
    return len(layers)
