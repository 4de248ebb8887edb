"""Progressive GAN layers (Karras et al. 2018): equalized LR, pixel norm, minibatch stddev, fading."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gancli.nn.equalized import (
    EqualizedConv2d,
    EqualizedLinear,
    MinibatchStdDev,
    PixelNorm,
    downscale2d,
    fade_in,
    upscale2d,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# --- equalized learning rate ----------------------------------------------------------------


@pytest.mark.parametrize("lr_multiplier", [1.0, 0.01])
def test_stored_weights_have_unit_variance_times_one_over_the_lr_multiplier(lr_multiplier):
    linear = EqualizedLinear(256, 256, lr_multiplier=lr_multiplier)
    conv = EqualizedConv2d(64, 64, 3, lr_multiplier=lr_multiplier)
    for layer in (linear, conv):
        stored = layer.weight.detach() * lr_multiplier
        assert abs(stored.mean().item()) < 0.02
        assert stored.std().item() == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("lr_multiplier", [1.0, 0.01])
def test_effective_weights_start_he_initialised_whatever_the_lr_multiplier(lr_multiplier):
    layer = EqualizedLinear(400, 300, lr_multiplier=lr_multiplier)
    assert layer.effective_weight.detach().std().item() == pytest.approx(math.sqrt(2 / 400), rel=0.02)
    unit_gain = EqualizedConv2d(16, 64, 3, lr_multiplier=lr_multiplier, gain=1.0)
    assert unit_gain.effective_weight.detach().std().item() == pytest.approx(1 / math.sqrt(16 * 9), rel=0.03)


def test_bias_starts_at_bias_init_and_is_stored_divided_by_the_lr_multiplier():
    layer = EqualizedLinear(8, 5, lr_multiplier=0.01, bias_init=1.0)
    assert torch.allclose(layer.bias.detach(), torch.full((5,), 100.0))
    assert torch.allclose(layer.effective_bias.detach(), torch.ones(5))
    assert EqualizedLinear(8, 5, bias=False).bias is None
    assert EqualizedConv2d(3, 4, 1, bias=False)(torch.randn(1, 3, 2, 2)).shape == (1, 4, 2, 2)


@pytest.mark.parametrize("gain", [math.sqrt(2), 1.0])
@pytest.mark.parametrize("lr_multiplier", [1.0, 0.01])
def test_linear_output_is_a_plain_linear_map_with_the_runtime_gain(gain, lr_multiplier):
    layer = EqualizedLinear(12, 7, lr_multiplier=lr_multiplier, gain=gain)
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(5, 12)
    runtime_gain = lr_multiplier * gain / math.sqrt(12)
    expected = F.linear(x, layer.weight * runtime_gain, layer.bias * lr_multiplier)
    assert torch.allclose(layer(x), expected, atol=1e-6)


@pytest.mark.parametrize("kernel_size", [1, 3])
def test_conv_output_is_a_plain_convolution_with_the_runtime_gain_and_keeps_the_size(kernel_size):
    layer = EqualizedConv2d(4, 6, kernel_size, lr_multiplier=0.5)
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(2, 4, 9, 9)
    runtime_gain = 0.5 * math.sqrt(2) / math.sqrt(4 * kernel_size * kernel_size)
    expected = F.conv2d(x, layer.weight * runtime_gain, layer.bias * 0.5, padding=kernel_size // 2)
    out = layer(x)
    assert out.shape == (2, 6, 9, 9)
    assert torch.allclose(out, expected, atol=1e-6)
    assert EqualizedConv2d(4, 6, 3, stride=2)(x).shape == (2, 6, 5, 5)


def _effective_gradients(layer, x, upstream):
    """∂L/∂W_eff and ∂L/∂b_eff for L = <layer(x), upstream>, taken on the effective tensors."""
    weight = layer.effective_weight.detach().requires_grad_(True)
    bias = layer.effective_bias.detach().requires_grad_(True)
    if isinstance(layer, EqualizedConv2d):
        out = F.conv2d(x, weight, bias, padding=layer.padding)
    else:
        out = F.linear(x, weight, bias)
    return torch.autograd.grad((out * upstream).sum(), (weight, bias))


@pytest.mark.parametrize("lr_multiplier", [1.0, 0.01])
@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_an_sgd_step_moves_the_effective_weight_by_lr_times_the_squared_runtime_gain(kind, lr_multiplier):
    # W_eff = c·V, so ∂L/∂V = c·∂L/∂W_eff and a step ΔV = −lr·∂L/∂V moves W_eff by
    # −lr·c²·∂L/∂W_eff, with c = lr_mul·gain/√fan_in; the bias (b_eff = lr_mul·b) moves by
    # −lr·lr_mul²·∂L/∂b_eff
    # float64: with lr_mul 0.01 the stored weights are ~100, and float32 rounding of a small
    # step on them would hide the relation being checked
    if kind == "linear":
        layer, x = EqualizedLinear(20, 6, lr_multiplier=lr_multiplier), torch.randn(4, 20)
    else:
        layer, x = EqualizedConv2d(3, 5, 3, lr_multiplier=lr_multiplier), torch.randn(2, 3, 6, 6)
    layer, x = layer.double(), x.double()
    upstream = torch.randn_like(layer(x))
    grad_weight, grad_bias = _effective_gradients(layer, x, upstream)
    weight_before = layer.effective_weight.detach().clone()
    bias_before = layer.effective_bias.detach().clone()

    lr = 0.1
    optimizer = torch.optim.SGD(layer.parameters(), lr=lr)
    (layer(x) * upstream).sum().backward()
    optimizer.step()

    c = layer.weight_gain
    assert torch.allclose(layer.effective_weight.detach() - weight_before, -lr * c**2 * grad_weight, rtol=1e-4, atol=1e-9)
    assert torch.allclose(
        layer.effective_bias.detach() - bias_before, -lr * lr_multiplier**2 * grad_bias, rtol=1e-4, atol=1e-9
    )


@pytest.mark.parametrize("lr_multiplier", [1.0, 0.01])
def test_an_adam_step_is_the_same_fraction_lr_times_lr_mul_of_the_weight_scale_in_every_layer(lr_multiplier):
    # Adam's first step on the stored weight is lr·sign(g), so the effective weight moves by
    # lr·c = lr·lr_mul·(gain/√fan_in): lr·lr_mul times its He scale, narrow or wide
    lr = 1e-3
    for fan_in in (16, 1024):
        layer = EqualizedLinear(fan_in, 8, lr_multiplier=lr_multiplier).double()  # float64 as above
        before = layer.effective_weight.detach().clone()
        optimizer = torch.optim.Adam(layer.parameters(), lr=lr, eps=0.0)  # eps 0: exactly lr·sign(g)
        layer(torch.randn(32, fan_in, dtype=torch.float64)).square().sum().backward()
        optimizer.step()
        step = (layer.effective_weight.detach() - before).abs()
        he_scale = math.sqrt(2 / fan_in)
        assert torch.allclose(step / he_scale, torch.full_like(step, lr * lr_multiplier), rtol=1e-3)


# --- pixel norm -----------------------------------------------------------------------------


def test_pixel_norm_gives_unit_rms_over_channels_at_every_pixel():
    x = torch.randn(3, 16, 5, 5) * torch.rand(3, 1, 5, 5).mul(10).add(0.1)
    out = PixelNorm()(x)
    assert torch.allclose(out.square().mean(dim=1), torch.ones(3, 5, 5), atol=1e-5)
    vectors = PixelNorm()(torch.randn(7, 32) * 50)
    assert torch.allclose(vectors.square().mean(dim=1), torch.ones(7), atol=1e-5)


def test_pixel_norm_ignores_the_scale_of_its_input():
    x = torch.randn(4, 8, 3, 3)
    assert torch.allclose(PixelNorm()(x), PixelNorm()(x * 123.0), atol=1e-6)


# --- minibatch standard deviation -----------------------------------------------------------


def _hand_minibatch_std(x, group_size, num_channels):
    n, c, h, w = x.shape
    groups = n // group_size
    part = c // num_channels
    extra = torch.empty(n, num_channels, h, w)
    for g in range(groups):
        members = [g + k * groups for k in range(group_size)]  # the references' strided split
        for f in range(num_channels):
            block = x[members, f * part : (f + 1) * part].double()
            std = (block.var(dim=0, unbiased=False) + 1e-8).sqrt()
            extra[members, f] = float(std.mean())
    return extra


@pytest.mark.parametrize("num_channels", [1, 2])
def test_minibatch_std_equals_a_hand_computation(num_channels):
    x = torch.randn(8, 6, 4, 4)
    out = MinibatchStdDev(group_size=4, num_channels=num_channels)(x)
    assert out.shape == (8, 6 + num_channels, 4, 4)
    assert torch.equal(out[:, :6], x)
    assert torch.allclose(out[:, 6:], _hand_minibatch_std(x, 4, num_channels), atol=1e-6)


def test_minibatch_std_channels_are_constant_within_a_group_and_differ_between_groups():
    n, groups = 8, 2
    x = torch.randn(n, 3, 4, 4)
    x[1::groups] *= 5.0  # group 1 (examples 1, 3, 5, 7) is more spread out than group 0
    extra = MinibatchStdDev(group_size=4)(x)[:, 3]
    assert torch.equal(extra, extra[:, :1, :1].expand_as(extra))  # one value over the whole map
    per_example = extra[:, 0, 0]
    assert torch.equal(per_example[0::groups], per_example[0].expand(4))
    assert torch.equal(per_example[1::groups], per_example[1].expand(4))
    assert per_example[1] > 3 * per_example[0]


def test_minibatch_std_of_a_collapsed_batch_is_near_zero_and_small_batches_form_one_group():
    collapsed = torch.randn(1, 4, 3, 3).expand(4, 4, 3, 3)
    assert torch.allclose(MinibatchStdDev()(collapsed)[:, 4], torch.full((4, 3, 3), 1e-4))
    x = torch.randn(2, 4, 3, 3)
    assert torch.allclose(MinibatchStdDev(group_size=4)(x)[:, 4:], _hand_minibatch_std(x, 2, 1), atol=1e-6)
    assert torch.allclose(MinibatchStdDev(group_size=None)(x), MinibatchStdDev(group_size=2)(x))


def test_minibatch_std_rejects_a_batch_that_does_not_split_into_groups():
    with pytest.raises(ValueError, match="not divisible"):
        MinibatchStdDev(group_size=4)(torch.randn(6, 2, 3, 3))
    with pytest.raises(ValueError, match="split"):
        MinibatchStdDev(num_channels=3)(torch.randn(4, 4, 3, 3))


# --- fading in and resampling ---------------------------------------------------------------


def test_fade_in_endpoints_and_linear_blend():
    old, new = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    assert torch.equal(fade_in(0.0, old, new), old)
    assert torch.equal(fade_in(1.0, old, new), new)
    assert torch.allclose(fade_in(0.25, old, new), 0.75 * old + 0.25 * new)
    assert torch.allclose(fade_in(torch.tensor(0.5), old, new), (old + new) / 2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fade_in(1.5, old, new)


def test_upscale_repeats_each_pixel_and_downscale_averages_blocks():
    x = torch.randn(2, 3, 4, 5)
    up = upscale2d(x)
    assert up.shape == (2, 3, 8, 10)
    for dy in (0, 1):
        for dx in (0, 1):
            assert torch.equal(up[:, :, dy::2, dx::2], x)
    assert torch.allclose(downscale2d(up), x)
    assert upscale2d(x, factor=4).shape == (2, 3, 16, 20)

    y = torch.randn(1, 2, 6, 8)
    expected = y.reshape(1, 2, 3, 2, 4, 2).mean(dim=(3, 5))
    assert torch.allclose(downscale2d(y), expected, atol=1e-6)
    assert downscale2d(y, factor=1) is y
    with pytest.raises(ValueError, match="divisible"):
        downscale2d(torch.randn(1, 1, 5, 4))


def test_resampling_supports_gradient_penalties():
    # R1/WGAN-GP differentiate a gradient again: both ops must have a second derivative
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    score = downscale2d(upscale2d(x).square()).sum()
    (grad,) = torch.autograd.grad(score, x, create_graph=True)
    grad.square().sum().backward()
    assert torch.allclose(x.grad, 8 * x.detach(), atol=1e-5)  # d/dx Σ(2x)² = 8x
