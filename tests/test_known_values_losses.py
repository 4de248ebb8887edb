"""The adversarial losses (gancli.losses) on logits whose losses are worked out by hand.

D(x) = σ(logit). The logits 0, ln 3 and −ln 3 give D = ½, ¾ and ¼, so every logistic term is a log of a
simple fraction: −log σ(0) = ln 2, −log σ(ln 3) = ln(4/3), −log σ(−ln 3) = ln 4, and
−log(1 − σ(x)) = −log σ(−x). Each case mixes examples so that a mean taken as a sum, a swapped sign or
a dropped term changes the number.
"""
from __future__ import annotations

import math

import pytest
import torch

from gancli import losses

LN2, LN3 = math.log(2.0), math.log(3.0)
LN4_3, LN4 = math.log(4.0 / 3.0), math.log(4.0)


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


def test_logistic_d_loss_at_logits_zero_is_two_ln_two():
    # D = ½ on both sides: −log ½ − log(1 − ½) = 2 ln 2 ≈ 1.386294
    assert losses.logistic_d_loss(t(0.0, 0.0), t(0.0, 0.0)).item() == pytest.approx(1.3862944, rel=1e-6)


def test_logistic_d_loss_on_hand_worked_logits():
    # real ln 3, 0: D = ¾, ½ → −log ¾ = ln 4/3, −log ½ = ln 2; fake −ln 3, 0: D = ¼, ½ → −log ¾, −log ½.
    # Mean of each side: (ln 4/3 + ln 2)/2; together ln 4/3 + ln 2 = ln 8/3 ≈ 0.980829.
    loss = losses.logistic_d_loss(t(LN3, 0.0), t(-LN3, 0.0))
    assert loss.item() == pytest.approx(math.log(8.0 / 3.0), rel=1e-6)
    assert loss.item() == pytest.approx(0.9808293, rel=1e-6)
    # a confident, wrong D: real −ln 3 (D = ¼) and fake ln 3 (D = ¾): −log ¼ − log ¼ = 2 ln 4
    assert losses.logistic_d_loss(t(-LN3), t(LN3)).item() == pytest.approx(2 * LN4, rel=1e-6)


def test_one_sided_label_smoothing_on_hand_worked_logits():
    # real ln 3 with target 0.9: 0.9·(−log ¾) + 0.1·(−log ¼) = 0.9 ln 4/3 + 0.1 ln 4;
    # fake −ln 3 keeps target 0: −log(1 − ¼) = ln 4/3. Total 1.9 ln 4/3 + 0.1 ln 4 ≈ 0.685225
    loss = losses.logistic_d_loss(t(LN3), t(-LN3), real_target=0.9)
    assert loss.item() == pytest.approx(1.9 * LN4_3 + 0.1 * LN4, rel=1e-6)
    assert loss.item() == pytest.approx(0.6852254, rel=1e-6)
    # target 1 is the plain loss
    assert losses.logistic_d_loss(t(LN3), t(-LN3), real_target=1.0).item() == pytest.approx(2 * LN4_3, rel=1e-6)


def test_nonsaturating_g_loss_is_minus_log_d_of_the_fakes():
    # fakes ln 3, 0: −log ¾, −log ½ → (ln 4/3 + ln 2)/2 ≈ 0.490415
    assert losses.nonsaturating_g_loss(t(LN3, 0.0)).item() == pytest.approx((LN4_3 + LN2) / 2, rel=1e-6)
    assert losses.nonsaturating_g_loss(t(-LN3)).item() == pytest.approx(LN4, rel=1e-6)  # D = ¼: −log ¼


def test_minimax_g_loss_is_log_one_minus_d_of_the_fakes():
    # fakes ln 3 (D = ¾) and −ln 3 (D = ¼): log ¼ and log ¾; mean ½ ln(3/16) ≈ −0.836988
    assert losses.minimax_g_loss(t(LN3, -LN3)).item() == pytest.approx(0.5 * math.log(3.0 / 16.0), rel=1e-6)
    assert losses.minimax_g_loss(t(0.0)).item() == pytest.approx(-LN2, rel=1e-6)  # log ½


def test_minimax_saturates_where_nonsaturating_does_not():
    """Goodfellow et al. 2014 §3: for a fake D rejects (logit −10) d/dx log(1 − σ(x)) = −σ(x) ≈ −4.5e-5,
    while d/dx −log σ(x) = −(1 − σ(x)) ≈ −1."""
    x = t(-10.0).requires_grad_(True)
    losses.minimax_g_loss(x).backward()
    assert x.grad.item() == pytest.approx(-1.0 / (1.0 + math.exp(10.0)), rel=1e-4)
    x = t(-10.0).requires_grad_(True)
    losses.nonsaturating_g_loss(x).backward()
    assert x.grad.item() == pytest.approx(-1.0 / (1.0 + math.exp(-10.0)), rel=1e-6)


def test_wasserstein_losses_are_means_of_the_critic_scores():
    real, fake = t(1.0, 2.0, 3.0), t(-1.0, 3.0)  # E f(x) = 2, E f(G(z)) = 1 (batches of different sizes)
    assert losses.wasserstein_d_loss(real, fake).item() == pytest.approx(1.0 - 2.0)
    assert losses.wasserstein_g_loss(fake).item() == pytest.approx(-1.0)
    estimate = losses.wasserstein_estimate(real.requires_grad_(True), fake.requires_grad_(True))
    assert estimate.item() == pytest.approx(2.0 - 1.0) and not estimate.requires_grad  # logged, never trained


def test_hinge_d_loss_on_hand_worked_scores():
    # the case: real 0.5, fake −2 → max(0, 1 − 0.5) + max(0, 1 − 2) = 0.5 + 0
    assert losses.hinge_d_loss(t(0.5), t(-2.0)).item() == pytest.approx(0.5)
    # real 0.5, 2 → 0.5, 0 (mean 0.25); fake −2, 0.5 → 0, 1.5 (mean 0.75); total 1
    assert losses.hinge_d_loss(t(0.5, 2.0), t(-2.0, 0.5)).item() == pytest.approx(1.0)
    # G's hinge loss is −E D(G(z)) (Lim & Ye 2017; Miyato et al. 2018): fakes −2, 0.5 → 0.75
    assert losses.get_loss("hinge").g_loss(t(-2.0, 0.5)).item() == pytest.approx(0.75)


def test_least_squares_losses_on_hand_worked_scores():
    """LSGAN (Mao et al. 2017, eq. 2 with a, b, c = 0, 1, 1): ½E(D(x) − 1)² + ½E D(G(z))², ½E(D(G(z)) − 1)²."""
    real, fake = t(1.0, 3.0), t(0.0, 3.0)
    # ½·mean(0, 4) + ½·mean(0, 9) = 1 + 2.25
    assert losses.least_squares_d_loss(real, fake).item() == pytest.approx(3.25)
    # smoothed real target 0.5: ½·mean(0.25, 6.25) + 2.25 = 1.625 + 2.25
    assert losses.least_squares_d_loss(real, fake, real_target=0.5).item() == pytest.approx(3.875)
    # ½·mean(1, 4)
    assert losses.least_squares_g_loss(fake).item() == pytest.approx(1.25)


@pytest.mark.parametrize(
    "name, d_value, g_value, smoothing",
    [
        # real ln 3, fake −ln 3 for the logistic losses; real 2, fake −3 for the others
        pytest.param("nonsaturating", 2 * LN4_3, LN4, True, id="nonsaturating"),  # G: −log σ(−ln 3) = ln 4
        pytest.param("minimax", 2 * LN4_3, -LN4_3, True, id="minimax"),  # G: log(1 − ¼) = −ln 4/3
        pytest.param("wasserstein", -3.0 - 2.0, 3.0, False, id="wasserstein"),
        pytest.param("hinge", 0.0 + 0.0, 3.0, False, id="hinge"),  # max(0, 1 − 2) + max(0, 1 − 3)
        pytest.param("least_squares", 0.5 * 1 + 0.5 * 9, 0.5 * 16, True, id="least_squares"),
    ],
)
def test_the_registry_pairs_each_name_with_its_losses(name, d_value, g_value, smoothing):
    loss = losses.get_loss(name)
    real, fake = (t(LN3), t(-LN3)) if name in ("nonsaturating", "minimax") else (t(2.0), t(-3.0))
    assert loss.name == name
    assert loss.d_loss(real, fake).item() == pytest.approx(d_value, rel=1e-6)
    assert loss.g_loss(fake).item() == pytest.approx(g_value, rel=1e-6)
    assert loss.supports_label_smoothing is smoothing
