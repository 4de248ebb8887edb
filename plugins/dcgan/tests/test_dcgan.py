"""DCGAN as the paper describes it: shapes, BatchNorm placement, init, defaults; and the conformance kit."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from gancli.data.spec import DataSpec
from gancli.errors import GancliError
from gancli.testing import check_family
from gancli_plugin_dcgan.config import DCGANConfig
from gancli_plugin_dcgan.model import Discriminator, Generator, build


def test_conformance_kit():
    report = check_family("dcgan")
    assert len(report.passed) >= 10


@pytest.mark.parametrize("resolution, channels", [(32, 1), (32, 3), (64, 1), (64, 3)])
def test_shapes_and_widths(resolution, channels):
    G = Generator(100, 64, channels, resolution)
    D = Discriminator(64, channels, resolution)
    z = torch.randn(2, 100)
    x = G(z)
    assert x.shape == (2, channels, resolution, resolution)
    assert D(x).shape == (2,)
    first = G.net[0]
    assert isinstance(first, nn.ConvTranspose2d) and first.out_channels == 8 * 64  # 4×4×(8·ngf)
    assert [m.out_channels for m in D.features if isinstance(m, nn.Conv2d)][-1] == 8 * 64


def test_batchnorm_placement_and_activations():
    G, D = Generator(100, 8, 3, 64), Discriminator(8, 3, 64)
    g_layers, d_layers = list(G.net), list(D.features)
    assert isinstance(g_layers[-1], nn.Tanh) and isinstance(g_layers[-2], nn.ConvTranspose2d)  # no BN on G's output
    assert isinstance(d_layers[0], nn.Conv2d) and isinstance(d_layers[1], nn.LeakyReLU)  # no BN on D's input layer
    assert all(m.negative_slope == 0.2 for m in D.modules() if isinstance(m, nn.LeakyReLU))
    assert all(isinstance(m, (nn.ReLU, nn.Tanh)) for m in G.modules() if m.__class__.__name__ in ("ReLU", "LeakyReLU", "Tanh"))
    assert not any(isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)) for m in D.modules())  # strided convs, no pooling
    bn_d = [m for m in D.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bn_d) == 3  # every hidden conv but the first


def test_paper_init_and_defaults():
    config = DCGANConfig()
    assert (config.z_dim, config.lr, config.beta1, config.init_std) == (100, 2e-4, 0.5, 0.02)
    assert DCGANConfig.train_defaults["batch_size"] == 128
    torch.manual_seed(0)
    gan = build(DCGANConfig(ngf=32, ndf=32), DataSpec(kind="image", channels=1, resolution=64))
    weights = torch.cat([m.weight.flatten() for m in gan.generator.modules() if isinstance(m, nn.ConvTranspose2d)])
    assert abs(weights.std().item() - 0.02) < 0.002 and abs(weights.mean().item()) < 0.001
    gammas = torch.cat([m.weight for m in gan.discriminator.modules() if isinstance(m, nn.BatchNorm2d)])
    assert abs(gammas.mean().item() - 1.0) < 0.01
    opt_g, opt_d = gan.objective.optimizers(gan.generator, gan.discriminator)
    assert opt_g.param_groups[0]["lr"] == 2e-4 and opt_g.param_groups[0]["betas"] == (0.5, 0.999)


def test_conditional_projection_uses_the_label():
    torch.manual_seed(0)
    gan = build(DCGANConfig(ngf=4, ndf=4, conditional=True), DataSpec(kind="image", channels=1, resolution=32, num_classes=10))
    G, D = gan.generator.eval(), gan.discriminator.eval()
    z = torch.randn(2, 100)
    assert not torch.equal(G(z, torch.tensor([0, 0])), G(z, torch.tensor([1, 1])))
    x = G(z, torch.tensor([0, 0]))
    assert not torch.equal(D(x, torch.tensor([0, 0])), D(x, torch.tensor([3, 3])))


def test_unsupported_resolution_and_data():
    with pytest.raises(GancliError, match="got 33"):
        build(DCGANConfig(), DataSpec(kind="image", channels=3, resolution=33))
    with pytest.raises(GancliError, match="images"):
        build(DCGANConfig(), DataSpec(kind="points", dim=2))
    with pytest.raises(GancliError, match="labelled"):
        build(DCGANConfig(conditional=True), DataSpec(kind="image", channels=3, resolution=32))
