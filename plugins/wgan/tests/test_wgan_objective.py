"""WGAN / WGAN-GP maths: the penalty, weight clipping, precision, n_critic, what gets logged."""
from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

from gancli import checkpoint as ckpt_io
from gancli import config as cfg
from gancli.data.images import TensorData
from gancli.data.spec import DataSpec
from gancli.objective import Progress, Step
from gancli.regularizers import gradient_penalty
from gancli.train.loop import train
from gancli_plugin_wgan.config import WGANConfig, WGANGPConfig
from gancli_plugin_wgan.model import build_wgan, build_wgan_gp

IMAGES = DataSpec(kind="image", channels=3, resolution=16, name="tiny")
POINTS = DataSpec(kind="points", dim=2, name="tiny")


def image_data(n: int = 32, channels: int = 3, resolution: int = 16) -> TensorData:
    g = torch.Generator().manual_seed(0)
    values = torch.randint(0, 256, (n, channels, resolution, resolution), generator=g, dtype=torch.uint8)
    return TensorData(DataSpec(kind="image", channels=channels, resolution=resolution, name="tiny"), values)


def point_data(n: int = 256) -> TensorData:
    return TensorData(POINTS, torch.randn(n, 2, generator=torch.Generator().manual_seed(0)))


def make_step(G, D, real, *, seed: int = 0, autocast=nullcontext, z_dim: int = 4) -> Step:
    return Step(
        index=0, real=real, labels=None, G=G, D=D, z_dim=z_dim, num_classes=0,
        seed=seed, autocast=autocast,
    )


class LinearCritic(nn.Module):
    """f(x) = wᵀx + b: its input gradient is w everywhere."""

    def __init__(self, dim: int, norm: float) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, 1)
        with torch.no_grad():
            w = torch.randn(1, dim, generator=torch.Generator().manual_seed(3))
            self.linear.weight.copy_(w / w.norm() * norm)

    def forward(self, x, y=None, return_features=False):
        return self.linear(x.flatten(1)).squeeze(1)


class ShiftGenerator(nn.Module):
    """x = a·z + b, enough to give the critic something to score."""

    def __init__(self, shape: tuple[int, ...], z_dim: int = 4) -> None:
        super().__init__()
        self.z_dim, self.num_classes, self.shape = z_dim, 0, shape
        self.linear = nn.Linear(z_dim, int(torch.tensor(shape).prod()))

    def forward(self, z, y=None):
        return self.linear(z).view(z.shape[0], *self.shape)


@pytest.mark.parametrize("shape", [(2,), (3, 4, 4)])
@pytest.mark.parametrize("norm", [0.25, 1.0, 3.0])
def test_penalty_of_a_linear_critic_is_norm_minus_one_squared(shape, norm):
    dim = int(torch.tensor(shape).prod())
    critic = LinearCritic(dim, norm)
    expected = (norm - 1.0) ** 2
    for seed in range(3):  # any real/fake pair and any ε: the gradient is w everywhere
        g = torch.Generator().manual_seed(seed)
        real, fake = torch.randn(8, *shape, generator=g) * 5, torch.randn(8, *shape, generator=g) - 7
        gp = gradient_penalty(critic, real, fake, eps=torch.rand(8, *[1] * len(shape), generator=g))
        assert gp.item() == pytest.approx(expected, abs=1e-5)

    # the same through the wgan-gp objective, with the paper's λ = 10 and the Wasserstein terms
    spec = POINTS if shape == (2,) else DataSpec(kind="image", channels=3, resolution=4)
    objective = build_wgan_gp(WGANGPConfig(arch="mlp", width=4, mlp_layers=1, z_dim=4), spec).objective
    G = ShiftGenerator(shape)
    real = torch.randn(16, *shape, generator=torch.Generator().manual_seed(5))
    terms = objective.d_loss(make_step(G, critic, real))
    assert terms["gp"].item() == pytest.approx(expected, abs=1e-5)
    with torch.no_grad():
        fake = G(make_step(G, critic, real).latents())  # the step's own latents
        wdist = critic(real).mean() - critic(fake).mean()
    assert terms["wdist"].item() == pytest.approx(wdist.item(), abs=1e-5)
    assert terms["loss"].item() == pytest.approx(-wdist.item() + 10.0 * expected, abs=1e-4)


def test_clipping_bounds_every_critic_weight_after_a_critic_step():
    torch.manual_seed(0)
    gan = build_wgan(WGANConfig(width=8, z_dim=4, lr=0.5), IMAGES)  # dcgan arch, BatchNorm critic
    G, D, objective = gan.generator, gan.discriminator, gan.objective
    assert objective.clip_weights == 0.01 and objective.n_critic == 5
    _, opt_d = objective.optimizers(G, D)
    real = torch.rand(8, 3, 16, 16) * 2 - 1
    s = make_step(G, D, real)
    opt_d.zero_grad()
    objective.d_loss(s)["loss"].backward()
    opt_d.step()
    assert max(p.abs().max().item() for p in D.parameters()) > 0.01  # the step left the box...
    objective.after_d_step(s)
    for name, p in D.named_parameters():  # ...and clipping brought every weight back, BN's γ and β too
        assert p.abs().max().item() <= 0.01 + 1e-8, name


def test_one_training_step_leaves_clipped_critic_weights_in_the_checkpoint(tmp_path):
    run, family_config = cfg.resolve(
        "wgan", flags={"data": {"source": "tiny"}, "train": {"steps": 1, "batch_size": 8, "sample_every": 1}},
        overrides=["width=8", "z_dim=4", "lr=0.5"],
    )
    result = train(run, family_config, out=tmp_path / "run", data=image_data(), show_progress=False)
    D = build_wgan(family_config, IMAGES).discriminator
    stored = ckpt_io.read(result.last_checkpoint).tensors("D.")
    params = {name: stored[name] for name, _ in D.named_parameters()}
    assert params and max(t.abs().max().item() for t in params.values()) == pytest.approx(0.01)


@pytest.mark.parametrize("arch", ["mlp", "dcgan", "resnet"])
@pytest.mark.parametrize("norm", ["none", "layer"])
def test_wgan_gp_critic_has_no_batchnorm(arch, norm):
    config = WGANGPConfig(arch=arch, width=8, z_dim=4, critic_norm=norm)
    for spec in ([POINTS, IMAGES] if arch == "mlp" else [IMAGES]):
        D = build_wgan_gp(config, spec).discriminator
        kinds = {type(m) for m in D.modules()}
        assert not any(issubclass(k, nn.modules.batchnorm._BatchNorm) for k in kinds)
        if norm == "layer":
            assert kinds & {nn.LayerNorm, nn.GroupNorm}


def test_wgan_gp_refuses_a_batchnorm_critic_while_wgan_uses_one():
    with pytest.raises(ValueError):
        WGANGPConfig(critic_norm="batch")
    D = build_wgan(WGANConfig(width=8, z_dim=4), IMAGES).discriminator  # the WGAN paper's DCGAN critic
    assert any(isinstance(m, nn.BatchNorm2d) for m in D.modules())


def test_penalty_under_bf16_autocast_matches_fp32():
    torch.manual_seed(0)
    gan = build_wgan_gp(WGANGPConfig(width=8, z_dim=4), IMAGES)
    G, D, objective = gan.generator, gan.discriminator, gan.objective
    real = torch.rand(8, 3, 16, 16) * 2 - 1
    fp32 = objective.d_loss(make_step(G, D, real, seed=1))
    bf16 = objective.d_loss(make_step(G, D, real, seed=1, autocast=lambda: torch.autocast("cpu", torch.bfloat16)))
    assert bf16["gp"].dtype == torch.float32
    assert bf16["gp"].item() == pytest.approx(fp32["gp"].item(), rel=0.05, abs=1e-3)
    # bf16 really was in use: the critic's scores differ from fp32 in low bits
    assert not torch.equal(bf16["wdist"], fp32["wdist"])


@pytest.mark.parametrize("family,n_critic", [("wgan-gp", None), ("wgan", None), ("wgan-gp", 2)])
def test_n_critic_critic_updates_per_generator_update(tmp_path, family, n_critic):
    overrides = ["width=8", "z_dim=4", "mlp_layers=1"] + ([f"n_critic={n_critic}"] if n_critic else [])
    run, family_config = cfg.resolve(
        family, flags={"data": {"source": "tiny"}, "train": {"steps": 3, "batch_size": 16, "sample_every": 3}},
        overrides=overrides,
    )
    steps: dict[int, int] = {}

    def count(optimizer, args, kwargs):
        steps[id(optimizer)] = steps.get(id(optimizer), 0) + 1

    handle = register_optimizer_step_post_hook(count)
    try:
        result = train(run, family_config, out=tmp_path / "run", data=point_data(), show_progress=False)
    finally:
        handle.remove()
    expected = n_critic or 5
    assert sorted(steps.values()) == [3, 3 * expected]
    assert result.images_seen == 3 * expected * 16  # a fresh real batch for every critic step


@pytest.mark.parametrize("family", ["wgan-gp", "wgan"])
def test_wasserstein_estimate_and_penalty_reach_metrics_and_progress(tmp_path, capsys, family):
    run, family_config = cfg.resolve(
        family, flags={"data": {"source": "tiny"},
                       "train": {"steps": 2, "batch_size": 16, "log_every": 1, "sample_every": 2}},
        overrides=["width=8", "z_dim=4", "mlp_layers=1"],
    )
    train(run, family_config, out=tmp_path / "run", data=point_data(), show_progress=True)
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    progress = capsys.readouterr().err
    assert len(lines) == 2
    for line in lines:
        assert line["d/wdist"] == pytest.approx(-line["d/adv"])
        assert ("d/gp" in line) == (family == "wgan-gp")
    assert "d/wdist" in progress
    assert ("d/gp" in progress) == (family == "wgan-gp")


def test_linear_learning_rate_decay_follows_the_step():
    config = WGANGPConfig(arch="mlp", width=4, mlp_layers=1, z_dim=2, lr=2e-4, lr_decay_steps=100)
    gan = build_wgan_gp(config, POINTS)
    opt_g, opt_d = gan.objective.optimizers(gan.generator, gan.discriminator)
    for step, lr in [(0, 2e-4), (25, 1.5e-4), (100, 0.0), (150, 0.0)]:
        gan.objective.begin_step(Progress(step, 0), gan.generator, gan.discriminator)
        assert opt_g.param_groups[0]["lr"] == pytest.approx(lr)
        assert opt_d.param_groups[0]["lr"] == pytest.approx(lr)


def test_reference_critic_schedule_is_an_option_of_wgan():
    """martinarjovsky/WassersteinGAN main.py: Diters = 100 while gen_iterations < 25 or % 500 == 0, else 5."""
    steps = (0, 24, 25, 26, 499, 500, 501, 1000)
    reference = build_wgan(WGANConfig(arch="mlp", width=4, mlp_layers=1, critic_schedule="reference"), POINTS)
    assert [reference.objective.d_steps(s) for s in steps] == [100, 100, 5, 5, 5, 100, 5, 100]
    constant = build_wgan(WGANConfig(arch="mlp", width=4, mlp_layers=1), POINTS)
    assert [constant.objective.d_steps(s) for s in steps] == [5] * len(steps)


def test_reference_schedule_reaches_the_trainer(tmp_path):
    run, family_config = cfg.resolve(
        "wgan", flags={"data": {"source": "tiny"}, "train": {"steps": 2, "batch_size": 8, "sample_every": 2}},
        overrides=["arch=mlp", "width=4", "z_dim=2", "mlp_layers=1", "critic_schedule=reference"],
    )
    steps: dict[int, int] = {}
    handle = register_optimizer_step_post_hook(lambda opt, a, k: steps.__setitem__(id(opt), steps.get(id(opt), 0) + 1))
    try:
        result = train(run, family_config, out=tmp_path / "run", data=point_data(), show_progress=False)
    finally:
        handle.remove()
    assert sorted(steps.values()) == [2, 200] and result.images_seen == 200 * 8


def test_conditional_penalty_interpolates_between_a_real_image_and_a_fake_of_its_class():
    """igul222/improved_wgan_training's conditional CIFAR-10 script generates the critic's fakes with the
    real batch's labels, so x̂ = εx + (1 − ε)G(z, y) mixes two images of the same class."""
    seen: list[torch.Tensor] = []

    class RecordingGenerator(ShiftGenerator):
        def forward(self, z, y=None):
            seen.append(y)
            return super().forward(z)

    labels = torch.tensor([0, 2, 1, 2, 0, 1, 1, 0])
    real = torch.randn(8, 2)
    gp = build_wgan_gp(WGANGPConfig(arch="mlp", width=4, mlp_layers=1, z_dim=4), POINTS).objective
    s = Step(index=0, real=real, labels=labels, G=RecordingGenerator((2,)), D=LinearCritic(2, 1.0), z_dim=4,
             num_classes=3)
    gp.d_loss(s)
    assert torch.equal(seen[-1], labels)
    # without a penalty (WGAN) the fakes keep uniform random classes
    clipped = build_wgan(WGANConfig(arch="mlp", width=4, mlp_layers=1, z_dim=4), POINTS).objective
    clipped.d_loss(Step(index=0, real=real, labels=labels, G=RecordingGenerator((2,)), D=LinearCritic(2, 1.0),
                        z_dim=4, num_classes=3))
    assert not torch.equal(seen[-1], labels)
