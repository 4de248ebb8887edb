"""StyleGAN v1 layers (Karras et al. 2019): mapping and truncation, AdaIN, noise, blur."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gancli.nn.style import (
    AdaIN,
    Blur,
    BlurDownsample,
    BlurUpsample,
    ConstantInput,
    MappingNetwork,
    NoiseInjection,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _mapping_with_a_tracked_average(**kwargs) -> MappingNetwork:
    mapping = MappingNetwork(16, 12, num_layers=3, **kwargs)
    with torch.no_grad():
        mapping.w_avg.normal_()
    return mapping.eval()


# --- mapping network and truncation ---------------------------------------------------------


def test_mapping_defaults_are_stylegan_v1s():
    mapping = MappingNetwork(512, 512)
    assert len(mapping.layers) == 8
    assert all(layer.lr_multiplier == 0.01 for layer in mapping.layers)
    assert mapping.w_avg_beta == 0.995 and mapping.normalize_z
    w = mapping(torch.randn(4, 512))
    assert w.shape == (4, 512)


def test_mapping_broadcasts_one_w_per_synthesis_layer():
    mapping = MappingNetwork(16, 12, num_layers=2, num_ws=6).eval()
    w = mapping(torch.randn(3, 16))
    assert w.shape == (3, 6, 12)
    assert torch.equal(w, w[:, :1].expand_as(w))


def test_normalized_z_makes_the_mapping_ignore_the_scale_of_z():
    mapping = MappingNetwork(16, 12, num_layers=2).eval()
    z = torch.randn(5, 16)
    assert torch.allclose(mapping(z), mapping(z * 7.0), atol=1e-5)


def test_psi_zero_gives_w_avg_for_every_input_and_psi_one_leaves_w_unchanged():
    mapping = _mapping_with_a_tracked_average(num_ws=4)
    z = torch.randn(6, 16)
    w = mapping(z)
    assert torch.allclose(mapping(z, psi=0.0), mapping.w_avg.expand(6, 4, 12))
    assert torch.equal(mapping(z, psi=1.0), w)
    assert torch.equal(mapping.truncate(w, 1.0), w)
    half = mapping.truncate(w, 0.5)
    assert torch.allclose(half, mapping.w_avg + 0.5 * (w - mapping.w_avg), atol=1e-6)


def test_truncation_cutoff_touches_only_the_first_layers():
    mapping = _mapping_with_a_tracked_average(num_ws=6)
    w = mapping(torch.randn(3, 16))
    truncated = mapping.truncate(w, 0.7, cutoff=2)
    expected_coarse = mapping.w_avg + 0.7 * (w[:, :2] - mapping.w_avg)
    assert torch.allclose(truncated[:, :2], expected_coarse, atol=1e-6)
    assert torch.equal(truncated[:, 2:], w[:, 2:])
    assert torch.equal(mapping.truncate(w, 0.7, cutoff=0), w)
    assert torch.allclose(mapping.truncate(w, 0.7), mapping.truncate(w, 0.7, cutoff=6))
    flat = mapping.truncate(w[:, 0], 0.0)
    assert torch.allclose(flat, mapping.w_avg.expand(3, 12))
    with pytest.raises(ValueError, match="broadcast"):
        mapping.truncate(w[:, 0], 0.7, cutoff=2)


def test_w_avg_moves_in_train_mode_only_and_is_checkpointed():
    mapping = MappingNetwork(16, 12, num_layers=3, w_avg_beta=0.9)
    z = torch.randn(8, 16)
    assert torch.equal(mapping.w_avg, torch.zeros(12))

    mapping.eval()
    mapping(z)
    assert torch.equal(mapping.w_avg, torch.zeros(12))
    w = mapping(z)

    mapping.train()
    mapping(z, update_w_avg=False)  # the second mapping call of style mixing
    assert torch.equal(mapping.w_avg, torch.zeros(12))
    mapping(z)
    assert torch.allclose(mapping.w_avg, 0.1 * w.mean(dim=0), atol=1e-6)
    mapping(z)
    assert torch.allclose(mapping.w_avg, 0.9 * 0.1 * w.mean(dim=0) + 0.1 * w.mean(dim=0), atol=1e-6)

    mapping(torch.zeros(0, 16))
    assert torch.isfinite(mapping.w_avg).all()

    state = mapping.state_dict()
    assert "w_avg" in state
    restored = MappingNetwork(16, 12, num_layers=3, w_avg_beta=0.9)
    restored.load_state_dict(state)
    assert torch.equal(restored.w_avg, mapping.w_avg)


def test_w_avg_tracking_does_not_enter_the_graph():
    mapping = MappingNetwork(16, 12, num_layers=2).train()
    mapping(torch.randn(4, 16)).sum().backward()
    assert not mapping.w_avg.requires_grad
    assert all(p.grad is not None for p in mapping.parameters())


def test_class_conditional_mapping_embeds_labels():
    mapping = MappingNetwork(16, 12, num_layers=2, num_classes=5).eval()
    z = torch.randn(1, 16).expand(5, 16)
    labels = torch.arange(5)
    w = mapping(z, labels)
    assert torch.cdist(w, w).add(torch.eye(5)).min() > 1e-4  # every class gives its own w
    assert torch.allclose(mapping(z, F.one_hot(labels, 5).float()), w, atol=1e-6)
    assert "embed.weight" in mapping.state_dict()
    with pytest.raises(ValueError, match="pass labels"):
        mapping(z)
    with pytest.raises(ValueError, match="no classes"):
        MappingNetwork(16, 12, num_layers=2)(z, labels)


# --- AdaIN ----------------------------------------------------------------------------------


def test_adain_output_has_the_styles_mean_and_standard_deviation_per_channel():
    layer = AdaIN(channels=6, w_dim=10)
    x = torch.randn(4, 6, 8, 8) * 3 + 2
    w = torch.randn(4, 10)
    scale, shift = layer.styles(w)
    out = layer(x, w)
    assert torch.allclose(out.mean(dim=(2, 3)), shift, atol=1e-5)
    assert torch.allclose(out.std(dim=(2, 3), unbiased=False), scale.abs(), rtol=1e-4, atol=1e-5)


def test_adain_ignores_the_input_statistics_and_starts_near_a_plain_instance_norm():
    layer = AdaIN(channels=3, w_dim=8)
    x, w = torch.randn(2, 3, 5, 5), torch.randn(2, 8)
    assert torch.allclose(layer(x * 4.0 - 1.0, w), layer(x, w), atol=1e-4)
    assert torch.equal(layer.scale.effective_bias.detach(), torch.ones(3))
    assert torch.equal(layer.shift.effective_bias.detach(), torch.zeros(3))
    assert layer.scale.gain == 1.0 and layer.shift.gain == 1.0


# --- noise ----------------------------------------------------------------------------------


def _noise_layer() -> NoiseInjection:
    layer = NoiseInjection(channels=3, resolution=8)
    with torch.no_grad():
        layer.strength.copy_(torch.tensor([1.0, -2.0, 0.5]))
    return layer


def test_noise_starts_with_zero_strength():
    layer = NoiseInjection(channels=3, resolution=8)
    x = torch.randn(2, 3, 8, 8)
    for mode in ("random", "const", "none"):
        assert torch.equal(layer(x, mode), x)


def test_const_noise_is_deterministic_and_none_removes_noise():
    layer = _noise_layer()
    x = torch.randn(2, 3, 8, 8)
    const = layer(x, "const")
    assert torch.equal(const, layer(x, "const"))
    assert torch.allclose(const, x + layer.strength.detach()[:, None, None] * layer.noise_const, atol=1e-6)
    assert torch.equal(layer(x, "none"), x)


def test_random_noise_differs_between_calls_and_examples_and_is_shared_by_channels():
    layer = _noise_layer()
    x = torch.zeros(2, 3, 8, 8)
    first, second = layer(x, "random"), layer(x, "random")
    assert not torch.allclose(first, second)
    per_channel = first / layer.strength.detach()[:, None, None]
    assert torch.allclose(per_channel, per_channel[:, :1].expand_as(per_channel), atol=1e-6)
    assert not torch.allclose(per_channel[0], per_channel[1])
    torch.manual_seed(3)
    again = layer(x)
    torch.manual_seed(3)
    assert torch.equal(layer(x), again)


def test_const_noise_travels_in_the_state_dict_and_explicit_noise_overrides_the_mode():
    layer = _noise_layer()
    x = torch.randn(1, 3, 8, 8)
    assert set(layer.state_dict()) == {"strength", "noise_const"}
    restored = NoiseInjection(channels=3, resolution=8)
    restored.load_state_dict(layer.state_dict())
    assert torch.equal(restored(x, "const"), layer(x, "const"))
    noise = torch.randn(1, 1, 8, 8)
    assert torch.allclose(layer(x, "none", noise=noise), x + layer.strength.detach()[:, None, None] * noise)


def test_noise_rejects_unknown_modes_and_the_wrong_resolution():
    layer = _noise_layer()
    with pytest.raises(ValueError, match="noise_mode"):
        layer(torch.zeros(1, 3, 8, 8), "fixed")
    with pytest.raises(ValueError, match="resolution=8"):
        layer(torch.zeros(1, 3, 16, 16), "const")


# --- constant input -------------------------------------------------------------------------


def test_constant_input_is_learned_and_the_same_for_every_example():
    const = ConstantInput(8)
    out = const(3)
    assert out.shape == (3, 8, 4, 4)
    assert torch.equal(out, torch.ones(3, 8, 4, 4))  # v1 initialises it to ones
    out.sum().backward()
    assert torch.equal(const.const.grad, torch.full((8, 4, 4), 3.0))
    v2 = ConstantInput(8, size=4, init="randn")
    assert not torch.equal(v2.const.detach(), torch.ones(8, 4, 4))
    assert "const" in const.state_dict()


# --- blur and resampling --------------------------------------------------------------------


def test_blur_is_the_normalized_outer_product_of_1_2_1():
    x = torch.randn(2, 3, 7, 7)
    taps = torch.tensor([1.0, 2.0, 1.0])
    kernel = (taps[:, None] * taps[None, :] / 16).expand(3, 1, 3, 3)
    assert torch.allclose(Blur()(x), F.conv2d(x, kernel, padding=1, groups=3), atol=1e-6)


def test_blur_preserves_a_constant_image_and_the_dc_gain():
    blurred = Blur()(torch.full((1, 2, 9, 9), 3.0))
    assert blurred.shape == (1, 2, 9, 9)
    # zeros outside the image, as v1's padding='SAME': only the 1-pixel border is attenuated
    assert torch.allclose(blurred[..., 1:-1, 1:-1], torch.full((1, 2, 7, 7), 3.0))
    assert blurred[0, 0, 0, 0].item() == pytest.approx(3.0 * 9 / 16)
    impulse = torch.zeros(1, 1, 9, 9)
    impulse[0, 0, 4, 4] = 5.0
    assert Blur()(impulse).sum().item() == pytest.approx(5.0)
    assert Blur((1.0, 4.0, 6.0, 4.0, 1.0))(impulse).sum().item() == pytest.approx(5.0)
    with pytest.raises(ValueError, match="odd"):
        Blur((1.0, 3.0, 3.0, 1.0))
    assert Blur().state_dict() == {}


def _upfirdn_reference(x, taps, up, down, pad, gain):
    """upfirdn2d written out: zero insertion, zero padding, a full 2-D convolution with the
    outer-product kernel (flipped: a convolution, not a correlation), decimation."""
    n, c, h, w = x.shape
    if up > 1:
        z = torch.zeros(n, c, h * up, w * up, dtype=x.dtype)
        z[..., ::up, ::up] = x
        x = z
    x = F.pad(x, (pad[0], pad[1], pad[0], pad[1]))
    t = torch.tensor(taps, dtype=x.dtype)
    kernel = (t[:, None] * t[None, :]) / t.sum() ** 2 * gain
    x = F.conv2d(x, kernel.flip(0, 1).expand(c, 1, len(taps), len(taps)), groups=c)
    return x[..., ::down, ::down]


@pytest.mark.parametrize("taps", [(1.0, 3.0, 3.0, 1.0), (1.0, 2.0, 4.0, 1.0), (1.0, 2.0, 1.0)])
@pytest.mark.parametrize("up, down", [(2, 1), (1, 2)])
def test_even_and_odd_filters_resample_as_upfirdn2d(taps, up, down):
    x = torch.randn(2, 3, 8, 6, dtype=torch.float64)
    blur = Blur(taps, up=up, down=down).double()
    k = len(taps)
    pad = ((k + up - 1) // 2, (k - up) // 2) if up > 1 else ((k - down + 1) // 2, (k - down) // 2)
    expected = _upfirdn_reference(x, taps, up, down, pad, gain=up * up)
    got = blur(x)
    assert got.shape == (2, 3, 8 * up // down, 6 * up // down)
    assert torch.allclose(got, expected, atol=1e-12)  # an asymmetric filter checks the flip too
    assert torch.allclose(blur.forward_planes(x), expected, atol=1e-12)  # the form traced for export
    correlated = Blur(taps, up=up, down=down, flip_filter=True).double()(x)
    assert torch.allclose(correlated, _upfirdn_reference(x, taps[::-1], up, down, pad, gain=up * up), atol=1e-12)


def test_1_3_3_1_resampling_is_centred_on_the_new_grid():
    """A linear ramp, sampled at pixel centres, resamples to the ramp at the new centres away from the
    border: an even filter is only centred together with the half-pixel shift of resampling."""
    i = torch.arange(16, dtype=torch.float64)
    ramp = (i[:, None] + 2 * i[None, :]).expand(1, 1, 16, 16)
    up = Blur((1, 3, 3, 1), up=2).double()(ramp)
    j = torch.arange(32, dtype=torch.float64) / 2 - 0.25  # centres of the fine pixels in coarse units
    assert torch.allclose(up[0, 0, 2:-2, 2:-2], (j[:, None] + 2 * j[None, :])[2:-2, 2:-2], atol=1e-12)
    down = Blur((1, 3, 3, 1), down=2).double()(ramp)
    m = torch.arange(8, dtype=torch.float64) * 2 + 0.5  # centres of the 2×2 blocks
    assert torch.allclose(down[0, 0, 1:-1, 1:-1], (m[:, None] + 2 * m[None, :])[1:-1, 1:-1], atol=1e-12)
    # the same as nearest ×2 then [1, 2, 1] (StyleGAN v1's upsampling), the border included
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64)
    assert torch.allclose(Blur((1, 3, 3, 1), up=2).double()(x), BlurUpsample().double()(x), atol=1e-12)
    constant = torch.full((1, 1, 8, 8), 2.0)
    assert torch.allclose(Blur((1, 3, 3, 1), up=2)(constant)[..., 2:-2, 2:-2], torch.full((1, 1, 12, 12), 2.0))
    assert torch.allclose(Blur((1, 3, 3, 1), down=2)(constant)[..., 1:-1, 1:-1], torch.full((1, 1, 2, 2), 2.0))


def test_even_filters_need_resampling_or_an_explicit_padding():
    with pytest.raises(ValueError, match="half a pixel"):
        Blur((1.0, 3.0, 3.0, 1.0))
    x = torch.randn(1, 1, 6, 6)
    assert Blur((1.0, 3.0, 3.0, 1.0), padding=(2, 1))(x).shape == (1, 1, 6, 6)
    assert Blur((1.0, 3.0, 3.0, 1.0), padding=1)(x).shape == (1, 1, 5, 5)
    assert Blur((1.0, 3.0, 3.0, 1.0), padding=(2, 1), gain=4.0)(torch.ones(1, 1, 6, 6))[0, 0, 3, 3] == pytest.approx(4.0)
    with pytest.raises(ValueError):
        Blur((1.0, 3.0, 3.0, 1.0), up=2, down=2)
    assert Blur((1.0, 3.0, 3.0, 1.0), up=2).state_dict() == {}


def test_blurred_resampling_doubles_and_halves_sizes_exactly_and_keeps_constants():
    x = torch.randn(2, 3, 8, 6)
    assert BlurUpsample()(x).shape == (2, 3, 16, 12)
    assert BlurDownsample()(x).shape == (2, 3, 4, 3)
    constant = torch.full((1, 1, 8, 8), 2.0)
    assert torch.allclose(BlurUpsample()(constant)[..., 1:-1, 1:-1], torch.full((1, 1, 14, 14), 2.0))
    assert torch.allclose(BlurDownsample()(constant)[..., 1:-1, 1:-1], torch.full((1, 1, 2, 2), 2.0))
    with pytest.raises(ValueError, match="divisible"):
        BlurDownsample()(torch.randn(1, 1, 7, 8))


def test_a_style_block_runs_under_bf16_autocast():
    mapping = MappingNetwork(16, 12, num_layers=2, num_ws=2, num_classes=3).train()
    const, noise, adain = ConstantInput(6), NoiseInjection(6, resolution=4), AdaIN(6, 12)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        w = mapping(torch.randn(4, 16), torch.tensor([0, 1, 2, 0]), psi=0.7, cutoff=1)
        x = adain(noise(const(4), "random"), w[:, 0])
        x = BlurDownsample()(BlurUpsample()(x))
    assert x.shape == (4, 6, 4, 4) and torch.isfinite(x).all()
    assert mapping.w_avg.dtype == torch.float32 and torch.isfinite(mapping.w_avg).all()


def test_blurred_downsampling_supports_r1():
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    score = BlurDownsample()(x).square().sum()
    (grad,) = torch.autograd.grad(score, x, create_graph=True)
    grad.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
