"""StyleGAN2's layers and networks: demodulation, the fused and unfused forms, the skip generator, the residual D."""
from __future__ import annotations

import math

import pytest
import torch

from gancli.nn import Blur
from gancli_plugin_stylegan.stylegan2.layers import ModulatedConv, demodulation_coefficients, modulated_conv2d
from stylegan_testkit import build_tiny


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_demodulated_weights_give_unit_output_variance_for_unit_variance_input():
    """Σ_{i,k} (s_i·w_oik/σ_o)² = 1 for every output channel o, so i.i.d. unit-variance inputs give outputs of
    variance 1 whatever the styles (§2.2, Eq. 3); without demodulation the variance follows the styles."""
    g = _generator()
    n, cin, cout, size = 64, 16, 16, 18
    weight = torch.randn(cout, cin, 3, 3, generator=g)
    styles = torch.randn(n, cin, generator=g) * 3.0 + 1.0  # far from unit scale, different per example
    x = torch.randn(n, cin, size, size, generator=g)
    out = modulated_conv2d(x, weight, styles)[..., 1:-1, 1:-1]  # interior pixels: no zero padding involved
    variance = out.var(dim=(0, 2, 3))  # per output channel, over 64 × 16 × 16 = 16384 values
    # Tolerance: the sample variance of a Gaussian from M values has a relative standard deviation √(2/M).
    # Neighbouring outputs of a 3×3 conv share inputs, so the values are not independent; taking the
    # effective M as M/9 (every output correlated with its 3×3 neighbourhood) gives √(2·9/16384) ≈ 0.033;
    # 0.15 is 4.5 of those, and the mean over 16 channels is 4 times tighter again (0.05 ≥ 6 σ).
    assert torch.all((variance - 1).abs() < 0.15), variance
    assert abs(variance.mean().item() - 1) < 0.05
    # the per-example weights themselves have unit norm per output channel
    w = weight[None] * styles[:, None, :, None, None] * demodulation_coefficients(weight, styles)[:, :, None, None, None]
    assert torch.allclose(w.square().sum(dim=(2, 3, 4)), torch.ones(n, cout), atol=1e-5)
    plain = modulated_conv2d(x, weight, styles, demodulate=False)[..., 1:-1, 1:-1]
    assert plain.var().item() > 20  # E s² · Σ w² ≈ 10 · 144: nothing keeps it at 1


@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("demodulate", [True, False])
def test_fused_grouped_and_unfused_forms_compute_the_same_function(up, demodulate):
    g = _generator(1)
    x = torch.randn(3, 5, 6, 6, generator=g, dtype=torch.float64)
    weight = torch.randn(7, 5, 3, 3, generator=g, dtype=torch.float64)
    styles = torch.randn(3, 5, generator=g, dtype=torch.float64)
    blur = Blur((1, 3, 3, 1), padding=(1, 1), gain=4.0).double() if up > 1 else None
    kwargs = dict(demodulate=demodulate, up=up, padding=1, blur=blur)
    fused = modulated_conv2d(x, weight, styles, fused=True, **kwargs)
    unfused = modulated_conv2d(x, weight, styles, fused=False, **kwargs)
    assert fused.shape == (3, 7, 6 * up, 6 * up)
    assert torch.allclose(fused, unfused, atol=1e-10)


def test_the_upsampling_conv_keeps_a_constant_input_constant_inside():
    """Transposed conv ×2 then [1, 3, 3, 1] with gain 4: on a constant map every interior output pixel is the same
    (the filter removes the stride-2 pattern a bare transposed convolution leaves)."""
    layer = ModulatedConv(2, 3, 4, resolution=16, up=2)
    with torch.no_grad():
        out = layer(torch.ones(1, 2, 8, 8), torch.randn(1, 4), noise_mode="none")
    inner = out[..., 3:-3, 3:-3]
    assert out.shape == (1, 3, 16, 16)
    assert torch.allclose(inner, inner[..., :1, :1].expand_as(inner), atol=1e-5)


def test_the_skip_generator_sums_the_upsampled_to_rgb_outputs():
    G = build_tiny(resolution=16, family="stylegan2").generator.eval()
    synthesis = G.synthesis
    w = G.mapping(torch.randn(2, G.z_dim, generator=_generator(2)))
    with torch.no_grad():
        full = synthesis(w, noise_mode="none")
        # only the 4² block's to-RGB left: the image is its output upsampled twice with the filter
        for block in synthesis.blocks[1:]:
            block.to_rgb.weight.zero_()
            block.to_rgb.bias.zero_()
        first = synthesis.blocks[0]
        x = first.conv1(first.const(2), w[:, 0], "none")
        rgb = first.to_rgb(x, w[:, 1])
        up = Blur((1, 3, 3, 1), up=2)
        assert torch.allclose(synthesis(w, noise_mode="none"), up(up(rgb)).clamp(-1, 1), atol=1e-6)
    assert not torch.allclose(full, synthesis(w, noise_mode="none"), atol=1e-4)


def test_w_layers_drive_the_convs_in_order_and_each_to_rgb_shares_the_next_conv_s_w():
    G = build_tiny(resolution=16, family="stylegan2").generator.eval()
    assert G.num_ws == 6
    used = {}
    hooks = []
    for name, module in G.synthesis.named_modules():
        if name.endswith("affine"):
            hooks.append(module.register_forward_hook(lambda m, args, out, name=name: used.update({name: args[0]})))
    w = torch.randn(1, G.num_ws, G.w_dim, generator=_generator(3))
    G.synthesis(w)
    for h in hooks:
        h.remove()
    expected = {"blocks.0.conv1": 0, "blocks.0.to_rgb": 1, "blocks.1.conv0": 1, "blocks.1.conv1": 2,
                "blocks.1.to_rgb": 3, "blocks.2.conv0": 3, "blocks.2.conv1": 4, "blocks.2.to_rgb": 5}
    for layer, index in expected.items():
        assert torch.equal(used[f"{layer}.affine"], w[:, index]), layer


def test_a_fresh_generator_s_styles_start_at_one_and_its_constant_is_randn():
    G = build_tiny(resolution=16, family="stylegan2").generator
    for name, p in G.named_parameters():
        if name.endswith("affine.bias"):
            assert torch.allclose(p, torch.ones_like(p)), name
        if name.endswith("noise.strength"):
            assert p.shape == () and p.item() == 0.0
    const = G.synthesis.blocks[0].const.const
    assert abs(const.mean().item()) < 0.5 and 0.5 < const.std().item() < 1.5


def test_the_residual_discriminator_scores_and_takes_r1():
    D = build_tiny(resolution=16, family="stylegan2").discriminator
    x = torch.randn(4, 1, 16, 16, requires_grad=True)
    score, features = D(x, return_features=True)
    assert score.shape == (4,) and features.shape == (4, 4)
    (grad,) = torch.autograd.grad(score.sum(), x, create_graph=True)
    grad.square().sum().backward()  # R1's double backward through the filtered, strided convolutions
    # every parameter but the last bias (which moves no input gradient) gets a finite gradient
    assert all(p.grad is not None and torch.isfinite(p.grad).all()
               for name, p in D.named_parameters() if name != "score.linear.bias")
    block = D.blocks[0]
    h = torch.randn(2, 4, 16, 16)
    assert torch.allclose(block(h), math.sqrt(0.5) * (block.skip(h) + block.conv1(block.conv0(h))), atol=1e-6)


def test_networks_run_under_bf16_autocast():
    gan = build_tiny(resolution=16, family="stylegan2")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x = gan.generator(torch.randn(4, 8))
        score = gan.discriminator(x)
    assert torch.isfinite(x.float()).all() and torch.isfinite(score.float()).all()
