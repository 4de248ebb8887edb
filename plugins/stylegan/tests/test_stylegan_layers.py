"""The synthesis layers as the family builds them: every styled layer's output carries its style's
statistics, a fresh network starts as v1 does (constant of ones, zero noise strengths, scale bias 1)."""
from __future__ import annotations

import torch

from stylegan_testkit import build_tiny, randomize_noise_strengths


def _epilogue_outputs(G, w):
    """The output of every styled layer (StyleEpilogue) of the synthesis network, in order."""
    outputs = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: outputs.append(out))
             for name, m in G.synthesis.named_modules() if name.endswith(("epilogue0", "epilogue1"))]
    try:
        G.synthesis(w, noise_mode="const")
    finally:
        for hook in hooks:
            hook.remove()
    return outputs


def test_every_styled_layer_has_its_styles_mean_and_std_per_channel():
    """AdaIN (Karras et al. 2019, Eq. 1): after instance norm each feature map's mean is the style's
    shift y_b and its standard deviation |y_s|, whatever the input's statistics were."""
    G = build_tiny().generator.eval()
    randomize_noise_strengths(G)
    w = G.mapping(torch.randn(4, G.z_dim, generator=torch.Generator().manual_seed(0)))
    adains = [m for name, m in G.synthesis.named_modules() if name.endswith("adain")]
    outputs = _epilogue_outputs(G, w)
    assert len(adains) == len(outputs) == G.num_ws
    for layer, (adain, out) in enumerate(zip(adains, outputs)):
        scale, shift = adain.styles(w[:, layer])
        assert torch.allclose(out.mean(dim=(2, 3)), shift, atol=1e-5), layer
        assert torch.allclose(out.std(dim=(2, 3), unbiased=False), scale.abs(), rtol=1e-3, atol=1e-5), layer


def test_a_fresh_synthesis_network_starts_as_v1():
    """NVlabs/stylegan G_synthesis: const initialised to ones, noise strengths to zero, the style's scale
    bias to 1 and its shift bias to 0 (style_mod adds 1 to the scale half)."""
    G = build_tiny().generator
    assert torch.equal(G.synthesis.blocks[0].const.const.detach(), torch.ones_like(G.synthesis.blocks[0].const.const))
    for name, p in G.named_parameters():
        if name.endswith("noise.strength"):
            assert torch.equal(p.detach(), torch.zeros_like(p)), name
    for name, m in G.named_modules():
        if name.endswith("adain"):
            assert torch.equal(m.scale.effective_bias.detach(), torch.ones(m.channels)), name
            assert torch.equal(m.shift.effective_bias.detach(), torch.zeros(m.channels)), name


def _first_layer_scale_gradient(G) -> torch.Tensor:
    w = G.mapping(torch.randn(4, G.z_dim))
    G.synthesis(w, noise_mode="none").square().mean().backward()
    return G.synthesis.blocks[0].epilogue0.adain.scale.weight.grad


def test_a_ones_constant_leaves_the_first_scale_style_dead_and_randn_does_not():
    """With v1's ones the first instance norm sees a spatially constant map, outputs 0, and layer 0's scale
    style gets no gradient; StyleGAN2's N(0, 1) constant (const_init="randn") gives it one."""
    ones = build_tiny().generator
    assert torch.count_nonzero(_first_layer_scale_gradient(ones)) == 0
    randn = build_tiny(const_init="randn").generator
    const = randn.synthesis.blocks[0].const.const.detach()
    assert const.std() > 0.5 and const.std(dim=(1, 2)).min() > 0.1  # every channel has a spatial pattern
    assert _first_layer_scale_gradient(randn).abs().sum() > 0
