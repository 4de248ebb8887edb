"""Progressive GAN networks and objective pieces, without training: the fade-in properties of G and D,
the reals D sees, the gradient penalty's pixel space, the paper's widths and settings, user errors."""
from __future__ import annotations

import pytest
import torch

from gancli.data.spec import DataSpec
from gancli.errors import GancliError
from gancli.nn import downscale2d, upscale2d
from gancli.objective import Progress
from gancli.regularizers import gradient_penalty
from gancli_plugin_progan.config import ProGANConfig
from gancli_plugin_progan.discriminator import ProGANDiscriminator
from gancli_plugin_progan.generator import ProGANGenerator
from gancli_plugin_progan.model import build
from gancli_plugin_progan.objective import penalty_in_target_pixels

TINY = {"fmap_base": 32, "fmap_max": 8}


def tiny_networks(target=16, channels=3):
    torch.manual_seed(0)
    G = ProGANGenerator(6, channels, target, **TINY).eval()
    D = ProGANDiscriminator(channels, target, **TINY, mbstd_group_size=4).eval()
    return G, D


@torch.no_grad()
def test_generator_fade_in_starts_at_the_upsampled_previous_image_and_ends_at_the_new_block():
    G, _ = tiny_networks(target=16)
    z = torch.randn(4, 6)
    for resolution in (8, 16):
        G.alpha.fill_(1.0)  # the previous phase, stabilised
        previous = G.forward_current(z)
        G.grow()
        G.alpha.fill_(0.0)
        assert G.current_resolution == resolution and G.fading
        assert torch.equal(G.forward_current(z), upscale2d(previous))
        G.alpha.fill_(1.0)
        # α = 1: the new block and its to-RGB alone, computed here layer by layer
        names = list(G.blocks)
        x = G.latent_norm(z)
        for name in names:
            x = G.blocks[name](x)
        assert torch.equal(G.forward_current(z), G.to_rgb[names[-1]](x))
        G.alpha.fill_(0.5)
        halfway = G.forward_current(z)
        assert torch.allclose(halfway, 0.5 * upscale2d(previous) + 0.5 * G.to_rgb[names[-1]](x), atol=1e-6)


@torch.no_grad()
def test_discriminator_fade_in_starts_at_the_previous_score_of_the_downscaled_image():
    _, D = tiny_networks(target=16)
    x16 = torch.randn(4, 3, 16, 16)
    for resolution in (8, 16):
        x = downscale2d(x16, 16 // resolution)
        D.alpha.fill_(1.0)
        previous = D(downscale2d(x))
        D.grow()
        D.alpha.fill_(0.0)
        assert D.current_resolution == resolution and D.fading
        assert torch.equal(D(x), previous)
        D.alpha.fill_(1.0)
        names = list(D.blocks)[::-1]
        h = D.blocks[names[0]](D.from_rgb[names[0]](x))  # the new input block alone
        for name in names[1:-1]:
            h = D.blocks[name](h)
        assert torch.equal(D(x), D.blocks[names[-1]](h)[0])
        # larger images are average-pooled to the current resolution first
        assert torch.equal(D(upscale2d(x, 2)), D(x))


@torch.no_grad()
def test_generator_output_has_the_target_shape_and_range_at_every_phase():
    G, _ = tiny_networks(target=32, channels=1)
    z = torch.randn(5, 6)
    for resolution in (4, 8, 16, 32):
        if resolution > 4:
            G.grow()
        for alpha in (0.0, 0.5, 1.0):
            G.alpha.fill_(alpha)
            x = G(z)
            assert G.current_resolution == resolution
            assert x.shape == (5, 1, 32, 32) and x.min() >= -1 and x.max() <= 1
            assert G(z, current_resolution=True).shape == (5, 1, resolution, resolution)
    with pytest.raises(ValueError, match="target"):
        G.grow()


def test_gradient_penalty_is_measured_in_the_target_resolutions_pixels():
    # the reference's D takes the nearest-upsampled full-resolution image: its penalty there must
    # equal ours at the current resolution
    _, D = tiny_networks(target=16)
    real, fake = torch.randn(4, 3, 4, 4), torch.randn(4, 3, 4, 4)
    eps = torch.rand(4, 1, 1, 1)
    ours = penalty_in_target_pixels(D, real, fake, eps, factor=4)
    full = gradient_penalty(D, upscale2d(real, 4), upscale2d(fake, 4), eps=eps)
    at_current = gradient_penalty(D, real, fake, eps=eps)
    assert torch.allclose(ours, full, rtol=1e-4)
    assert not torch.allclose(ours, at_current, rtol=1e-2)


def test_widths_are_the_papers_table_2():
    torch.manual_seed(0)
    G = ProGANGenerator(512, 3, 1024, 8192, 512)
    D = ProGANDiscriminator(3, 1024, 8192, 512, 16)
    for _ in range(8):
        G.grow()
        D.grow()
    widths = [rgb.in_channels for rgb in G.to_rgb.values()]
    assert widths == [512, 512, 512, 512, 256, 128, 64, 32, 16]  # 4×4 … 1024×1024
    assert [rgb.conv.out_channels for rgb in D.from_rgb.values()] == widths
    final = D.blocks["4x4"]
    assert final.conv.in_channels == 513 and final.dense0.out_features == 512 and final.dense1.out_features == 1
    assert G.blocks["4x4"].dense.in_features == 512 and G.blocks["4x4"].dense.out_features == 512 * 16


def test_paper_settings_and_the_per_resolution_batch():
    config = ProGANConfig()
    assert (config.lr, config.beta1, config.beta2, config.adam_eps) == (1e-3, 0.0, 0.99, 1e-8)
    assert (config.gp_lambda, config.drift, config.kimg_per_phase) == (10.0, 1e-3, 800.0)
    assert ProGANConfig.train_defaults == {"batch_size": 16, "ema": True, "ema_decay": 0.999}
    gan = build(config, DataSpec(kind="image", channels=3, resolution=1024))
    objective = gan.objective
    assert gan.generator.z_dim == 512  # min(fmap_base, fmap_max), as networks.py's latent_size
    phase = 800_000
    # 4×4 for one phase, then a fade-in and a stabilisation phase per doubling
    batches = [objective.batch_size(Progress(0, k * phase)) for k in (0, 2, 9, 11, 13, 15, 17)]
    assert batches == [None, None, None, 14, 6, 3, 3]  # None: train.batch_size, the paper's 16 up to 128²
    stages = [objective.stage(Progress(0, int(k * phase))) for k in (0, 1, 1.5, 2, 17)]
    assert stages == ["4×4", "8×8 fade-in", "8×8 fade-in", "8×8", "1024×1024"]
    opt_g, opt_d = objective.optimizers(*tiny_networks())
    assert opt_g.param_groups[0]["lr"] == 1e-3 and opt_d.param_groups[0]["betas"] == (0.0, 0.99)


def test_begin_step_sets_alpha_linearly_and_grow_builds_the_phase_from_progress():
    config = ProGANConfig(z_dim=6, kimg_per_phase=1.0, **TINY)
    gan = build(config, DataSpec(kind="image", channels=1, resolution=16))
    G, D, objective = gan.generator, gan.discriminator, gan.objective
    assert objective.grow(Progress(0, 999), G, D) is False and G.current_resolution == 4
    assert objective.grow(Progress(0, 3250), G, D) is True  # 16×16, a quarter into its fade-in
    assert G.current_resolution == D.current_resolution == 16 and float(G.alpha) == pytest.approx(0.25)
    for images, alpha in ((3000, 0.0), (3500, 0.5), (4000, 1.0), (9000, 1.0)):
        objective.begin_step(Progress(0, images), G, D)
        assert float(G.alpha) == float(D.alpha) == pytest.approx(alpha)
    assert objective.grow(Progress(0, 9000), G, D) is False


def test_bad_data_is_one_clear_error():
    with pytest.raises(GancliError, match="--resolution 32"):
        build(ProGANConfig(), DataSpec(kind="image", channels=1, resolution=28))
    with pytest.raises(GancliError, match="images"):
        build(ProGANConfig(), DataSpec(kind="points", dim=2))
    with pytest.raises(GancliError, match="start_resolution"):
        build(ProGANConfig(start_resolution=64), DataSpec(kind="image", channels=1, resolution=32))
    with pytest.raises(GancliError, match="fmap_base"):
        build(ProGANConfig(fmap_base=4), DataSpec(kind="image", channels=1, resolution=32))
    with pytest.raises(ValueError, match="powers of two"):
        ProGANConfig(batch_sizes={24: 8})


def test_fused_resampling_convolutions_equal_resampling_then_convolving():
    import torch.nn.functional as F

    from gancli_plugin_progan.resample import ConvDownsample2d, UpsampleConv2d

    torch.manual_seed(0)
    x = torch.randn(2, 5, 6, 6, dtype=torch.float64)
    up = UpsampleConv2d(5, 7).double()
    down = ConvDownsample2d(5, 7).double()
    with torch.no_grad():
        up.bias.normal_()
        down.bias.normal_()
    w, b = up.effective_weight, up.effective_bias
    assert torch.allclose(up(x), F.conv2d(upscale2d(x), w, b, padding=1), atol=1e-12)
    w, b = down.effective_weight, down.effective_bias
    assert torch.allclose(down(x), F.avg_pool2d(F.conv2d(x, w, padding=1), 2) + b.reshape(1, -1, 1, 1), atol=1e-12)
    # equalized LR: unit-variance stored 3×3 weights, He constant for fan_in = in·3·3
    assert up.weight.shape == (7, 5, 3, 3) and up.weight_gain == pytest.approx(2**0.5 / (5 * 9) ** 0.5)


@pytest.mark.parametrize("name, resolution", [("progan-fashion-mnist", 32), ("progan-celeba-128", 128)])
def test_recipes_resolve_to_valid_settings(name, resolution):
    from pathlib import Path

    from gancli import config as cfg

    import gancli_plugin_progan

    path = Path(gancli_plugin_progan.__file__).parent / "recipes" / f"{name}.toml"
    run, family_config = cfg.resolve(None, recipe=str(path))
    assert run.family == "progan" and run.data.resolution == resolution and run.train.ema
    assert family_config.lr == 1e-3 and family_config.gp_lambda == 10.0 and family_config.drift == 1e-3


def test_the_penalty_target_and_its_normalisation_as_the_official_code():
    """A linear critic D(x) = w·x with ‖w‖ = 6 on images 2× below the target: the target-pixel norm is 3;
    with γ = 2 the penalty is (3 − 2)²/2² = 0.25, with γ = 1 it is (3 − 1)² = 4."""
    w = torch.zeros(1, 4, 4)
    w[0, 0, :4] = 3.0  # ‖w‖ = 6
    critic = lambda x: (x * w).flatten(1).sum(dim=1)  # noqa: E731
    real, fake, eps = torch.randn(3, 1, 4, 4), torch.randn(3, 1, 4, 4), torch.rand(3, 1, 1, 1)
    assert float(penalty_in_target_pixels(critic, real, fake, eps, 2, target=2.0)) == pytest.approx(0.25)
    assert float(penalty_in_target_pixels(critic, real, fake, eps, 2)) == pytest.approx(4.0)


def test_per_resolution_learning_rates_follow_the_growth():
    config = ProGANConfig.model_validate({"z_dim": 6, "fmap_base": 32, "fmap_max": 8, "kimg_per_phase": 0.024,
                                          "lr_per_resolution": {"8": 0.002}})
    gan = build(config, DataSpec(kind="image", channels=1, resolution=16))
    objective = gan.objective
    opt_g, opt_d = objective.optimizers(gan.generator, gan.discriminator)
    for images, resolution in ((0, 4), (30, 8), (80, 16)):
        progress = Progress(0, images)
        objective.grow(progress, gan.generator, gan.discriminator)
        objective.begin_step(progress, gan.generator, gan.discriminator)
        assert objective.state(progress).resolution == resolution
        wanted = 0.002 if resolution == 8 else config.lr
        assert [g["lr"] for g in opt_g.param_groups + opt_d.param_groups] == [wanted] * 2
