"""Adversarial losses, written on the discriminator's raw outputs (logits or critic scores).

Each loss gives the discriminator's loss from its outputs on real and on generated
data, and the generator's loss from its outputs on generated data. All are means
over the batch, so they are ready for ``backward``.

``minimax`` is the saturating loss of Goodfellow et al. (2014): G minimizes
log(1 - D(G(z))), whose gradient vanishes when D confidently rejects fakes.
``nonsaturating`` is the -log D(G(z)) variant used in practice. Keep them apart.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


def _bce_with_target(logits: Tensor, target: float) -> Tensor:
    # target * -log σ(x) + (1 - target) * -log(1 - σ(x)), stable in logits
    if target == 1.0:
        return F.softplus(-logits).mean()
    if target == 0.0:
        return F.softplus(logits).mean()
    return (target * F.softplus(-logits) + (1.0 - target) * F.softplus(logits)).mean()


def logistic_d_loss(real: Tensor, fake: Tensor, real_target: float = 1.0) -> Tensor:
    """-E[log D(x)] - E[log(1 - D(G(z)))]; ``real_target`` < 1 is one-sided label smoothing."""
    return _bce_with_target(real, real_target) + _bce_with_target(fake, 0.0)


def minimax_g_loss(fake: Tensor) -> Tensor:
    """E[log(1 - D(G(z)))], the saturating generator loss of the original minimax game."""
    return -F.softplus(fake).mean()


def nonsaturating_g_loss(fake: Tensor) -> Tensor:
    """-E[log D(G(z))]."""
    return F.softplus(-fake).mean()


def wasserstein_d_loss(real: Tensor, fake: Tensor, real_target: float = 1.0) -> Tensor:
    """E[f(G(z))] - E[f(x)]: the negated estimate of the Wasserstein-1 distance."""
    return fake.mean() - real.mean()


def wasserstein_g_loss(fake: Tensor) -> Tensor:
    return -fake.mean()


def hinge_d_loss(real: Tensor, fake: Tensor, real_target: float = 1.0) -> Tensor:
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def least_squares_d_loss(real: Tensor, fake: Tensor, real_target: float = 1.0) -> Tensor:
    """LSGAN with targets real=1 (or the smoothed target), fake=0."""
    return 0.5 * (real - real_target).square().mean() + 0.5 * fake.square().mean()


def least_squares_g_loss(fake: Tensor) -> Tensor:
    return 0.5 * (fake - 1.0).square().mean()


@dataclass(frozen=True)
class AdversarialLoss:
    name: str
    d_loss: Callable[..., Tensor]
    g_loss: Callable[[Tensor], Tensor]
    supports_label_smoothing: bool


LOSSES: dict[str, AdversarialLoss] = {
    "minimax": AdversarialLoss("minimax", logistic_d_loss, minimax_g_loss, True),
    "nonsaturating": AdversarialLoss("nonsaturating", logistic_d_loss, nonsaturating_g_loss, True),
    "wasserstein": AdversarialLoss("wasserstein", wasserstein_d_loss, wasserstein_g_loss, False),
    "hinge": AdversarialLoss("hinge", hinge_d_loss, wasserstein_g_loss, False),
    "least_squares": AdversarialLoss("least_squares", least_squares_d_loss, least_squares_g_loss, True),
}

LOSS_NAMES = tuple(LOSSES)


def get_loss(name: str) -> AdversarialLoss:
    from gancli.errors import GancliError

    try:
        return LOSSES[name]
    except KeyError:
        raise GancliError(f"unknown loss {name!r}; choose one of: {', '.join(LOSSES)}") from None


def wasserstein_estimate(real: Tensor, fake: Tensor) -> Tensor:
    """E[f(x)] - E[f(G(z))], the critic's estimate of the Wasserstein distance (for logging)."""
    return (real.mean() - fake.mean()).detach()
