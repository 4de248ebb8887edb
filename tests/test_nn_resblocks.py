"""SNGAN residual blocks (gancli.nn.resblocks) and the reference init schemes (gancli.nn.initialization)."""
from __future__ import annotations

import math

import pytest
import safetensors.torch
import torch
from torch import nn
from torch.nn import functional as F

from gancli.nn.conditional import ConditionalBatchNorm2d, ProjectionHead
from gancli.nn.initialization import init_weights
from gancli.nn.resblocks import DiscriminatorResBlock, GeneratorResBlock
from gancli.nn.spectral import is_spectrally_normalized, spectral_norm, spectral_norm_estimate, unnormalized_weight


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _convs(block: nn.Module) -> list[nn.Conv2d]:
    return [m for m in block.modules() if isinstance(m, nn.Conv2d)]


# --- generator block -------------------------------------------------------------------------


def test_generator_block_doubles_the_resolution_unless_told_not_to():
    up = GeneratorResBlock(8, 4)
    assert up(torch.randn(2, 8, 4, 6)).shape == (2, 4, 8, 12)
    same = GeneratorResBlock(8, 8, upsample=False)
    assert same(torch.randn(2, 8, 4, 6)).shape == (2, 8, 4, 6)


def test_generator_shortcut_conv_exists_when_upsampling_or_changing_channels():
    assert GeneratorResBlock(8, 8).shortcut is not None  # upsampling alone needs it (reference)
    assert GeneratorResBlock(8, 4, upsample=False).shortcut is not None
    identity = GeneratorResBlock(8, 8, upsample=False)
    assert identity.shortcut is None
    with torch.no_grad():  # silence the residual branch: what is left is the shortcut
        identity.conv2.weight.zero_()
        identity.conv2.bias.zero_()
    x = torch.randn(2, 8, 4, 4)
    assert torch.equal(identity(x), x)


def test_generator_block_is_norm_relu_upsample_conv_norm_relu_conv_plus_upsampled_shortcut():
    block = GeneratorResBlock(8, 4).train()
    x = torch.randn(3, 8, 4, 4)
    out = block(x)
    h = F.relu(block.norm1(x))
    h = F.interpolate(h, scale_factor=2, mode="nearest")
    h = block.conv2(F.relu(block.norm2(block.conv1(h))))
    shortcut = block.shortcut(x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3))
    assert torch.allclose(out, h + shortcut, atol=1e-6)


def test_class_conditional_generator_block_is_the_plain_block_at_init_and_then_uses_the_label():
    plain = GeneratorResBlock(8, 4, norm="batch").train()
    by_class = GeneratorResBlock(8, 4, norm="class", num_classes=3).train()
    for ours, theirs in zip(_convs(plain), _convs(by_class)):
        theirs.load_state_dict(ours.state_dict())
    x = torch.randn(4, 8, 4, 4)
    y = torch.tensor([0, 1, 2, 1])
    assert torch.allclose(by_class(x, y), plain(x), atol=1e-5)

    with torch.no_grad():
        for norm in (by_class.norm1, by_class.norm2):
            norm.gamma.normal_(0, 0.5)
            norm.beta.normal_(0, 0.5)
    # eval mode: in training, norm2's batch statistics would carry one label to every example
    by_class.eval()
    out = by_class(x, y)
    relabelled = by_class(x, torch.tensor([0, 1, 2, 2]))
    assert torch.equal(out[:3], relabelled[:3]) and not torch.allclose(out[3], relabelled[3])
    with pytest.raises(ValueError, match="class labels"):
        by_class(x)


def test_vector_conditional_generator_block_with_spectral_norm():
    block = GeneratorResBlock(8, 4, norm="vector", cond_dim=5, spectral_norm=True).train()
    assert isinstance(block.norm1, ConditionalBatchNorm2d) and block.norm1.mode == "vector"
    assert all(is_spectrally_normalized(conv) for conv in _convs(block))
    assert is_spectrally_normalized(block.norm2.gamma) and is_spectrally_normalized(block.norm2.beta)
    x, c = torch.randn(3, 8, 4, 4), torch.randn(3, 5)
    assert block(x, c).shape == (3, 4, 8, 8)
    block.eval()
    other = c.clone()
    other[2] += 1.0
    # a matrix product may round identical rows differently by their place in the batch
    assert torch.allclose(block(x, c)[:2], block(x, other)[:2], rtol=0, atol=1e-6)
    assert not torch.allclose(block(x, c)[2], block(x, other)[2])


def test_generator_block_refuses_missing_settings():
    with pytest.raises(ValueError, match="num_classes"):
        GeneratorResBlock(8, 4, norm="class")
    with pytest.raises(ValueError, match="cond_dim"):
        GeneratorResBlock(8, 4, norm="vector")
    with pytest.raises(ValueError, match="unknown norm"):
        GeneratorResBlock(8, 4, norm="group")
    with pytest.raises(ValueError, match="unknown init"):
        GeneratorResBlock(8, 4, init="kaiming")


# --- discriminator block ---------------------------------------------------------------------


def test_discriminator_blocks_halve_the_resolution_unless_told_not_to():
    assert DiscriminatorResBlock(3, 8, first=True)(torch.randn(2, 3, 8, 8)).shape == (2, 8, 4, 4)
    assert DiscriminatorResBlock(8, 16)(torch.randn(2, 8, 8, 8)).shape == (2, 16, 4, 4)
    assert DiscriminatorResBlock(8, 8, downsample=False)(torch.randn(2, 8, 8, 8)).shape == (2, 8, 8, 8)


def test_discriminator_shortcut_and_spectral_norm_follow_the_reference():
    first = DiscriminatorResBlock(3, 8, first=True)
    assert first.shortcut is not None and first.hidden_ch == 8
    assert DiscriminatorResBlock(8, 8).shortcut is not None  # downsampling alone needs it
    plain = DiscriminatorResBlock(8, 8, downsample=False)
    assert plain.shortcut is None and plain.hidden_ch == 8
    assert DiscriminatorResBlock(8, 16).hidden_ch == 8  # sngan_projection: hidden = in
    assert DiscriminatorResBlock(8, 16, hidden_ch=16).conv1.out_channels == 16  # BigGAN's wide D
    assert all(is_spectrally_normalized(conv) for conv in _convs(first))
    assert not any(is_spectrally_normalized(c) for c in _convs(DiscriminatorResBlock(3, 8, spectral_norm=False)))


def test_a_regular_block_sees_only_the_relu_of_its_input_in_the_residual_branch():
    block = DiscriminatorResBlock(8, 8, downsample=False).eval()
    x = torch.randn(2, 8, 6, 6)
    assert torch.allclose(block(x) - x, block(F.relu(x)) - F.relu(x), atol=1e-6)


def test_the_first_block_has_no_leading_relu_and_pools_before_its_shortcut_conv():
    block = DiscriminatorResBlock(3, 8, first=True).eval()
    x = torch.randn(2, 3, 8, 8)
    residual = F.avg_pool2d(block.conv2(F.relu(block.conv1(x))), 2)
    assert torch.allclose(block(x), residual + block.shortcut(F.avg_pool2d(x, 2)), atol=1e-6)
    negative_part_matters = block(x) - block(F.relu(x))
    assert negative_part_matters.abs().max() > 1e-3


def test_a_regular_block_is_relu_conv_relu_conv_pool_plus_conv_then_pool():
    block = DiscriminatorResBlock(8, 16).eval()
    x = torch.randn(2, 8, 8, 8)
    residual = F.avg_pool2d(block.conv2(F.relu(block.conv1(F.relu(x)))), 2)
    assert torch.allclose(block(x), residual + F.avg_pool2d(block.shortcut(x), 2), atol=1e-6)


# --- initialisation --------------------------------------------------------------------------


def _xavier_bound(conv: nn.Conv2d, gain: float) -> float:
    fan_in = conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
    fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
    return gain * math.sqrt(6.0 / (fan_in + fan_out))


def test_xavier_init_uses_gain_sqrt2_inside_the_residual_branch_and_1_on_the_shortcut():
    block = GeneratorResBlock(32, 32, init="xavier_uniform")
    for conv, gain in ((block.conv1, math.sqrt(2)), (block.conv2, math.sqrt(2)), (block.shortcut, 1.0)):
        bound = _xavier_bound(conv, gain)
        largest = float(conv.weight.detach().abs().max())
        assert 0.97 * bound < largest <= bound
        assert torch.equal(conv.bias, torch.zeros_like(conv.bias))


def test_orthogonal_init_gives_orthonormal_kernels_even_under_spectral_norm():
    block = DiscriminatorResBlock(8, 16, init="orthogonal")
    for conv in _convs(block):
        matrix = unnormalized_weight(conv).detach().reshape(conv.out_channels, -1)
        rows = min(matrix.shape)
        gram = matrix @ matrix.T if matrix.shape[0] <= matrix.shape[1] else matrix.T @ matrix
        assert torch.allclose(gram, torch.eye(rows), atol=1e-5)
        assert float(spectral_norm_estimate(conv)) == pytest.approx(1.0, rel=0.01)


def test_init_weights_on_spectrally_normalized_layers_reestimates_sigma():
    model = nn.Sequential(spectral_norm(nn.Conv2d(4, 6, 3)), nn.ReLU(), spectral_norm(nn.Linear(6, 3)))
    init_weights(model, "normal")
    for layer in (model[0], model[2]):
        weight = unnormalized_weight(layer).detach()
        assert float(weight.std()) == pytest.approx(0.02, rel=0.3)
        true_sigma = torch.linalg.matrix_norm(weight.reshape(weight.shape[0], -1), 2)
        assert float(spectral_norm_estimate(layer)) == pytest.approx(float(true_sigma), rel=0.01)


# --- together --------------------------------------------------------------------------------


def test_a_tiny_sagan_style_pair_trains_under_bf16_and_round_trips_through_safetensors():
    def generator():
        return nn.ModuleList([
            GeneratorResBlock(8, 8, norm="vector", cond_dim=6, spectral_norm=True, init="orthogonal"),
            GeneratorResBlock(8, 8, norm="vector", cond_dim=6, spectral_norm=True, init="orthogonal"),
        ])

    def run(g, h, c):
        for block in g:
            h = block(h, c)
        return torch.tanh(h[:, :3])

    g = generator().train()
    d_blocks = nn.Sequential(DiscriminatorResBlock(3, 8, first=True), DiscriminatorResBlock(8, 8))
    head = ProjectionHead(8, num_classes=4)
    z, c, y = torch.randn(4, 8, 2, 2), torch.randn(4, 6), torch.tensor([0, 1, 2, 3])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fake = run(g, z, c)
        features = F.relu(d_blocks(fake)).sum(dim=(2, 3))
        hinge_g = -head(features.float(), y).mean()
    hinge_g.backward()
    assert fake.shape == (4, 3, 8, 8)
    assert torch.isfinite(hinge_g)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in g.parameters())

    restored = generator().train()
    restored.load_state_dict(safetensors.torch.load(safetensors.torch.save(g.state_dict())), strict=True)
    assert torch.equal(run(g, z, c), run(restored, z, c))
