"""R1 from one forward pass: the fused form gives the loss, the penalty and D's gradients of two passes."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gancli.regularizers import r1_penalty, scored_r1_penalty


def _critic() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(4 * 8 * 8, 1))


def test_scored_r1_penalty_is_r1_and_the_critics_output():
    critic, real = _critic(), torch.randn(6, 1, 8, 8)
    penalty, out = scored_r1_penalty(critic, real)
    assert torch.allclose(penalty, r1_penalty(critic, real))
    assert torch.allclose(out, critic(real))


def test_one_fused_forward_gives_the_weights_the_gradients_of_two_passes():
    real = torch.randn(6, 1, 8, 8)
    gradients = []
    for fused in (False, True):
        critic = _critic()
        if fused:
            penalty, real_out = scored_r1_penalty(critic, real)
        else:
            real_out, penalty = critic(real), r1_penalty(critic, real)
        (F.softplus(-real_out).mean() + 5.0 * penalty).backward()
        gradients.append([p.grad.clone() for p in critic.parameters()])
    for separate, fused in zip(*gradients):
        assert torch.allclose(separate, fused, rtol=1e-5, atol=1e-7)
