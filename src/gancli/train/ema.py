"""Exponential moving average of the generator's weights."""
from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """``G_ema = β·G_ema + (1−β)·G``; β from a half-life in images (StyleGAN2's convention) or a fixed decay."""

    def __init__(
        self, generator: nn.Module, *, half_life_kimg: float, decay: float | None = None, start_step: int = 0
    ) -> None:
        self.model = copy.deepcopy(generator).eval().requires_grad_(False)
        self.half_life_images = half_life_kimg * 1000.0
        self.decay = decay
        self.start_step = start_step

    def beta(self, batch_size: int) -> float:
        if self.decay is not None:
            return self.decay
        return 0.5 ** (batch_size / self.half_life_images)

    @torch.no_grad()
    def update(self, generator: nn.Module, *, step: int, batch_size: int) -> None:
        beta = 0.0 if step < self.start_step else self.beta(batch_size)
        ema_params = list(self.model.parameters())
        params = [p.detach() for p in generator.parameters()]
        if beta == 0.0:
            torch._foreach_copy_(ema_params, params)
        else:
            torch._foreach_lerp_(ema_params, params, 1.0 - beta)
        for ema_buffer, buffer in zip(self.model.buffers(), generator.buffers()):
            ema_buffer.copy_(buffer)
