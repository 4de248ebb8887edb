"""WGAN / WGAN-GP families: conformance kit, architectures, resolutions, recipes."""
from __future__ import annotations

import tomllib

import pytest
import torch

import gancli
from gancli import config as cfg
from gancli.data.images import TensorData
from gancli.data.spec import DataSpec
from gancli.errors import GancliError
from gancli.testing import check_family
from gancli.train.loop import train
from gancli_plugin_wgan import nets
from gancli_plugin_wgan.config import WGANConfig, WGANGPConfig
from gancli_plugin_wgan.model import build_wgan, build_wgan_gp


@pytest.mark.slow
@pytest.mark.parametrize("family", ["wgan", "wgan-gp"])
def test_conformance(family):
    report = check_family(family)
    assert any("points" in line for line in report.passed)
    assert any("3 classes" in line for line in report.passed)


def test_arch_auto_is_mlp_for_points_and_dcgan_for_images():
    config = WGANGPConfig(width=8, z_dim=4)
    assert isinstance(build_wgan_gp(config, DataSpec(kind="points", dim=2)).discriminator, nets.MLPCritic)
    images = DataSpec(kind="image", channels=1, resolution=32)
    assert isinstance(build_wgan_gp(config, images).discriminator, nets.DCGANCritic)


def test_toy_mlp_is_the_papers_three_hidden_layers_of_512():
    gan = build_wgan_gp(WGANGPConfig(), DataSpec(kind="points", dim=2))
    for net in (gan.generator, gan.discriminator):
        widths = [m.out_features for m in net.hidden if isinstance(m, torch.nn.Linear)]
        assert widths == [512, 512, 512]


def test_resnet_is_the_papers_cifar_network():
    spec = DataSpec(kind="image", channels=3, resolution=32)
    gan = build_wgan_gp(WGANGPConfig(arch="resnet"), spec)
    G, D = gan.generator, gan.discriminator
    assert G.z_dim == 128 and G.width == 128 and len(G.blocks) == 3  # 4 → 8 → 16 → 32
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in G.modules())
    blocks = list(D.blocks)
    assert blocks[0].first and all(not b.first for b in blocks[1:])
    # 32 → 16 (first block) → 8, then two 8×8 blocks with identity shortcuts (gan_cifar_resnet.py)
    assert [b.downsample for b in blocks] == [True, True, False, False]
    assert [b.shortcut is None for b in blocks] == [False, False, True, True]
    x = torch.zeros(2, 3, 32, 32)
    with torch.no_grad():
        assert D.blocks(x).shape == (2, 128, 8, 8)
        assert G(torch.randn(2, 128)).shape == (2, 3, 32, 32)


@pytest.mark.slow
def test_resnet_trains_and_samples_after_reload(tmp_path):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (16, 3, 16, 16), generator=g, dtype=torch.uint8)
    data = TensorData(DataSpec(kind="image", channels=3, resolution=16, name="tiny"), images)
    run, family_config = cfg.resolve(
        "wgan-gp", flags={"data": {"source": "tiny"}, "train": {"steps": 2, "batch_size": 8, "log_every": 1}},
        overrides=["arch=resnet", "width=8", "z_dim=8", "critic_norm=layer"],
    )
    result = train(run, family_config, out=tmp_path / "run", data=data, show_progress=False)
    samples = gancli.load(result.last_checkpoint, device="cpu").sample(4, seed=1)
    assert samples.shape == (4, 3, 16, 16) and samples.abs().max() <= 1.0


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
def test_unsupported_resolution_is_a_clear_error(arch):
    spec = DataSpec(kind="image", channels=1, resolution=28)
    for build, config in ((build_wgan_gp, WGANGPConfig(arch=arch)), (build_wgan, WGANConfig(arch=arch))):
        with pytest.raises(GancliError, match="--resolution 32"):
            build(config, spec)


def test_mlp_makes_images_of_any_size_and_conv_archs_need_images():
    spec = DataSpec(kind="image", channels=1, resolution=28)
    G = build_wgan_gp(WGANGPConfig(arch="mlp", width=8, z_dim=4), spec).generator
    with torch.no_grad():
        x = G(torch.randn(3, 4))
    assert x.shape == (3, 1, 28, 28) and x.abs().max() <= 1.0
    with pytest.raises(GancliError, match="arch=mlp"):
        build_wgan_gp(WGANGPConfig(arch="resnet"), DataSpec(kind="points", dim=2))


@pytest.mark.parametrize(
    "recipe,family,arch",
    [("wgan-gp-grid25", "wgan-gp", "mlp"), ("wgan-gp-fashion-mnist", "wgan-gp", "dcgan"),
     ("wgan-gp-cifar10", "wgan-gp", "resnet"), ("wgan-fashion-mnist", "wgan", "dcgan")],
)
def test_recipes_resolve_with_a_description(recipe, family, arch):
    path = cfg.find_recipe(recipe)
    assert path.read_text().startswith("description = ")
    assert tomllib.loads(path.read_text())["description"]
    run, family_config = cfg.resolve(None, recipe=recipe)
    assert run.family == family and family_config.arch == arch


def test_cifar10_recipe_has_the_papers_resnet_settings():
    run, config = cfg.resolve(None, recipe="wgan-gp-cifar10")
    assert (config.arch, config.width, config.z_dim, config.n_critic, config.gp_lambda) == ("resnet", 128, 128, 5, 10.0)
    assert (config.lr, config.beta1, config.beta2, config.lr_decay_steps) == (2e-4, 0.0, 0.9, 100_000)
    assert (run.train.batch_size, run.train.steps, run.data.resolution) == (64, 100_000, 32)
    assert config.critic_norm == "none"


def test_checkpoints_of_gancli_0_1_with_the_old_block_names_still_load():
    """gancli 0.1's WGAN-GP ResNet nested the convs of its blocks one level deeper (conv1.conv.weight)."""
    import re

    spec = DataSpec(kind="image", channels=3, resolution=32, num_classes=3)
    torch.manual_seed(0)
    gan = build_wgan_gp(WGANGPConfig(arch="resnet", width=8, z_dim=4, conditional=True), spec)
    for net in (gan.generator, gan.discriminator):
        old = {re.sub(r"^(blocks\.\d+\.(conv1|conv2|shortcut))\.", r"\1.conv.", k): v.clone()
               for k, v in net.state_dict().items()}
        assert any(".conv1.conv." in k for k in old)
        fresh = build_wgan_gp(WGANGPConfig(arch="resnet", width=8, z_dim=4, conditional=True), spec)
        target = fresh.generator if net is gan.generator else fresh.discriminator
        target.load_state_dict(old, strict=True)
        for (name, a), b in zip(net.state_dict().items(), target.state_dict().values()):
            assert torch.equal(a, b), name
