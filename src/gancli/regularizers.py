"""Regularizers that families compose into their objectives.

Gradient-based penalties are computed in fp32 whatever the autocast mode, following
the PyTorch AMP recipe: gradients are taken of the (possibly loss-scaled) critic
output, unscaled inside the graph, and the norm is taken in fp32.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor

Critic = Callable[[Tensor], Tensor]


def _input_gradients(critic: Critic, inputs: Tensor, grad_scale: float) -> Tensor:
    inputs = inputs.detach().requires_grad_(True)
    out = critic(inputs)
    (grads,) = torch.autograd.grad(
        outputs=out.float().sum() * grad_scale, inputs=inputs, create_graph=True
    )
    return grads.float() / grad_scale


def gradient_penalty(
    critic: Critic,
    real: Tensor,
    fake: Tensor,
    *,
    center: float = 1.0,
    grad_scale: float = 1.0,
    generator: Optional[torch.Generator] = None,
) -> Tensor:
    """WGAN-GP: E[(‖∇f(x̂)‖₂ − center)²], x̂ = εx + (1−ε)G(z), ε ~ U[0,1] per example."""
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    eps = torch.rand(shape, device=real.device, dtype=torch.float32, generator=generator)
    mixed = eps * real.detach().float() + (1.0 - eps) * fake.detach().float()
    grads = _input_gradients(critic, mixed.to(real.dtype), grad_scale)
    # eps inside the root keeps the double-backward finite where a gradient is exactly zero
    norms = (grads.flatten(1).square().sum(dim=1) + 1e-12).sqrt()
    return (norms - center).square().mean()


def r1_penalty(critic: Critic, real: Tensor, *, grad_scale: float = 1.0) -> Tensor:
    """R1 (Mescheder et al. 2018): E[‖∇D(x)‖²] on real data; multiply by γ/2 yourself."""
    grads = _input_gradients(critic, real, grad_scale)
    return grads.flatten(1).square().sum(dim=1).mean()


def clip_weights_(module: torch.nn.Module, bound: float) -> None:
    """WGAN weight clipping: every parameter into [-bound, bound], in place."""
    with torch.no_grad():
        for p in module.parameters():
            p.clamp_(-bound, bound)
