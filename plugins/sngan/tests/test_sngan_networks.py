"""Where spectral norm, attention and class conditioning go in the built sngan and sagan networks."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from gancli import config as run_config
from gancli.data.spec import DataSpec
from gancli.errors import GancliError
from gancli.nn import ConditionalBatchNorm2d, SelfAttention, is_spectrally_normalized, spectral_norm_estimate
from gancli_plugin_sngan.config import SAGANConfig, SNGANConfig
from gancli_plugin_sngan.model import build_sagan, build_sngan

TINY = {"z_dim": 8, "g_ch": 2, "d_ch": 4}
WEIGHTED = (nn.Conv2d, nn.Linear, nn.Embedding)


def _spec(num_classes=0, resolution=32, channels=1):
    return DataSpec(kind="image", channels=channels, resolution=resolution, num_classes=num_classes, name="t")


def _weighted_layers(module: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in module.named_modules() if isinstance(m, WEIGHTED)]


def _paper_matrix(layer: nn.Module) -> torch.Tensor:
    # W̄ as the paper views it, (out, in·k·k); an embedding table is (classes, features)
    return layer.weight.detach().reshape(layer.weight.shape[0], -1)


@pytest.mark.parametrize("build, config, g_sn", [(build_sngan, SNGANConfig, False), (build_sagan, SAGANConfig, True)])
def test_spectral_norm_is_on_every_discriminator_weight_and_in_the_generator_only_for_sagan(build, config, g_sn):
    gan = build(config(**TINY), _spec(num_classes=3))
    d_layers = _weighted_layers(gan.discriminator)
    assert any(isinstance(m, nn.Embedding) for _, m in d_layers)  # the projection embedding
    assert all(is_spectrally_normalized(m) for _, m in d_layers), [n for n, m in d_layers if not is_spectrally_normalized(m)]
    g_layers = _weighted_layers(gan.generator)
    assert g_layers and all(is_spectrally_normalized(m) == g_sn for _, m in g_layers)


def test_every_spectrally_normalized_discriminator_layer_has_largest_singular_value_one_while_training():
    gan = build_sngan(SNGANConfig(**TINY), _spec(num_classes=3))
    D = gan.discriminator.train()
    optimizer = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.0, 0.9))
    x, y = torch.rand(8, 1, 32, 32) * 2 - 1, torch.arange(8) % 3
    for _ in range(20):  # hinge steps on "real" scores: W moves, u follows by one power step per forward
        loss = torch.relu(1 - D(x, y)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    D.eval()
    layers = [(name, m) for name, m in _weighted_layers(D)]
    assert len(layers) > 10
    for name, layer in layers:
        sigma = torch.linalg.matrix_norm(_paper_matrix(layer), 2)
        assert sigma.item() == pytest.approx(1.0, abs=0.02), name


@pytest.mark.parametrize("side, g_input, d_input", [(None, 16, 16), (8, 8, 8)])
def test_sagan_attends_at_the_configured_resolution_in_both_networks(side, g_input, d_input):
    gan = build_sagan(SAGANConfig(**TINY, attention_resolution=side), _spec())
    seen = {}
    for net, module in (("G", gan.generator), ("D", gan.discriminator)):
        attention = [m for m in module.modules() if isinstance(m, SelfAttention)]
        assert len(attention) == 1
        attention[0].register_forward_pre_hook(lambda m, args, net=net: seen.update({net: tuple(args[0].shape)}))
        assert all(is_spectrally_normalized(c) for c in (attention[0].query, attention[0].key, attention[0].value))
    with torch.no_grad():
        gan.discriminator(gan.generator(torch.randn(2, 8)))
    assert seen["G"][2:] == (g_input, g_input) and seen["D"][2:] == (d_input, d_input)


def test_sngan_has_no_attention():
    gan = build_sngan(SNGANConfig(**TINY), _spec())
    assert not [m for net in (gan.generator, gan.discriminator) for m in net.modules() if isinstance(m, SelfAttention)]


def test_attention_at_a_side_one_network_lacks_is_one_clear_error():
    with pytest.raises(GancliError, match=r"attention_resolution=32 .* choose one of 8, 16"):
        build_sagan(SAGANConfig(**TINY, attention_resolution=32), _spec())


def test_labelled_data_makes_a_conditional_model_and_unlabelled_data_an_unconditional_one():
    conditional = build_sngan(SNGANConfig(**TINY), _spec(num_classes=10))
    assert conditional.generator.num_classes == 10
    assert any(isinstance(m, ConditionalBatchNorm2d) for m in conditional.generator.modules())
    assert conditional.discriminator.head.embed is not None
    G, z = conditional.generator.eval(), torch.randn(4, 8)
    zeros, ones = torch.zeros(4, dtype=torch.long), torch.ones(4, dtype=torch.long)
    with torch.no_grad():  # the class tables start at gain 1, bias 0 (sngan_projection): every class alike
        assert torch.equal(G(z, zeros), G(z, ones))
    for name, p in G.named_parameters():
        if name.endswith(("gamma", "beta")):
            nn.init.normal_(p, 0.0, 0.5)
    with torch.no_grad():  # trained tables: the class changes the image, the same class gives the same image
        assert torch.equal(G(z, zeros), G(z, zeros.clone())) and not torch.allclose(G(z, zeros), G(z, ones))

    unconditional = build_sngan(SNGANConfig(**TINY), _spec(num_classes=0))
    assert unconditional.generator.num_classes == 0
    assert not any(isinstance(m, ConditionalBatchNorm2d) for m in unconditional.generator.modules())
    assert unconditional.discriminator.head.embed is None


def test_set_conditional_false_forces_an_unconditional_model_on_labelled_data():
    run, family_config = run_config.resolve("sagan", flags={"data": {"source": "fashion-mnist"}},
                                            overrides=["conditional=false"])
    assert family_config.conditional is False
    gan = build_sagan(family_config.model_copy(update=TINY), _spec(num_classes=10))
    assert gan.generator.num_classes == 0 and gan.discriminator.head.embed is None


def test_conditional_true_on_unlabelled_data_is_one_clear_error():
    with pytest.raises(GancliError, match="conditional=true needs labelled data"):
        build_sngan(SNGANConfig(**TINY, conditional=True), _spec(num_classes=0))


@pytest.mark.parametrize("build, config, resolution, widths", [
    (build_sngan, SNGANConfig, 64, (1, 1)), (build_sngan, SNGANConfig, 128, (1, 1)),
    # attention at 32×32 needs 8 channels there: 2·g_ch and d_ch at 64 px, 4·g_ch and 2·d_ch at 128 px
    (build_sagan, SAGANConfig, 64, (4, 8)), (build_sagan, SAGANConfig, 128, (2, 4)),
])
def test_the_64_and_128_px_networks(build, config, resolution, widths):
    g_ch, d_ch = widths
    gan = build(config(z_dim=8, g_ch=g_ch, d_ch=d_ch), _spec(num_classes=3, resolution=resolution, channels=3))
    G, D = gan.generator.eval(), gan.discriminator.eval()
    y = torch.arange(2) % 3
    with torch.no_grad():
        x = G(torch.randn(2, 8), y)
        out, features = D(x, y, return_features=True)
    assert x.shape == (2, 3, resolution, resolution) and out.shape == (2,)
    # sngan_projection: G starts at 16·ch channels and D ends at 16·ch
    assert G.bottom_channels == 16 * g_ch and features.shape == (2, 16 * d_ch)


@pytest.mark.parametrize("spec, message", [
    (_spec(resolution=48), "square images of side 32, 64, 128"),
    (DataSpec(kind="points", dim=2), "trains on images"),
    (DataSpec(kind="image", channels=4, resolution=32), "1- or 3-channel"),
])
def test_unsupported_data_is_one_clear_error(spec, message):
    with pytest.raises(GancliError, match=message):
        build_sngan(SNGANConfig(**TINY), spec)


def test_an_ema_copy_gets_spectral_norms_of_its_own_weights_before_sampling():
    import copy

    gan = build_sagan(SAGANConfig(**TINY), _spec())
    ema = copy.deepcopy(gan.generator).eval()
    with torch.no_grad():  # an average of past weights: not the weights u, v were estimated for
        for name, p in ema.named_parameters():
            if name.endswith("original"):
                p.add_(torch.randn_like(p) * p.std())
    layers = [m for _, m in _weighted_layers(ema)]
    stale = [abs(spectral_norm_estimate(m).item() / torch.linalg.matrix_norm(
        m.parametrizations.weight.original.detach().reshape(m.weight.shape[0], -1), 2).item() - 1) for m in layers]
    assert max(stale) > 0.02
    gan.objective.before_sampling(ema, is_ema=True)
    for layer in layers:
        sigma = torch.linalg.matrix_norm(layer.parametrizations.weight.original.detach().reshape(layer.weight.shape[0], -1), 2)
        assert spectral_norm_estimate(layer).item() == pytest.approx(sigma.item(), rel=0.01)


@pytest.mark.parametrize("build, config, gain", [
    (build_sngan, SNGANConfig, 2 ** 0.5),  # sngan_projection: GlorotUniform(√2) in the residual blocks
    (build_sagan, SAGANConfig, 1.0),  # brain-research/self-attention-gan: xavier_initializer everywhere
])
def test_residual_convs_start_at_the_reference_codes_xavier_gain(build, config, gain):
    import math

    torch.manual_seed(0)
    gan = build(config.model_validate({"z_dim": 8, "g_ch": 16, "d_ch": 16}), _spec())
    block = gan.generator.blocks[0]
    for conv in (block.conv1, block.conv2):
        weight = conv.parametrizations.weight.original if hasattr(conv, "parametrizations") else conv.weight
        weight = weight.detach()
        fan_in, fan_out = weight.shape[1] * 9, weight.shape[0] * 9
        bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
        # a uniform sample of thousands of weights reaches within 1% of its bound and never past it
        assert 0.99 * bound < float(weight.abs().max()) <= bound * (1 + 1e-6), (float(weight.abs().max()), bound)


def test_class_mixtures_weight_the_classes_conditional_batchnorm_parameters():
    torch.manual_seed(0)
    G = build_sngan(SNGANConfig.model_validate({**TINY, "conditional": True}), _spec(num_classes=3)).generator.eval()
    assert G.accepts_class_mixtures
    z = torch.randn(2, 8)
    with torch.no_grad():
        by_label = G(z, torch.tensor([2, 2]))
        one_hot = G(z, torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]))
        norm = G.blocks[0].norm1
        with torch.no_grad():
            norm.gamma.copy_(torch.randn_like(norm.gamma))
        half = norm.gain_and_bias(torch.tensor([[0.5, 0.5, 0.0]]))[0]
    assert torch.allclose(one_hot, by_label, atol=1e-6)
    assert torch.allclose(half, 1 + (norm.gamma[0] + norm.gamma[1]) / 2)
