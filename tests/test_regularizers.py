"""Regularizers against numbers that do not come from gancli: closed forms and a reference written here.

R1 (Mescheder et al. 2018) is E‖∇D(x)‖² over real examples; WGAN-GP (Gulrajani et al. 2017) is
E(‖∇D(x̂)‖ − 1)² at x̂ = εx + (1 − ε)G(z); BigGAN's orthogonal penalty (Brock et al. 2019, §3.1) is
Σ ‖W Wᵀ ⊙ (1 − I)‖²_F. Two critics have input gradients known in closed form:

* linear, D(x) = w·x + b: ∇D = w for every input, so R1 = ‖w‖² and the GP is (‖w‖ − center)²;
* quadratic, D(x) = ½‖x‖²: ∇D(x) = x, so R1 = mean ‖x‖² and the GP depends on where x̂ lies.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gancli.regularizers import gradient_penalty, orthogonal_penalty, r1_penalty, scored_r1_penalty


class Linear(nn.Module):
    """D(x) = w·x + b on the flattened input, one score per example."""

    def __init__(self, w: list[float], b: float = 0.7) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))
        self.b = nn.Parameter(torch.tensor(b))

    def forward(self, x):
        return x.flatten(1) @ self.w + self.b


class HalfSquaredNorm(nn.Module):
    """D(x) = ½‖x‖² per example: its input gradient is x itself."""

    def forward(self, x):
        return 0.5 * x.flatten(1).square().sum(dim=1)


def _conv_critic() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(4 * 8 * 8, 1))


def _reference_r1(critic: nn.Module, real: torch.Tensor) -> torch.Tensor:
    """R1 from its definition, by a forward of its own (not gancli's helper): mean over examples of ‖∂D/∂x‖²."""
    x = real.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return torch.stack([g.pow(2).sum() for g in grad]).mean()


# ------------------------------------------------------------------ R1


def test_r1_of_a_linear_critic_is_the_squared_weight_norm_for_every_example():
    critic = Linear([1.0, 2.0, 2.0, 4.0])  # ‖w‖² = 1 + 4 + 4 + 16 = 25
    real = torch.randn(5, 1, 2, 2, generator=torch.Generator().manual_seed(1)) * 3
    assert r1_penalty(critic, real).item() == pytest.approx(25.0, rel=1e-6)
    penalty, out = scored_r1_penalty(critic, real)
    assert penalty.item() == pytest.approx(25.0, rel=1e-6)
    expected_out = real.flatten(1) @ torch.tensor([1.0, 2.0, 2.0, 4.0]) + 0.7
    assert torch.allclose(out, expected_out)


def test_r1_of_the_half_squared_norm_is_the_mean_squared_norm_of_the_reals():
    real = torch.tensor([[1.0, 2.0], [3.0, 0.0], [0.0, -1.0]])  # ‖x‖² = 5, 9, 1
    assert r1_penalty(HalfSquaredNorm(), real).item() == pytest.approx((5 + 9 + 1) / 3, rel=1e-6)
    assert scored_r1_penalty(HalfSquaredNorm(), real)[0].item() == pytest.approx(5.0, rel=1e-6)


def test_r1_matches_a_two_pass_autograd_reference_on_a_conv_critic():
    critic, real = _conv_critic(), torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    reference = _reference_r1(critic, real)
    assert reference.item() > 0
    assert r1_penalty(critic, real).item() == pytest.approx(reference.item(), rel=1e-5)
    penalty, out = scored_r1_penalty(critic, real)
    assert penalty.item() == pytest.approx(reference.item(), rel=1e-5)
    assert torch.allclose(out, critic(real))


@pytest.mark.parametrize("fused", [False, True])
def test_r1_gives_the_weights_the_gradients_of_the_two_pass_reference(fused):
    """D's weight gradients of loss + 5·R1: gancli's (fused or not) against a separate loss pass plus the
    reference's own pass; R1 must be differentiable through the input gradient (create_graph)."""
    real = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    gradients = []
    for use_gancli in (False, True):
        critic = _conv_critic()
        if not use_gancli:
            real_out, penalty = critic(real), _reference_r1(critic, real)
        elif fused:
            penalty, real_out = scored_r1_penalty(critic, real)
        else:
            real_out, penalty = critic(real), r1_penalty(critic, real)
        (F.softplus(-real_out).mean() + 5.0 * penalty).backward()
        gradients.append([p.grad.clone() for p in critic.parameters()])
    for reference, ours in zip(*gradients):
        assert torch.allclose(ours, reference, rtol=1e-5, atol=1e-7)


def test_r1_gradient_of_the_linear_critic_pushes_w_by_twice_itself():
    """∂‖w‖²/∂w = 2w: the penalty reaches the weights with the right magnitude, not just its value."""
    critic = Linear([3.0, 4.0])
    r1_penalty(critic, torch.randn(4, 2)).backward()
    assert torch.allclose(critic.w.grad, torch.tensor([6.0, 8.0]))
    assert critic.b.grad is None or critic.b.grad.abs().item() == 0.0


# ------------------------------------------------------------------ WGAN-GP


@pytest.mark.parametrize("w, norm", [([3.0, 4.0], 5.0), ([0.3, 0.4], 0.5), ([0.6, 0.8], 1.0)])
def test_gradient_penalty_of_a_linear_critic_is_norm_minus_one_squared(w, norm):
    critic = Linear(w)
    expected = (norm - 1.0) ** 2  # 16, 0.25, 0
    for seed in range(3):  # any reals, fakes and mixing weights: the gradient is w everywhere
        g = torch.Generator().manual_seed(seed)
        real, fake = torch.randn(4, 2, generator=g) * 5, torch.randn(4, 2, generator=g) - 7
        eps = torch.rand(4, 1, generator=g)
        assert gradient_penalty(critic, real, fake, eps=eps).item() == pytest.approx(expected, abs=1e-5)
    torch.manual_seed(0)
    assert gradient_penalty(critic, real, fake).item() == pytest.approx(expected, abs=1e-5)  # eps drawn


def test_gradient_penalty_takes_the_norm_per_example_on_images():
    critic = Linear([1.0, 2.0, 2.0, 4.0])  # ‖w‖ = 5 for each example; the whole batch's gradient has 5·√N
    real, fake = torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2)
    eps = torch.rand(4, 1, 1, 1)
    assert gradient_penalty(critic, real, fake, eps=eps).item() == pytest.approx(16.0, rel=1e-5)


def test_gradient_penalty_with_other_centers():
    critic, real, fake = Linear([3.0, 4.0]), torch.randn(3, 2), torch.randn(3, 2)
    eps = torch.rand(3, 1)
    # zero-centered (e.g. Mescheder's GP-0, Thanh-Tung et al.): ‖w‖² = 25
    assert gradient_penalty(critic, real, fake, eps=eps, center=0.0).item() == pytest.approx(25.0, rel=1e-5)
    # ProGAN's target gradient norm γ (here 2): (5 − 2)² = 9
    assert gradient_penalty(critic, real, fake, eps=eps, center=2.0).item() == pytest.approx(9.0, rel=1e-5)


def test_gradient_penalty_is_taken_at_eps_real_plus_one_minus_eps_fake():
    """With D = ½‖x‖² the gradient at x̂ is x̂, so the penalty locates the interpolate.

    Example 1: real (4, 0), fake (0, 0), ε = ¼ → x̂ = (1, 0), ‖x̂‖ = 1, term 0 (ε on the fake would give 3, term 4).
    Example 2: real (0, 0), fake (0, 4), ε = ½ → x̂ = (0, 2), term (2 − 1)² = 1. Mean: ½.
    """
    real = torch.tensor([[4.0, 0.0], [0.0, 0.0]])
    fake = torch.tensor([[0.0, 0.0], [0.0, 4.0]])
    eps = torch.tensor([0.25, 0.5]).view(2, 1)
    assert gradient_penalty(HalfSquaredNorm(), real, fake, eps=eps).item() == pytest.approx(0.5, abs=1e-6)


def test_gradient_penalty_reaches_the_critics_weights():
    """For D = w·x + b the penalty (‖w‖ − 1)² has gradient 2(‖w‖ − 1)·w/‖w‖: (8/5)·(3, 4) at w = (3, 4)."""
    critic = Linear([3.0, 4.0])
    gradient_penalty(critic, torch.randn(4, 2), torch.randn(4, 2), eps=torch.rand(4, 1)).backward()
    assert torch.allclose(critic.w.grad, torch.tensor([4.8, 6.4]), rtol=1e-5)


# ------------------------------------------------------------------ BigGAN's orthogonal penalty


def _module_with(linear_weight, conv_weight) -> nn.Module:
    m = nn.Module()
    m.fc = nn.Linear(3, 2)
    m.conv = nn.Conv2d(1, 2, (1, 2))
    with torch.no_grad():
        m.fc.weight.copy_(torch.tensor(linear_weight))
        m.conv.weight.copy_(torch.tensor(conv_weight).view(2, 1, 1, 2))
        m.fc.bias.copy_(torch.tensor([1.0, 2.0]))  # vectors are skipped: as (2, 1) they would add 2·(1·2)² = 8
        m.conv.bias.copy_(torch.tensor([1.0, 2.0]))
    return m


def test_orthogonal_penalty_of_hand_computed_matrices():
    """fc W = [[1, 0, 2], [0, 1, 1]]: W Wᵀ = [[5, 2], [2, 2]], off-diagonal squares 2·2² = 8
    (Wᵀ W would give 10, with the diagonal 8 + 25 + 4 = 37).
    conv W (2, 1, 1, 2) as (2, 2) = [[1, 2], [3, 4]]: W Wᵀ = [[5, 11], [11, 25]], 2·11² = 242."""
    m = _module_with([[1.0, 0.0, 2.0], [0.0, 1.0, 1.0]], [[1.0, 2.0], [3.0, 4.0]])
    assert orthogonal_penalty(m).item() == pytest.approx(8.0 + 242.0, rel=1e-6)
    assert orthogonal_penalty(m, exclude=(m.fc.weight,)).item() == pytest.approx(242.0, rel=1e-6)
    m.conv.weight.requires_grad_(False)  # frozen weights are not the optimizer's to change
    assert orthogonal_penalty(m).item() == pytest.approx(8.0, rel=1e-6)


def test_orthogonal_penalty_is_zero_for_orthogonal_rows_of_any_norm():
    # rows (2, 2, 0), (0.5, −0.5, 0) are orthogonal but not of unit norm; the conv's rows (3, 0), (0, 0.25) too
    m = _module_with([[2.0, 2.0, 0.0], [0.5, -0.5, 0.0]], [[3.0, 0.0], [0.0, 0.25]])
    assert orthogonal_penalty(m).item() == 0.0
    assert orthogonal_penalty(nn.Module()).item() == 0.0  # no matrices at all


def test_orthogonal_penalty_gradient_is_four_times_off_diagonal_gram_times_w():
    """The docstring's 4·((W Wᵀ) ⊙ (1 − I))·W, worked out: W = [[1, 2], [3, 4]], off-diagonal gram
    [[0, 11], [11, 0]], times W = [[33, 44], [11, 22]], times 4 = [[132, 176], [44, 88]]."""
    m = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        m.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    orthogonal_penalty(m).backward()
    assert torch.allclose(m.weight.grad, torch.tensor([[132.0, 176.0], [44.0, 88.0]]))



def test_orthogonal_penalty_of_a_tall_matrix_by_hand_and_against_the_full_gram():
    """W = [[1, 0], [0, 1], [1, 1]] (3 × 2, taller than wide: the small-Gram identity).
    W Wᵀ = [[1, 0, 1], [0, 1, 1], [1, 1, 2]]: off-diagonal squares 2·(0² + 1² + 1²) = 4."""
    m = nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        m.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    assert orthogonal_penalty(m).item() == pytest.approx(4.0, rel=1e-6)
    # a random tall weight: value and gradient as the full W Wᵀ gives them, 4·((W Wᵀ) ⊙ (1 − I))·W
    torch.manual_seed(0)
    tall = nn.Linear(8, 40, bias=False)
    penalty = orthogonal_penalty(tall)
    penalty.backward()
    w = tall.weight.detach()
    gram = w @ w.t()
    off = gram - torch.diag(torch.diagonal(gram))
    assert penalty.item() == pytest.approx(off.square().sum().item(), rel=1e-5)
    assert torch.allclose(tall.weight.grad, 4 * off @ w, rtol=1e-4, atol=1e-5)
