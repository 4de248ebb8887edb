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


def _scored_input_gradients(critic: Critic, inputs: Tensor) -> tuple[Tensor, Tensor]:
    inputs = inputs.detach().float().requires_grad_(True)
    out = critic(inputs).float()
    (grads,) = torch.autograd.grad(outputs=out.sum(), inputs=inputs, create_graph=True)
    return grads.float(), out


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
    grads, _ = _scored_input_gradients(critic, mixed)
    # eps inside the root keeps the double-backward finite where a gradient is exactly zero
    norms = (grads.flatten(1).square().sum(dim=1) + 1e-12).sqrt()
    return (norms - center).square().mean()


def r1_penalty(critic: Critic, real: Tensor) -> Tensor:
    """R1 (Mescheder et al. 2018): E[‖∇D(x)‖²] on real data; multiply by γ/2 yourself."""
    return scored_r1_penalty(critic, real)[0]


def scored_r1_penalty(critic: Critic, real: Tensor) -> tuple[Tensor, Tensor]:
    """R1 and the critic's output on ``real``, both from one forward pass.

    When R1 is taken on every D step, the output serves the loss's real term as well, so D runs
    once on the reals instead of twice (stylegan2-ada-pytorch's fused "Dboth" phase). Gradients
    reach D's weights through both, as with two separate passes.
    """
    grads, out = _scored_input_gradients(critic, real)
    return grads.flatten(1).square().sum(dim=1).mean(), out


def clip_weights_(module: torch.nn.Module, bound: float) -> None:
    """WGAN weight clipping: every parameter into [-bound, bound], in place."""
    with torch.no_grad():
        for p in module.parameters():
            p.clamp_(-bound, bound)


def _off_diagonal_gram_energy(w: Tensor) -> Tensor:
    """‖W Wᵀ ⊙ (1 − I)‖²_F for W of shape (out, fan_in).

    For a tall W (out > fan_in, e.g. BigGAN's first linear layer at 128 px: 24576 × 148, whose
    W Wᵀ alone is 2.4 GB) the same number comes from the small Gram matrix: ‖W Wᵀ‖²_F = ‖Wᵀ W‖²_F,
    and the diagonal of W Wᵀ holds the rows' squared norms, so the sum is ‖Wᵀ W‖²_F − Σ_i ‖w_i‖⁴.
    """
    if w.shape[0] <= w.shape[1]:
        gram = w @ w.t()
        return (gram - torch.diag_embed(torch.diagonal(gram))).square().sum()
    return (w.t() @ w).square().sum() - w.square().sum(dim=1).square().sum()


def orthogonal_penalty(module: torch.nn.Module, *, exclude: tuple = ()) -> Tensor:
    """Σ_W ‖W Wᵀ ⊙ (1 − I)‖²_F over the weights of ``module`` with two or more axes (BigGAN, Brock et al.
    2019, §3.1): the off-diagonal part only, so filters are pushed towards orthogonality but not
    towards unit norm. Each W is reshaped to (out, in·k·k), as BigGAN-PyTorch's ``ortho`` does.
    Parameters in ``exclude`` (e.g. the shared class embedding) are skipped; multiply by β yourself.

    The gradient of this sum is 4·((W Wᵀ) ⊙ (1 − I))·W; BigGAN-PyTorch adds 2·β·(...)·W straight to
    the gradients, so its β corresponds to β/2 here.
    """
    excluded = {id(p) for p in exclude}
    total: Optional[Tensor] = None
    for p in module.parameters():
        if p.dim() < 2 or id(p) in excluded or not p.requires_grad:
            continue
        term = _off_diagonal_gram_energy(p.reshape(p.shape[0], -1).float())
        total = term if total is None else total + term
    if total is None:
        return torch.zeros(())
    return total
