"""The gan family: conformance, the two generator losses, and the Improved-GAN options through the objective."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from gancli import checkpoint as ckpt_io
from gancli import config as cfg
from gancli.config import RunConfig
from gancli.data.images import TensorData
from gancli.data.spec import DataSpec
from gancli.errors import GancliError
from gancli.improved_losses import feature_matching_loss
from gancli.objective import Step
from gancli.testing import check_family
from gancli.train.loop import train
from gancli_plugin_gan.config import GANConfig
from gancli_plugin_gan.model import build
from gancli_plugin_gan.objective import ImprovedGANObjective
from gancli_plugin_gan.semi_supervised import semi_supervised_accuracy

POINTS = DataSpec(kind="points", dim=2, name="test")
TINY = {"z_dim": 4, "g_hidden": 16, "d_hidden": 16}


def _gan(spec: DataSpec = POINTS, **settings):
    torch.manual_seed(0)
    return build(GANConfig.model_validate({**TINY, **settings}), spec)


def _step(gan, real: torch.Tensor, labels=None, seed: int = 0) -> Step:
    return Step(
        index=0, real=real, labels=labels, G=gan.generator, D=gan.discriminator, z_dim=gan.generator.z_dim,
        num_classes=0, seed=seed,
    )


def _grad_norm(module: nn.Module) -> float:
    return math.sqrt(sum(float(p.grad.square().sum()) for p in module.parameters() if p.grad is not None))


def test_conformance_on_points_and_images():
    report = check_family("gan")
    assert any(p.startswith("points:") for p in report.passed)
    assert any(p.startswith("image 1×") for p in report.passed)
    assert any(p.startswith("image 3×") for p in report.passed)


@pytest.mark.parametrize("settings", [
    {"minibatch_discrimination": True, "mbd_kernels": 4, "mbd_kernel_dim": 3},
    {"g_norm": "virtual", "vbn_reference_size": 8},
    {"g_norm": "batch", "feature_matching": True, "historical_averaging": 0.1, "real_label": 0.9},
], ids=["minibatch-discrimination", "virtual-batch-norm", "batchnorm-fm-ha-smoothing"])
@pytest.mark.slow
def test_conformance_with_improved_options(settings):
    check_family("gan", settings={**TINY, **settings}, steps=2)


def test_images_come_out_flattened_through_tanh_and_reshaped():
    spec = DataSpec(kind="image", channels=1, resolution=6, name="img")
    gan = _gan(spec)
    x = gan.generator(torch.randn(5, 4) * 50)  # large latents drive tanh to its limits
    assert x.shape == (5, 1, 6, 6) and x.abs().max() <= 1.0
    assert gan.discriminator(x).shape == (5,)


def test_minimax_generator_gradient_vanishes_when_d_is_confident_but_nonsaturating_does_not():
    real = torch.randn(32, 2)
    norms = {}
    for loss in ("minimax", "nonsaturating"):
        gan = _gan(loss=loss)
        with torch.no_grad():
            gan.discriminator.head.bias.fill_(-15.0)  # D(G(z)) ≈ 3e-7: confidently fake
        g_loss = gan.objective.g_loss(_step(gan, real))["loss"]
        g_loss.backward()
        norms[loss] = _grad_norm(gan.generator)
    assert norms["nonsaturating"] > 1e-3
    assert norms["minimax"] < 1e-5 * norms["nonsaturating"]


def test_minimax_and_nonsaturating_share_the_discriminator_loss_and_agree_where_d_is_unsure():
    real = torch.randn(32, 2)
    d_losses, g_grads = {}, {}
    for loss in ("minimax", "nonsaturating"):
        gan = _gan(loss=loss)
        with torch.no_grad():
            gan.discriminator.head.weight.mul_(1e-4)  # logits ≈ 0: D(x) ≈ 1/2 everywhere
        d_losses[loss] = float(gan.objective.d_loss(_step(gan, real))["loss"].detach())
        gan.generator.zero_grad()
        gan.objective.g_loss(_step(gan, real, seed=1))["loss"].backward()
        g_grads[loss] = torch.cat([p.grad.flatten() for p in gan.generator.parameters()])
    assert d_losses["minimax"] == pytest.approx(d_losses["nonsaturating"])
    assert d_losses["minimax"] == pytest.approx(2 * math.log(2), abs=1e-3)
    # at D = 1/2 both losses have slope −1/2 in the logit: the same generator gradient
    torch.testing.assert_close(g_grads["minimax"], g_grads["nonsaturating"], rtol=1e-3, atol=1e-9)


def test_feature_matching_generator_loss_is_computed_on_discriminator_features():
    gan = _gan(feature_matching=True)
    G, D = gan.generator, gan.discriminator
    real = torch.randn(16, 2)
    terms = gan.objective.g_loss(_step(gan, real, seed=3))
    fake = G(_step(gan, real, seed=3).latents())  # the step's own (counter-based) latents
    expected = feature_matching_loss(D(real, return_features=True)[1], D(fake, return_features=True)[1]).detach()
    assert float(terms["loss"].detach()) == pytest.approx(float(expected), rel=1e-5)
    assert float(terms["fm"]) == pytest.approx(float(expected), rel=1e-5)
    # D's output layer plays no part: zeroing it leaves the loss and G's gradient intact
    G.zero_grad()
    terms["loss"].backward()
    before = _grad_norm(G)
    with torch.no_grad():
        D.head.weight.zero_()
    G.zero_grad()
    again = gan.objective.g_loss(_step(gan, real, seed=3))
    again["loss"].backward()
    assert float(again["loss"].detach()) == pytest.approx(float(expected), rel=1e-5)
    assert _grad_norm(G) == pytest.approx(before, rel=1e-5) and before > 0
    # the adversarial term can be added on top
    mixed = _gan(feature_matching=True, feature_matching_adversarial=0.5)
    mixed_terms = mixed.objective.g_loss(_step(mixed, real, seed=3))
    assert float(mixed_terms["loss"].detach()) == pytest.approx(float(mixed_terms["fm"] + 0.5 * mixed_terms["adv"]), rel=1e-5)


def _points(n: int = 256) -> TensorData:
    g = torch.Generator().manual_seed(0)
    return TensorData(DataSpec(kind="points", dim=2, name="blob"), torch.randn(n, 2, generator=g) * 0.5 + 1.0)


def _run_config(steps: int, model: dict, source: str = "blob", **train) -> RunConfig:
    return RunConfig.model_validate({
        "family": "gan",
        "data": {"source": source},
        "train": {"steps": steps, "batch_size": 16, "log_every": 1, "sample_every": 0, "checkpoint_every": 0,
                  "seed": 0, **train},
        "model": GANConfig.model_validate(model).model_dump(mode="json"),
    })


def test_historical_averaging_state_survives_checkpoint_and_resume(tmp_path: Path):
    model = {**TINY, "historical_averaging": 0.5}
    config = GANConfig.model_validate(model)
    straight = train(_run_config(8, model), config, out=tmp_path / "straight", data=_points(), show_progress=False)
    train(_run_config(4, model), config, out=tmp_path / "resumed", data=_points(), show_progress=False)
    resumed = train(_run_config(8, model), config, out=tmp_path / "resumed", resume=True, data=_points(),
                    show_progress=False)

    a = ckpt_io.read(straight.last_checkpoint)
    b = ckpt_io.read(resumed.last_checkpoint)
    history_a, history_b = a.tensors("state.rank.0.objective.history."), b.tensors("state.rank.0.objective.history.")
    assert set(history_a) == set(history_b)
    assert {"G.count", "D.count"} <= set(history_a)
    # the averages include the initial weights and one value per update: 1 + 8 steps
    assert int(history_a["G.count"]) == 9 and int(history_a["D.count"]) == 9
    for name in history_a:
        torch.testing.assert_close(history_a[name], history_b[name], rtol=0, atol=0)
    for prefix in ("G.", "D."):
        weights_a, weights_b = a.tensors(prefix), b.tensors(prefix)
        for name in weights_a:
            torch.testing.assert_close(weights_a[name], weights_b[name], rtol=0, atol=0)
    # the averages moved away from the initial weights, and the penalty is logged on both sides
    gan = _gan(historical_averaging=0.5)
    initial = dict(gan.generator.named_parameters())
    assert any(not torch.allclose(history_a[f"G.average.{n}"], p) for n, p in initial.items())
    lines = (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()
    assert '"d/hist"' in lines[-1] and '"g/hist"' in lines[-1]


class _FixedLogits(nn.Module):
    """A K-class discriminator that is a fixed linear map; it refuses class conditioning."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)

    def forward(self, x, y=None, return_features=False):
        assert y is None, "a semi-supervised D must not be conditioned on the labels"
        out = x @ self.weight
        return (out, x) if return_features else out


class _FixedSamples(nn.Module):
    z_dim = 1
    num_classes = 0

    def __init__(self, x: torch.Tensor) -> None:
        super().__init__()
        self.x = x

    def forward(self, z, y=None):
        return self.x


def _softplus(v: float) -> float:
    return math.log1p(math.exp(v))


def test_semi_supervised_losses_equal_the_hand_computed_cross_entropy_formulation():
    weight = torch.tensor([[1.0, -0.5, 0.2], [0.3, 0.8, -1.0]])
    real = torch.tensor([[0.5, 1.0], [-1.0, 0.2], [2.0, -0.5], [0.0, 0.0]])
    labels = torch.tensor([0, -1, 2, -1])  # two labelled, two unlabelled
    fake = torch.tensor([[1.5, 1.5], [-0.3, 0.7]])
    objective = ImprovedGANObjective(loss="nonsaturating", semi_supervised=True, unsupervised_weight=0.5)
    s = Step(index=0, real=real, labels=labels, G=_FixedSamples(fake), D=_FixedLogits(weight), z_dim=1,
             num_classes=0, seed=0)
    terms = objective.d_loss(s)

    w = weight.tolist()

    def logits(points):
        return [[sum(x[i] * w[i][k] for i in range(2)) for k in range(3)] for x in points.tolist()]

    def lse(row):
        return math.log(sum(math.exp(v) for v in row))

    real_logits, fake_logits = logits(real), logits(fake)
    supervised = sum(lse(real_logits[i]) - real_logits[i][y] for i, y in ((0, 0), (2, 2))) / 2
    unsupervised = (sum(_softplus(-lse(r)) for r in real_logits) / 4
                    + sum(_softplus(lse(f)) for f in fake_logits) / 2)
    assert float(terms["supervised"]) == pytest.approx(supervised, rel=1e-6)
    assert float(terms["adv"]) == pytest.approx(unsupervised, rel=1e-6)
    assert float(terms["loss"].detach()) == pytest.approx(supervised + 0.5 * unsupervised, rel=1e-6)

    g_terms = objective.g_loss(s)
    assert float(g_terms["loss"].detach()) == pytest.approx(sum(_softplus(-lse(f)) for f in fake_logits) / 2, rel=1e-6)

    # a batch without labelled examples has no supervised term
    s.labels = torch.full((4,), -1)
    assert float(objective.d_loss(s)["supervised"]) == 0.0


def test_labelled_pool_keeps_the_last_labelled_examples_and_draws_only_from_them():
    from gancli.objective import LabelledPool

    pool = LabelledPool(capacity=4)
    pool.add(torch.arange(8.0).view(4, 2), torch.tensor([0, -1, 1, -1]))
    assert pool.size == 2
    x, y = pool.take(torch.randint(pool.size, (50,), generator=torch.Generator().manual_seed(0)))
    assert set(y.tolist()) == {0, 1}
    assert all(row in ([0.0, 1.0], [4.0, 5.0]) for row in x.tolist())
    pool.add(torch.arange(10.0, 16.0).view(3, 2), torch.tensor([2, 2, 3]))
    assert pool.size == 4 and pool.count == 5  # the oldest example (class 0) was overwritten
    x, y = pool.take(torch.randint(pool.size, (200,), generator=torch.Generator().manual_seed(1)))
    assert set(y.tolist()) == {1, 2, 3}
    copy = LabelledPool(capacity=4)
    copy.load_state_tensors(pool.state_tensors())
    index = torch.randint(pool.size, (20,), generator=torch.Generator().manual_seed(2))
    for a, b in zip(copy.take(index), pool.take(index)):
        assert torch.equal(a, b)


def test_semi_supervised_cross_entropy_uses_a_labelled_batch_from_the_pool():
    weight = torch.tensor([[1.0, -0.5, 0.2], [0.3, 0.8, -1.0]])
    real = torch.tensor([[0.5, 1.0], [-1.0, 0.2], [2.0, -0.5], [0.0, 0.0]])
    labels = torch.tensor([0, -1, 2, -1])
    objective = ImprovedGANObjective(semi_supervised=True, supervised_batch=5)
    D = _FixedLogits(weight)
    s = Step(index=0, real=real, labels=labels, G=_FixedSamples(real[:2]), D=D, z_dim=1,
             num_classes=0, seed=7)
    supervised = float(objective.d_loss(s)["supervised"])
    # the same draw by hand: the pool holds rows 0 and 2, and the step's second draw picks from them
    twin = Step(index=0, real=real, labels=labels, G=_FixedSamples(real[:2]), D=D, z_dim=1, num_classes=0, seed=7)
    twin.latents()  # the step's latents come first
    index = twin.randint(2, n=5)
    pool_x, pool_y = real[[0, 2]][index], labels[[0, 2]][index]
    expected = torch.nn.functional.cross_entropy(pool_x @ weight, pool_y)
    assert supervised == pytest.approx(float(expected), rel=1e-6)


def _two_class_images(path: Path, n: int = 240) -> Path:
    """Class 0: bright left half; class 1: bright right half; plus noise."""
    rng = np.random.default_rng(0)
    labels = np.arange(n) % 2
    images = rng.integers(0, 60, size=(n, 8, 8)).astype(np.uint8)
    images[labels == 0, :, :4] += 180
    images[labels == 1, :, 4:] += 180
    np.savez(path, images=images, labels=labels)
    return path


def test_semi_supervised_accuracy_of_a_tiny_trained_model(tmp_path: Path):
    source = str(_two_class_images(tmp_path / "halves.npz"))
    model = {**TINY, "semi_supervised": True, "lr_d": 1e-3}
    run = _run_config(120, model, source=source, batch_size=32)
    run = run.model_copy(update={"data": run.data.model_copy(update={"labeled": 4})})
    result = train(run, GANConfig.model_validate(model), out=tmp_path / "run", show_progress=False)

    accuracy = semi_supervised_accuracy(result.last_checkpoint, source, split="test")
    assert 0.9 <= accuracy <= 1.0

    # the same number by hand from the stored discriminator
    ckpt = ckpt_io.read(result.last_checkpoint)
    D = build(GANConfig.model_validate(model), ckpt.spec).discriminator.eval()
    D.load_state_dict(ckpt.tensors("D."))
    with np.load(source) as npz:
        x = torch.from_numpy(npz["images"]).float().div(127.5).sub(1).unsqueeze(1)
        y = torch.from_numpy(npz["labels"])
    with torch.no_grad():
        assert accuracy == pytest.approx(float((D(x).argmax(1) == y).float().mean()))


def test_semi_supervised_accuracy_refuses_a_plain_gan(tmp_path: Path):
    result = train(_run_config(2, TINY), GANConfig.model_validate(TINY), out=tmp_path / "run", data=_points(),
                   show_progress=False)
    with pytest.raises(GancliError, match="semi_supervised"):
        semi_supervised_accuracy(result.last_checkpoint, "ring8")


def test_semi_supervised_needs_labelled_classes():
    with pytest.raises(GancliError, match="labelled data"):
        _gan(POINTS, semi_supervised=True)


def test_semi_supervised_labelled_pool_survives_checkpoint_and_resume(tmp_path: Path):
    source = str(_two_class_images(tmp_path / "halves.npz"))
    model = {**TINY, "semi_supervised": True, "supervised_batch": 8}
    config = GANConfig.model_validate(model)

    def run(steps: int) -> RunConfig:
        base = _run_config(steps, model, source=source)
        return base.model_copy(update={"data": base.data.model_copy(update={"labeled": 3})})

    straight = train(run(6), config, out=tmp_path / "straight", show_progress=False)
    train(run(3), config, out=tmp_path / "resumed", show_progress=False)
    resumed = train(run(6), config, out=tmp_path / "resumed", resume=True, show_progress=False)
    a, b = ckpt_io.read(straight.last_checkpoint), ckpt_io.read(resumed.last_checkpoint)
    pool_a, pool_b = a.tensors("state.rank.0.objective.labelled."), b.tensors("state.rank.0.objective.labelled.")
    assert set(pool_a) == {"x", "y", "count"} and int(pool_a["count"]) > 0
    assert (pool_a["y"] >= 0).all()
    for name in pool_a:
        torch.testing.assert_close(pool_a[name], pool_b[name], rtol=0, atol=0)
    for name, value in a.tensors("D.").items():
        torch.testing.assert_close(value, b.tensors("D.")[name], rtol=0, atol=0)


@pytest.mark.parametrize("target, draws", [("independent", 2), ("same_batch", 1)])
def test_feature_matching_target_comes_from_an_independent_real_batch_by_default(tmp_path, target, draws):
    """openai/improved-gan matches the features of a second, independently shuffled real batch (trainx_unl2)."""
    run, family_config = cfg.resolve(
        "gan", flags={"data": {"source": "blob"}, "train": {"steps": 2, "batch_size": 16, "sample_every": 2}},
        overrides=[*(f"{k}={v}" for k, v in TINY.items()), "feature_matching=true",
                   f"feature_matching_target={target}"],
    )
    result = train(run, family_config, out=tmp_path / "run", data=_points(), show_progress=False)
    assert result.images_seen == 2 * draws * 16  # one real batch for D, and one more for G's target
