"""Regularizers that families compose into their objectives.

Gradient penalties are taken in full precision: pass a critic that runs D in fp32
(``Step.critic(y)``), so under fp16 the input gradients can neither overflow nor need
the loss scale. The penalty then joins the loss, and the trainer scales that loss for
backward as usual.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor

Critic = Callable[[Tensor], Tensor]


def _input_gradients(critic: Critic, inputs: Tensor) -> Tensor:
    inputs = inputs.detach().float().requires_grad_(True)
    out = critic(inputs)
    (grads,) = torch.autograd.grad(outputs=out.float().sum(), inputs=inputs, create_graph=True)
    return grads.float()


def gradient_penalty(
    critic: Critic,
    real: Tensor,
    fake: Tensor,
    *,
    eps: Optional[Tensor] = None,
    center: float = 1.0,
) -> Tensor:
    """WGAN-GP: E[(‖∇f(x̂)‖₂ − center)²], x̂ = εx + (1−ε)G(z), ε ~ U[0,1] per example.

    ``eps`` (shape (N, 1, ...)) are the mixing weights; drawn from the global RNG when None.
    """
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    if eps is None:
        eps = torch.rand(shape, device=real.device, dtype=torch.float32)
    eps = eps.float().reshape(shape)
    mixed = eps * real.detach().float() + (1.0 - eps) * fake.detach().float()
    grads = _input_gradients(critic, mixed)
    # eps inside the root keeps the double-backward finite where a gradient is exactly zero
    norms = (grads.flatten(1).square().sum(dim=1) + 1e-12).sqrt()
    return (norms - center).square().mean()


def r1_penalty(critic: Critic, real: Tensor) -> Tensor:
    """R1 (Mescheder et al. 2018): E[‖∇D(x)‖²] on real data; multiply by γ/2 yourself."""
    grads = _input_gradients(critic, real)
    return grads.flatten(1).square().sum(dim=1).mean()


def clip_weights_(module: torch.nn.Module, bound: float) -> None:
    """WGAN weight clipping: every parameter into [-bound, bound], in place."""
    with torch.no_grad():
        for p in module.parameters():
            p.clamp_(-bound, bound)
