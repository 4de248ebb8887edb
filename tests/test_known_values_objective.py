"""AdversarialObjective's D and G losses and lazy regularization, on networks whose outputs are known.

D is linear, D(x) = w·x + b with w = (3, 4), so its input gradient is w everywhere (‖w‖ = 5, R1 = 25, WGAN-GP
term (5 − 1)² = 16); G ignores z and returns one fixed point, so every score is a hand-computable number.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gancli.objective import AdversarialObjective, OptimizerSettings, Step, lazy_regularization

LN3 = math.log(3.0)
LN8_3 = math.log(8.0 / 3.0)


class LinearCritic(nn.Module):
    def __init__(self, b: float) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([3.0, 4.0]))
        self.b = nn.Parameter(torch.tensor(b))

    def forward(self, x, y=None):
        return x.flatten(1) @ self.w + self.b


class FixedPoint(nn.Module):
    """G(z) = p for every z."""

    def __init__(self, point: tuple[float, float]) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor(point))

    def forward(self, z, y=None):
        return self.p.expand(z.shape[0], 2)


def step(G, D, real) -> Step:
    return Step(index=0, real=real, labels=None, G=G, D=D, z_dim=3, num_classes=0, seed=0)


def wasserstein_case():
    """real (1, 0), (0, 1): D = 4, 5 (mean 4.5, mean square 20.5); fake (−1, −1): D = −6."""
    return FixedPoint((-1.0, -1.0)), LinearCritic(b=1.0), torch.tensor([[1.0, 0.0], [0.0, 1.0]])


def logistic_case():
    """b = 0; reals (ln 3 / 3, 0) and (0, ln 3 / 4): logit ln 3, D = ¾; the fake at the origin: logit 0, D = ½.
    D loss: −log ¾ − log(1 − ½) = ln 4/3 + ln 2 = ln 8/3."""
    real = torch.tensor([[LN3 / 3, 0.0], [0.0, LN3 / 4]])
    return FixedPoint((0.0, 0.0)), LinearCritic(b=0.0), real


def test_wgan_gp_d_loss_with_drift_on_known_scores():
    G, D, real = wasserstein_case()
    objective = AdversarialObjective(loss="wasserstein", gradient_penalty=10.0, drift=0.001)
    terms = objective.d_loss(step(G, D, real))
    assert terms["adv"].item() == pytest.approx(-6.0 - 4.5)  # E D(G(z)) − E D(x)
    assert terms["wdist"].item() == pytest.approx(10.5)
    assert terms["gp"].item() == pytest.approx(16.0, rel=1e-5)
    assert terms["drift"].item() == pytest.approx(20.5)  # ProGAN's ε_drift·E D(x)²: (16 + 25)/2
    assert terms["loss"].item() == pytest.approx(-10.5 + 10.0 * 16.0 + 0.001 * 20.5, rel=1e-6)


def test_wasserstein_and_hinge_g_losses_on_known_scores():
    for loss in ("wasserstein", "hinge"):
        G, D, real = wasserstein_case()
        objective = AdversarialObjective(loss=loss)
        assert objective.g_loss(step(G, D, real))["loss"].item() == pytest.approx(6.0)  # −E D(G(z))


def test_hinge_d_loss_on_known_scores():
    G, D, real = wasserstein_case()
    G.p.data = torch.tensor([0.0, -0.5])  # D(G(z)) = −1: max(0, 1 − 1) = 0; reals 4, 5: max(0, 1 − D) = 0
    terms = AdversarialObjective(loss="hinge").d_loss(step(G, D, real))
    assert terms["loss"].item() == pytest.approx(0.0, abs=1e-6)
    D.b.data = torch.tensor(-4.0)  # reals −1, 0: max(0, 1 − D) = 2, 1, mean 1.5
    G.p.data = torch.tensor([1.0, 0.5])  # D(G(z)) = 3 + 2 − 4 = 1: max(0, 1 + 1) = 2
    terms = AdversarialObjective(loss="hinge").d_loss(step(G, D, real))
    assert terms["loss"].item() == pytest.approx(1.5 + 2.0)
    assert terms["wdist"].item() == pytest.approx(-0.5 - 1.0)  # E D(x) − E D(G(z))


def test_nonsaturating_d_loss_with_r1_on_every_step():
    """ln 8/3 from the logits, plus γ/2·R1 = 5·25 (Mescheder et al. 2018, eq. 9 with γ = 10)."""
    G, D, real = logistic_case()
    objective = AdversarialObjective(loss="nonsaturating", r1_gamma=10.0)
    assert [p.name for p in objective.phases()] == ["D", "G"]
    terms = objective.d_loss(step(G, D, real))
    assert terms["adv"].item() == pytest.approx(LN8_3, rel=1e-6)
    assert terms["r1"].item() == pytest.approx(25.0, rel=1e-6)
    assert terms["loss"].item() == pytest.approx(LN8_3 + 0.5 * 10.0 * 25.0, rel=1e-6)


def test_d_loss_with_label_smoothing_and_the_nonsaturating_g_loss():
    G, D, real = logistic_case()
    G.p.data = torch.tensor([LN3 / 3, 0.0])  # now the fake's logit is ln 3 too: D = ¾ everywhere
    objective = AdversarialObjective(loss="nonsaturating", real_label=0.9)
    # real: 0.9·(−log ¾) + 0.1·(−log ¼); fake: −log(1 − ¾) = ln 4
    expected = 0.9 * math.log(4 / 3) + 0.1 * math.log(4) + math.log(4)
    assert objective.d_loss(step(G, D, real))["loss"].item() == pytest.approx(expected, rel=1e-6)
    assert objective.g_loss(step(G, D, real))["loss"].item() == pytest.approx(math.log(4 / 3), rel=1e-6)
    minimax = AdversarialObjective(loss="minimax")
    assert minimax.g_loss(step(G, D, real))["loss"].item() == pytest.approx(math.log(1 / 4), rel=1e-6)


def test_lazy_r1_is_its_own_pass_weighted_by_the_interval():
    """StyleGAN2 (Karras et al. 2020, app. B): R1 every k = 4 steps, its loss times k: ½·10·4·25 = 500."""
    G, D, real = logistic_case()
    objective = AdversarialObjective(loss="nonsaturating", r1_gamma=10.0, r1_interval=4)
    phases = {p.name: p for p in objective.phases()}
    assert list(phases) == ["D", "Dreg", "G"]
    assert phases["Dreg"].interval == 4 and phases["Dreg"].real == "last" and phases["Dreg"].network == "D"
    assert [phases["Dreg"].due(s) for s in range(6)] == [True, False, False, False, True, False]
    terms = objective.d_loss(step(G, D, real))
    assert "r1" not in terms and terms["loss"].item() == pytest.approx(LN8_3, rel=1e-6)
    reg = objective.d_regularization(step(G, D, real))
    assert reg["r1"].item() == pytest.approx(25.0, rel=1e-6)
    assert reg["loss"].item() == pytest.approx(500.0, rel=1e-6)


def test_lazy_regularization_settings_by_hand():
    """c = k/(k + 1); k = 4: c = 0.8. lr 0.002 → 0.0016; β₁ 0.5 → 0.5^0.8 ≈ 0.574349, β₂ 0.99 → 0.99^0.8 ≈ 0.991992
    (stylegan2-ada-pytorch training_loop.py: mb_ratio = reg_interval / (reg_interval + 1))."""
    lr, betas = lazy_regularization(0.002, (0.5, 0.99), 4)
    assert lr == pytest.approx(0.0016, rel=1e-12)
    assert betas[0] == pytest.approx(0.5743492, rel=1e-6)
    assert betas[1] == pytest.approx(0.9919920, rel=1e-6)
    # k = 16 (StyleGAN2's R1 interval): c = 16/17
    lr, betas = lazy_regularization(0.0025, (0.0, 0.99), 16)
    assert lr == pytest.approx(0.0025 * 16 / 17, rel=1e-12) and betas[0] == 0.0
    assert betas[1] == pytest.approx(0.99 ** (16 / 17), rel=1e-12)
    assert lazy_regularization(0.002, (0.5, 0.99), 1) == (0.002, (0.5, 0.99))  # not lazy: unchanged


def test_the_objective_gives_only_ds_optimizer_the_lazy_correction():
    G, D, _ = logistic_case()
    settings = OptimizerSettings(lr_g=0.002, lr_d=0.004, betas=(0.5, 0.99))
    opt_g, opt_d = AdversarialObjective(r1_gamma=10.0, r1_interval=4, optimizer=settings).optimizers(G, D)
    assert opt_g.param_groups[0]["lr"] == pytest.approx(0.002) and opt_g.param_groups[0]["betas"] == (0.5, 0.99)
    assert opt_d.param_groups[0]["lr"] == pytest.approx(0.004 * 0.8)
    assert opt_d.param_groups[0]["betas"] == pytest.approx((0.5 ** 0.8, 0.99 ** 0.8))
    # R1 on every step (interval 1) and lazy R1 without a γ leave D's settings alone
    for objective in (AdversarialObjective(r1_gamma=10.0, optimizer=settings),
                      AdversarialObjective(r1_interval=4, optimizer=settings)):
        _, opt_d = objective.optimizers(G, D)
        assert opt_d.param_groups[0]["lr"] == pytest.approx(0.004) and opt_d.param_groups[0]["betas"] == (0.5, 0.99)
