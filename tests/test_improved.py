"""Improved-GAN techniques (Salimans et al. 2016) and the GAN generator-gradient claim."""
from __future__ import annotations

import math

import pytest
import numpy as np
import torch
from torch import nn

from gancli.errors import GancliError
from gancli.improved_losses import (
    ExposesFeatures,
    HistoricalAverage,
    feature_matching_loss,
    ssgan_d_loss,
    ssgan_gan_logit,
    ssgan_supervised_loss,
    ssgan_unsupervised_d_loss,
)
from gancli.losses import logistic_d_loss, minimax_g_loss, nonsaturating_g_loss
from gancli.nn.improved import MinibatchDiscrimination, VirtualBatchNorm, recording_vbn_reference


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# --- minibatch discrimination -------------------------------------------------------------


def test_minibatch_features_reach_their_maximum_when_the_batch_collapses():
    layer = MinibatchDiscrimination(in_features=8, num_kernels=6, kernel_dim=4)
    batch_size = 16
    diverse = torch.randn(batch_size, 8)
    collapsed = diverse[:1].expand(batch_size, 8)

    diverse_out = layer(diverse)
    collapsed_out = layer(collapsed)

    # the input features pass through unchanged; only the appended closeness differs
    assert torch.equal(diverse_out[:, :8], diverse)
    closeness_diverse = diverse_out[:, 8:]
    closeness_collapsed = collapsed_out[:, 8:]
    # every other example is at L1 distance 0: o_b = Σ_{j≠i} exp(0) = n − 1, the maximum
    assert torch.allclose(closeness_collapsed, torch.full_like(closeness_collapsed, batch_size - 1))
    assert (closeness_diverse < batch_size - 1 - 0.5).all()
    assert (closeness_diverse >= 0).all()
    # the same example looks different to the discriminator depending on its batch
    assert not torch.allclose(diverse_out[0], collapsed_out[0])


def test_minibatch_closeness_excludes_the_example_itself():
    layer = MinibatchDiscrimination(in_features=3, num_kernels=2, kernel_dim=2)
    alone = layer(torch.randn(1, 3))
    assert torch.equal(alone[:, 3:], torch.zeros(1, 2))


def test_gradient_penalties_can_be_taken_through_minibatch_discrimination():
    from gancli.regularizers import r1_penalty

    disc = nn.Sequential(MinibatchDiscrimination(4, num_kernels=3, kernel_dim=2), nn.Linear(7, 1))
    penalty = r1_penalty(disc, torch.randn(8, 4))
    penalty.backward()  # needs double backward through the pairwise L1 distances
    # the output bias cannot affect an input gradient; T and the head's weight must
    for weight in (disc[0].T, disc[1].weight):
        assert torch.isfinite(weight.grad).all() and weight.grad.abs().sum() > 0


def test_minibatch_discrimination_lets_a_discriminator_learn_to_reject_collapse():
    torch.manual_seed(1)
    disc = nn.Sequential(MinibatchDiscrimination(2, num_kernels=5, kernel_dim=3, init_std=0.5), nn.Linear(7, 1))
    opt = torch.optim.Adam(disc.parameters(), lr=0.05)
    for _ in range(60):
        diverse = torch.randn(32, 2)
        collapsed = torch.randn(1, 2).expand(32, 2) + 0.01 * torch.randn(32, 2)
        loss = logistic_d_loss(disc(diverse), disc(collapsed))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        diverse_score = torch.sigmoid(disc(torch.randn(32, 2))).mean()
        collapsed_score = torch.sigmoid(disc(torch.randn(1, 2).expand(32, 2))).mean()
    # the example-wise inputs come from the same distribution: only batch diversity separates them
    assert diverse_score > 0.75 and collapsed_score < 0.25


# --- virtual batch norm -------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(6,), (3, 4, 4)], ids=["vector", "image"])
def test_vbn_output_of_an_example_does_not_depend_on_its_batch(shape):
    vbn = VirtualBatchNorm(shape[0])
    vbn.set_reference(torch.randn(10, *shape) * 3 + 1)
    example = torch.randn(1, *shape)
    batch_a = torch.cat([example, torch.randn(2, *shape)])
    batch_b = torch.cat([torch.randn(4, *shape) * 5, example, torch.randn(1, *shape)])

    out_a = vbn(batch_a)[0]
    out_b = vbn(batch_b)[4]
    out_alone = vbn(example)[0]

    torch.testing.assert_close(out_a, out_b, rtol=0, atol=1e-6)
    torch.testing.assert_close(out_a, out_alone, rtol=0, atol=1e-6)


@pytest.mark.parametrize("shape", [(6,), (3, 4, 4)], ids=["vector", "image"])
def test_vbn_normalizes_with_the_reference_batch_plus_the_example(shape):
    eps = 1e-5
    vbn = VirtualBatchNorm(shape[0], eps=eps)
    with torch.no_grad():
        vbn.weight.copy_(torch.linspace(0.5, 2.0, shape[0]))
        vbn.bias.copy_(torch.linspace(-1.0, 1.0, shape[0]))
    reference = torch.randn(10, *shape) * 2 - 1
    vbn.set_reference(reference)
    batch = torch.randn(3, *shape)

    out = vbn(batch)

    axes = (0,) if len(shape) == 1 else (0, 2, 3)
    view = (-1,) if len(shape) == 1 else (-1, 1, 1)
    for i in range(3):
        union = torch.cat([reference, batch[i : i + 1]])  # n + 1 examples, equal weights
        mean = union.mean(dim=axes)
        var = union.var(dim=axes, unbiased=False)
        expected = (batch[i] - mean.view(view)) / (var + eps).sqrt().view(view)
        expected = expected * vbn.weight.detach().view(view) + vbn.bias.detach().view(view)
        torch.testing.assert_close(out[i], expected, rtol=1e-5, atol=1e-5)


def test_vbn_records_its_first_batch_and_behaves_the_same_in_eval_mode():
    vbn = VirtualBatchNorm(4)
    reference = torch.randn(8, 4) * 3 + 2
    first = vbn(reference)
    assert vbn.has_reference and int(vbn.reference_size) == 8
    # the reference batch itself comes out standardized
    torch.testing.assert_close(first.mean(0), torch.zeros(4), atol=1e-5, rtol=0)
    x = torch.randn(5, 4)
    train_out = vbn(x)
    vbn.eval()
    torch.testing.assert_close(vbn(x), train_out, rtol=0, atol=0)


def test_vbn_reference_travels_in_the_state_dict(tmp_path):
    from safetensors.torch import load_file, save_file

    vbn = VirtualBatchNorm(3)
    vbn.set_reference(torch.randn(6, 3, 5, 5) * 4)
    x = torch.randn(2, 3, 5, 5)
    expected = vbn(x)

    save_file(vbn.state_dict(), str(tmp_path / "vbn.safetensors"))
    restored = VirtualBatchNorm(3)
    restored.load_state_dict(load_file(str(tmp_path / "vbn.safetensors")))

    assert restored.has_reference
    # a restored layer must not treat its first batch as a new reference
    torch.testing.assert_close(restored(x), expected, rtol=0, atol=0)


def test_vbn_reference_pass_refreshes_every_layer_of_a_network():
    net = nn.Sequential(nn.Linear(2, 4), VirtualBatchNorm(4), nn.ReLU(), nn.Linear(4, 4), VirtualBatchNorm(4))
    first_reference = torch.randn(16, 2)
    net(first_reference)
    means_before = [m.reference_mean.clone() for m in net if isinstance(m, VirtualBatchNorm)]
    with recording_vbn_reference(net):
        net(torch.randn(16, 2) * 3 + 5)
    means_after = [m.reference_mean for m in net if isinstance(m, VirtualBatchNorm)]
    assert all(not torch.allclose(a, b) for a, b in zip(means_before, means_after))
    assert not any(m.recording for m in net if isinstance(m, VirtualBatchNorm))
    # outside the block the recorded reference is used, not the batch
    probe = torch.randn(1, 2)
    alone = net(probe)
    in_batch = net(torch.cat([torch.randn(7, 2), probe]))[-1:]
    torch.testing.assert_close(alone, in_batch, rtol=0, atol=1e-6)


# --- feature matching ---------------------------------------------------------------------


def test_feature_matching_is_the_squared_distance_of_batch_means_and_trains_only_g():
    real = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)  # mean (2, 3)
    fake = torch.tensor([[0.0, 0.0], [2.0, 2.0]], requires_grad=True)  # mean (1, 1)
    loss = feature_matching_loss(real, fake)
    assert loss.item() == pytest.approx(1.0 + 4.0)
    assert feature_matching_loss(real, fake, reduction="mean").item() == pytest.approx(2.5)
    loss.backward()
    assert real.grad is None
    # d/dfake_i of ‖m_r − m_f‖² = −2 (m_r − m_f) / N
    torch.testing.assert_close(fake.grad, torch.tensor([[-1.0, -2.0], [-1.0, -2.0]]))
    # matching means, not individual examples: a permuted or re-spread batch with the same mean scores 0
    assert feature_matching_loss(real, torch.tensor([[3.0, 2.0], [1.0, 4.0]])).item() == 0.0


def test_feature_convention_is_a_checkable_protocol():
    class Disc(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Linear(2, 8)
            self.head = nn.Linear(8, 1)

        def forward_with_features(self, x, y=None):
            features = torch.relu(self.body(x))
            return self.head(features), features

        def forward(self, x, y=None):
            return self.forward_with_features(x, y)[0]

    assert isinstance(Disc(), ExposesFeatures)
    assert not isinstance(nn.Linear(2, 1), ExposesFeatures)


# --- one-sided label smoothing ------------------------------------------------------------


def test_label_smoothing_changes_only_the_real_term():
    real = torch.randn(16)
    fakes = [torch.randn(16), torch.randn(16) * 4 - 3]
    shifts = [(logistic_d_loss(real, f, real_target=0.9) - logistic_d_loss(real, f)).item() for f in fakes]
    assert shifts[0] == pytest.approx(shifts[1], abs=1e-6)
    assert shifts[0] != pytest.approx(0.0, abs=1e-3)

    # the fake target stays 0: the fake gradient is σ(l)/N with and without smoothing
    fake = torch.randn(16, requires_grad=True)
    logistic_d_loss(real, fake, real_target=0.9).backward()
    torch.testing.assert_close(fake.grad, torch.sigmoid(fake.detach()) / 16)

    # the real term is optimal at D(x) = 0.9, not at 1
    real_logit = torch.full((4,), math.log(0.9 / 0.1), requires_grad=True)
    logistic_d_loss(real_logit, torch.zeros(4), real_target=0.9).backward()
    torch.testing.assert_close(real_logit.grad, torch.zeros(4), atol=1e-6, rtol=0)


# --- minimax vs non-saturating ------------------------------------------------------------


def test_minimax_generator_gradient_vanishes_when_d_is_confident_but_nonsaturating_does_not():
    confident_fake = torch.full((8,), -10.0, requires_grad=True)  # D(G(z)) = σ(−10) ≈ 4.5e−5
    minimax_g_loss(confident_fake).backward()
    minimax_grad = confident_fake.grad.abs().sum().item()

    confident_fake.grad = None
    nonsaturating_g_loss(confident_fake).backward()
    nonsaturating_grad = confident_fake.grad.abs().sum().item()

    assert minimax_grad == pytest.approx(torch.sigmoid(torch.tensor(-10.0)).item(), rel=1e-4)
    assert minimax_grad < 1e-4
    assert nonsaturating_grad == pytest.approx(torch.sigmoid(torch.tensor(10.0)).item(), rel=1e-4)
    # both push the fake logit up (G wants D(G(z)) larger)
    assert (confident_fake.grad < 0).all()


# --- historical averaging -----------------------------------------------------------------


def _flat_params(module: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in module.parameters()])


def _flat_averages(history: HistoricalAverage, module: nn.Module) -> torch.Tensor:
    return torch.cat([history.average(name).flatten() for name, _ in module.named_parameters()])


def test_historical_average_is_the_cumulative_mean_of_all_past_parameters():
    module = nn.Linear(3, 2)
    history = HistoricalAverage(module)
    seen = [_flat_params(module)]
    for _ in range(4):
        with torch.no_grad():
            for p in module.parameters():
                p.add_(torch.randn_like(p))
        history.update()
        seen.append(_flat_params(module))
    assert history.count == 5
    torch.testing.assert_close(_flat_averages(history, module), torch.stack(seen).mean(0))


def test_historical_average_penalty_pulls_parameters_toward_the_running_mean():
    module = nn.Linear(4, 3)
    history = HistoricalAverage(module)
    assert history.penalty().item() == 0.0
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * 2)
    history.update()
    target = _flat_averages(history, module)

    penalty = history.penalty()
    penalty.backward()
    grad = torch.cat([p.grad.flatten() for p in module.parameters()])
    toward_mean = target - _flat_params(module)
    assert penalty.item() == pytest.approx(toward_mean.square().sum().item(), rel=1e-5)
    # −∇ = 2 (θ̄ − θ): descent points straight at the mean
    torch.testing.assert_close(-grad, 2 * toward_mean)

    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    distances = [toward_mean.norm().item()]
    for _ in range(5):
        opt.zero_grad()
        history.penalty().backward()
        opt.step()
        distances.append((target - _flat_params(module)).norm().item())
    assert all(later < earlier for earlier, later in zip(distances, distances[1:]))
    assert distances[-1] < 0.5 * distances[0]


def test_historical_average_state_round_trips_through_safetensors(tmp_path):
    from safetensors.torch import load_file, save_file

    module = nn.Linear(3, 2)
    history = HistoricalAverage(module)
    with torch.no_grad():
        module.weight.add_(1.0)
    history.update()
    save_file(history.state_tensors(), str(tmp_path / "hist.safetensors"))

    resumed = HistoricalAverage(module)
    resumed.load_state_tensors(load_file(str(tmp_path / "hist.safetensors")))
    assert resumed.count == 2
    torch.testing.assert_close(resumed.penalty(), history.penalty())

    with pytest.raises(GancliError, match="historical-average"):
        HistoricalAverage(nn.Linear(3, 5)).load_state_tensors(history.state_tensors())


# --- semi-supervised GAN ------------------------------------------------------------------


def test_ssgan_gan_logit_gives_d_equal_z_over_z_plus_one():
    logits = torch.tensor([[0.3, -1.2, 2.0], [-5.0, -4.0, -6.0]])
    z = logits.exp().sum(1)
    torch.testing.assert_close(torch.sigmoid(ssgan_gan_logit(logits)), z / (z + 1))


def test_ssgan_d_loss_matches_a_hand_computed_case():
    logits_labeled = torch.tensor([[2.0, 0.0, -1.0]])
    labels = torch.tensor([0])
    logits_real = torch.tensor([[0.0, 0.0, -math.inf]])  # Z = 2: D = 2/3
    logits_fake = torch.tensor([[math.log(3.0), 0.0, -math.inf]])  # Z = 4: D = 4/5

    cross_entropy = -2.0 + math.log(math.exp(2.0) + 1.0 + math.exp(-1.0))
    unsupervised = -math.log(2.0 / 3.0) - math.log(1.0 - 4.0 / 5.0)

    assert ssgan_supervised_loss(logits_labeled, labels).item() == pytest.approx(cross_entropy, rel=1e-6)
    assert ssgan_unsupervised_d_loss(logits_real, logits_fake).item() == pytest.approx(unsupervised, rel=1e-6)
    total = ssgan_d_loss(logits_labeled, labels, logits_real, logits_fake)
    assert total.item() == pytest.approx(cross_entropy + unsupervised, rel=1e-6)
    half = ssgan_d_loss(logits_labeled, labels, logits_real, logits_fake, unsupervised_weight=0.5)
    assert half.item() == pytest.approx(cross_entropy + 0.5 * unsupervised, rel=1e-6)


def test_ssgan_d_loss_stays_finite_for_extreme_logits():
    big = torch.tensor([[80.0, -80.0], [-80.0, 80.0]], requires_grad=True)
    loss = ssgan_d_loss(big, torch.tensor([0, 1]), big, -big)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(big.grad).all()


def test_vbn_gradient_flows_through_the_reference_statistics():
    """As batch norm's gradient flows through batch statistics: the reference batch's mean and mean
    square are graph tensors (openai/improved-gan), so perturbing a weight moves them too."""
    from gancli.nn.improved import joint_vbn_reference

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 5), VirtualBatchNorm(5), nn.Tanh(), nn.Linear(5, 2)).double()
    reference, batch = torch.randn(8, 3).double(), torch.randn(4, 3).double()
    weights = torch.randn(4, 2).double()

    def loss() -> torch.Tensor:
        with joint_vbn_reference(net, len(reference)):
            return (net(torch.cat([reference, batch]))[len(reference):] * weights).sum()

    (analytic,) = torch.autograd.grad(loss(), net[0].weight)
    numeric = torch.zeros_like(analytic)
    with torch.no_grad():
        for index in np.ndindex(*analytic.shape):
            w = net[0].weight
            w[index] += 1e-3  # VBN computes its statistics in float32: a step well above its rounding
            up = loss()
            w[index] -= 2e-3
            down = loss()
            w[index] += 1e-3
            numeric[index] = (up - down) / 2e-3
    torch.testing.assert_close(analytic, numeric, rtol=2e-3, atol=1e-4)
    # treating the reference statistics as constants (the old way) gives another gradient
    with torch.no_grad(), recording_vbn_reference(net):
        net(reference)
    (constant,) = torch.autograd.grad((net(batch) * weights).sum(), net[0].weight)
    assert (constant - analytic).abs().max() > 100 * (numeric - analytic).abs().max()


def test_vbn_generator_in_eval_mode_uses_the_statistics_of_its_own_weights():
    import copy

    from gancli_plugin_gan.model import Generator

    torch.manual_seed(0)
    G = Generator(z_dim=4, hidden=6, layers=1, activation="tanh", norm="virtual", out_shape=(2,), images=False,
                  vbn_reference_size=16)
    ema = copy.deepcopy(G).eval()
    with torch.no_grad():
        for p in ema.parameters():
            p.mul_(1.5)  # an EMA copy with other weights than G
        ema(torch.randn(3, 4))
        expected = ema.net[0](ema.vbn_reference_z).mean(dim=0)
    torch.testing.assert_close(ema.net[1].reference_mean, expected)
    # and an example's output still does not depend on its batch-mates
    z = torch.randn(5, 4)
    with torch.no_grad():
        torch.testing.assert_close(ema(z)[2:3], ema(z[2:3]))
