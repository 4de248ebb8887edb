"""Exponential moving average of the generator's weights, matched by name."""
from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """``G_ema = β·G_ema + (1−β)·G``; β from a half-life in images (StyleGAN2's convention) or a fixed decay.

    ``rampup`` r (stylegan2-ada-pytorch's ``ema_rampup``): the half-life is at most r × the images
    seen before the step, so the average forgets the random start quickly and reaches its full
    half-life after ``half_life / r`` images (0.05: 20 half-lives).

    Parameters are paired by name, so a generator that grows keeps the averages of its
    existing layers (:meth:`follow`). Buffers are copied from G (``buffers="copy"``:
    running statistics, a mapping network's w_avg, as NVlabs do) or averaged like the
    weights (``"average"``, floating-point buffers only; integer counters are copied).
    """

    def __init__(
        self, generator: nn.Module, *, half_life_kimg: float, decay: float | None = None, start_step: int = 0,
        buffers: str = "copy", rampup: float | None = None,
    ) -> None:
        if buffers not in ("copy", "average"):
            raise ValueError(f"EMA buffers must be 'copy' or 'average', got {buffers!r}")
        self.model = copy.deepcopy(generator).eval().requires_grad_(False)
        self.half_life_images = half_life_kimg * 1000.0
        self.decay = decay
        self.rampup = rampup
        self.start_step = start_step
        self.buffers = buffers
        self._pair(generator)

    def _pair(self, generator: nn.Module) -> None:
        ema_params = dict(self.model.named_parameters())
        ema_buffers = dict(self.model.named_buffers())
        pairs = [(ema_params[name], p) for name, p in generator.named_parameters()]
        buffer_pairs = [(ema_buffers[name], b) for name, b in generator.named_buffers()]
        self._params = [e for e, _ in pairs], [p for _, p in pairs]
        self._float_buffers = [(e, b) for e, b in buffer_pairs if e.is_floating_point()]
        self._other_buffers = [(e, b) for e, b in buffer_pairs if not e.is_floating_point()]
        self._signature = _signature(generator)

    def follow(self, generator: nn.Module) -> bool:
        """After ``generator`` gained layers: give the EMA copy the same structure, keeping the
        averages of the layers it had and starting the new ones from G's values. True if it changed.

        Buffers that are copied (``buffers="copy"``) come from G as they are now: a growing
        network's fade-in α, for one, has just been reset for the new block, and the old copy's
        α = 1 would show the untrained block at full weight until the next update."""
        if _signature(generator) == self._signature:
            return False
        old = dict(self.model.named_parameters())
        if self.buffers == "average":
            old.update((name, b) for name, b in self.model.named_buffers() if b.is_floating_point())
        model = copy.deepcopy(generator).eval().requires_grad_(False)
        with torch.no_grad():
            for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
                if name in old and old[name].shape == tensor.shape:
                    tensor.copy_(old[name])
        self.model = model
        self._pair(generator)
        return True

    def beta(self, batch_size: int, images_seen: int | None = None) -> float:
        if self.decay is not None:
            return self.decay
        half_life = self.half_life_images
        if self.rampup is not None and images_seen is not None:
            half_life = min(half_life, images_seen * self.rampup)
        return 0.5 ** (batch_size / max(half_life, 1e-8))

    @torch.no_grad()
    def update(self, generator: nn.Module, *, step: int, batch_size: int, images_seen: int | None = None) -> None:
        """One step's average; ``images_seen``: the images before this step (for the ramp-up)."""
        beta = 0.0 if step < self.start_step else self.beta(batch_size, images_seen)
        ema_params, params = self._params
        if beta == 0.0:
            torch._foreach_copy_(ema_params, params)
        else:
            torch._foreach_lerp_(ema_params, params, 1.0 - beta)
        for ema_buffer, buffer in self._other_buffers:
            ema_buffer.copy_(buffer)
        for ema_buffer, buffer in self._float_buffers:
            if self.buffers == "average" and beta > 0.0:
                ema_buffer.lerp_(buffer, 1.0 - beta)
            else:
                ema_buffer.copy_(buffer)


def _signature(module: nn.Module) -> tuple:
    return tuple((name, tuple(t.shape)) for name, t in [*module.named_parameters(), *module.named_buffers()])
