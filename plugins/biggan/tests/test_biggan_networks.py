"""BigGAN's networks as BigGAN-PyTorch builds them: widths, SN, skip-z, the shared embedding, BigGAN-deep's skips."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from gancli.errors import GancliError
from gancli.nn import ConditionalBatchNorm2d, GeneratorResBlock, SelfAttention, is_spectrally_normalized
from gancli_plugin_biggan.deep_blocks import DeepDiscriminatorBlock, DeepGeneratorBlock

from _biggan_testkit import NUM_CLASSES, tiny_gan


def _blocks(net) -> list[tuple[int, int]]:
    return [(b.in_ch, b.out_ch) for b in net.blocks]


def test_channel_multipliers_at_128_px_are_biggan_pytorchs():
    gan = tiny_gan(resolution=128, g_ch=4, d_ch=8, z_dim=12)
    G, D = gan.generator, gan.discriminator
    assert _blocks(G) == [(4 * a, 4 * b) for a, b in [(16, 16), (16, 8), (8, 4), (4, 2), (2, 1)]]
    assert _blocks(D) == [(3, 8)] + [(8 * a, 8 * b) for a, b in [(1, 2), (2, 4), (4, 8), (8, 16), (16, 16)]]
    assert [b.downsample for b in D.blocks] == [True] * 5 + [False]
    assert [b.hidden_ch for b in D.blocks] == [b.out_ch for b in D.blocks]  # BigGAN's "wide" D
    assert G.num_chunks == 6 and G.chunk_size == 2  # 5 blocks + the input layer
    # attention at 64×64 in G (after the 4th block) and after D's first block (64×64), as --G_attn/--D_attn 64
    assert G.attention_after == 3 and D.attention_after == 0
    x = G(torch.randn(2, 12), torch.tensor([0, 1]))
    assert x.shape == (2, 3, 128, 128) and D(x, torch.tensor([0, 1])).shape == (2,)


def test_32_px_widths_and_deep_stages():
    G, D = (lambda g: (g.generator, g.discriminator))(tiny_gan())
    assert _blocks(G) == [(8, 8)] * 3 and _blocks(D) == [(3, 8)] + [(8, 8)] * 3
    assert [b.downsample for b in D.blocks] == [True, True, False, False]
    deep = tiny_gan("biggan-deep", resolution=64, g_ch=1, d_ch=4, g_attention=0, d_attention=0)
    G, D = deep.generator, deep.discriminator
    # two blocks per resolution; the first keeps the width, the second narrows and upsamples
    assert _blocks(G) == [(16, 16), (16, 16), (16, 16), (16, 8), (8, 8), (8, 4), (4, 4), (4, 2)]
    assert [b.upsample for b in G.blocks] == [False, True] * 4
    assert _blocks(D) == [(4, 8), (8, 8), (8, 16), (16, 16), (16, 32), (32, 32), (32, 64), (64, 64)]
    assert [b.downsample for b in D.blocks] == [True, False] * 4


def test_spectral_norm_everywhere_but_the_shared_embedding(arch):
    gan = tiny_gan(arch)
    for net in (gan.generator, gan.discriminator):
        for name, module in net.named_modules():
            if isinstance(module, (nn.Conv2d, nn.Linear, nn.Embedding)):
                assert is_spectrally_normalized(module) == (name != "shared"), name
    assert gan.generator.shared is not None and not is_spectrally_normalized(gan.generator.shared)


def test_the_shared_embedding_is_one_module_read_by_every_conditional_norm(arch):
    G = tiny_gan(arch).generator.eval()
    embeddings = [name for name, m in G.named_modules() if isinstance(m, nn.Embedding)]
    assert embeddings == ["shared"]
    norms = [m for m in G.modules() if isinstance(m, ConditionalBatchNorm2d)]
    assert norms and all(m.mode == "vector" for m in norms)
    seen = []
    handles = [m.register_forward_hook(lambda mod, args, out: seen.append(args[1])) for m in norms]
    y = torch.tensor([0, 3, 4, 1])
    with torch.no_grad():
        G(torch.randn(4, G.z_dim), y)
        expected = G.shared(y)
    for h in handles:
        h.remove()
    assert len(seen) == len(norms)
    for cond in seen:  # every condition starts with shared(y); gain = 1 + γ(c) (ConditionalBatchNorm2d)
        assert torch.equal(cond[:, : G.shared_dim], expected)


def test_hierarchical_z_gives_each_block_its_own_chunk_and_every_chunk_changes_the_output():
    G = tiny_gan(z_dim=12).generator.eval()  # 3 blocks + input layer: chunks of 3
    assert G.num_chunks == 4 and G.chunk_size == 3
    y = torch.tensor([1, 2])
    z = torch.randn(2, 12)

    def block_conditions(latents):
        seen = []
        handles = [b.norm1.register_forward_hook(lambda m, args, out: seen.append(args[1].clone())) for b in G.blocks]
        with torch.no_grad():
            x = G(latents, y)
        for h in handles:
            h.remove()
        return x, seen

    base, base_conds = block_conditions(z)
    for chunk in range(G.num_chunks):
        moved = z.clone()
        moved[:, chunk * 3 : (chunk + 1) * 3] += 1.0
        x, conds = block_conditions(moved)
        assert not torch.allclose(x, base), f"chunk {chunk} does not reach the output"
        for block, (c, c0) in enumerate(zip(conds, base_conds)):
            # chunk 0 feeds the linear layer only; chunk i feeds block i − 1 only, after shared(y)
            assert torch.equal(c, c0) != (chunk == block + 1), (chunk, block)
            assert torch.equal(c[:, G.shared_dim :], moved[:, (block + 1) * 3 : (block + 2) * 3])


def test_biggan_deep_feeds_the_full_z_and_class_to_every_block():
    G = tiny_gan("biggan-deep").generator.eval()
    z, y = torch.randn(3, G.z_dim), torch.tensor([0, 1, 2])
    seen = []
    handles = [b.norm1.register_forward_hook(lambda m, args, out: seen.append(args[1])) for b in G.blocks]
    with torch.no_grad():
        G(z, y)
        full = torch.cat([G.shared(y), z], dim=1)
    for h in handles:
        h.remove()
    assert G.linear.in_features == G.shared_dim + G.z_dim
    assert len(seen) == len(G.blocks) and all(torch.equal(c, full) for c in seen)


def test_deep_generator_block_drops_channels_instead_of_a_shortcut_conv():
    torch.manual_seed(0)
    block = DeepGeneratorBlock(16, 8, cond_dim=4, upsample=True, init="orthogonal").eval()
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 4  # conv1..conv4, no 1×1 shortcut conv
    block.conv4.register_forward_hook(lambda module, args, out: torch.zeros_like(out))  # residual branch off
    with torch.no_grad():
        x, cond = torch.randn(2, 16, 4, 4), torch.randn(2, 4)
        out = block(x, cond)
    assert torch.equal(out, F.interpolate(x[:, :8], scale_factor=2, mode="nearest"))


def test_deep_discriminator_block_keeps_its_channels_and_adds_new_ones():
    torch.manual_seed(0)
    block = DeepDiscriminatorBlock(8, 16, downsample=True).eval()
    assert block.extra_channels.out_channels == 8 and block.extra_channels.in_channels == 8
    block.conv4.register_forward_hook(lambda module, args, out: torch.zeros_like(out))  # residual branch off
    with torch.no_grad():
        x = torch.randn(2, 8, 8, 8)
        out = block(x)
        pooled = F.avg_pool2d(x, 2)
    assert torch.equal(out[:, :8], pooled)
    assert torch.allclose(out[:, 8:], block.extra_channels(pooled))
    assert DeepDiscriminatorBlock(8, 8, downsample=False).extra_channels is None


def test_attention_placement_and_its_errors():
    gan = tiny_gan(g_attention=32, d_attention=8)
    assert gan.generator.attention_after == 2 and gan.discriminator.attention_after == 1
    assert isinstance(gan.generator.attention, SelfAttention)
    none = tiny_gan(g_attention=0, d_attention=0)
    assert none.generator.attention is None and none.discriminator.attention is None
    with pytest.raises(GancliError, match="g_attention to one of 8, 16, 32"):
        tiny_gan(g_attention=64)


def test_user_errors_are_one_clear_line():
    with pytest.raises(GancliError, match="needs labelled data.*sub-folder per class"):
        tiny_gan(num_classes=0)
    with pytest.raises(GancliError, match="--resolution 32"):
        tiny_gan(resolution=28)
    with pytest.raises(GancliError, match="4 equal chunks.*use 8 or 12"):
        tiny_gan(z_dim=10)
    with pytest.raises(GancliError, match="hierarchical=false applies to arch=biggan"):
        tiny_gan("biggan-deep", hierarchical=False)
    unconditional = tiny_gan(num_classes=0, conditional=False).generator
    assert unconditional.shared is None and unconditional.num_classes == 0
    assert isinstance(unconditional.blocks[0], GeneratorResBlock) and unconditional.cond_dim == unconditional.chunk_size


def test_generator_uses_its_batchnorm_output_layer_and_tanh(arch):
    G = tiny_gan(arch, channels=1).generator.eval()
    assert isinstance(G.output_norm, nn.BatchNorm2d) and G.output_norm.affine
    x = G(torch.randn(4, G.z_dim) * 10, torch.arange(4) % NUM_CLASSES)
    assert x.shape == (4, 1, 32, 32) and x.abs().max() <= 1.0
