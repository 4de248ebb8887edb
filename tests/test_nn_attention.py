"""SAGAN self-attention (gancli.nn.attention)."""
from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from gancli.nn.attention import SelfAttention
from gancli.nn.spectral import is_spectrally_normalized


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _with_gamma(layer: SelfAttention, value: float) -> SelfAttention:
    with torch.no_grad():
        layer.gamma.fill_(value)
    return layer


def test_with_gamma_zero_the_block_is_exactly_the_identity():
    for spectral_norm in (True, False):
        layer = SelfAttention(16, spectral_norm=spectral_norm).train()
        assert layer.gamma.shape == () and float(layer.gamma.detach()) == 0.0
        x = torch.randn(2, 16, 6, 8) * 10
        assert torch.equal(layer(x), x)


def test_with_gamma_nonzero_the_block_is_x_plus_gamma_times_attended_values():
    layer = _with_gamma(SelfAttention(16), 0.7).eval()
    x = torch.randn(2, 16, 4, 6)
    out = layer(x)
    assert not torch.allclose(out, x)

    # the reference computation, written out position by position (eval: fixed W̄)
    def conv(module, inp):
        return F.conv2d(inp, module.weight)

    query = conv(layer.query, x).flatten(2)  # (N, 2, 24)
    key = F.max_pool2d(conv(layer.key, x), 2).flatten(2)  # (N, 2, 6)
    value = F.max_pool2d(conv(layer.value, x), 2).flatten(2)  # (N, 8, 6)
    weights = torch.softmax(torch.einsum("ncp,ncq->npq", query, key), dim=2)
    attended = torch.einsum("ncq,npq->ncp", value, weights).reshape(2, 8, 4, 6)
    expected = x + 0.7 * conv(layer.out, attended)
    assert torch.allclose(out, expected, atol=1e-5)


def test_channel_reductions_and_pooling_follow_the_reference_code():
    layer = SelfAttention(32)
    assert layer.query.weight.shape == (4, 32, 1, 1)
    assert layer.key.weight.shape == (4, 32, 1, 1)
    assert layer.value.weight.shape == (16, 32, 1, 1)
    assert layer.out.weight.shape == (32, 16, 1, 1)
    assert all(conv.bias is None for conv in (layer.query, layer.key, layer.value, layer.out))
    assert all(is_spectrally_normalized(conv) for conv in (layer.query, layer.key, layer.value, layer.out))

    attention = layer.attention_map(torch.randn(3, 32, 8, 4))
    assert attention.shape == (3, 32, 8)  # every position attends over the 4×2 pooled grid
    assert torch.allclose(attention.sum(dim=2), torch.ones(3, 32))
    assert (attention >= 0).all()


def test_attention_reaches_across_the_whole_image():
    # unlike a 3×3 conv, one corner of the input moves the output at the opposite corner
    layer = _with_gamma(SelfAttention(16, spectral_norm=False), 1.0).eval()
    x = torch.randn(1, 16, 8, 8)
    moved = x.clone()
    moved[:, :, 0, 0] += 5.0
    delta = (layer(moved) - layer(x))[:, :, 7, 7]
    assert delta.abs().max() > 1e-4


def test_gamma_is_learned_from_zero():
    layer = SelfAttention(16).train()
    assert any(p is layer.gamma for p in layer.parameters())
    assert "gamma" in layer.state_dict()
    out = layer(torch.randn(2, 16, 4, 4))
    (out**2).sum().backward()
    assert layer.gamma.grad is not None and float(layer.gamma.grad.abs()) > 0


def test_works_under_bf16_autocast():
    layer = _with_gamma(SelfAttention(16), 0.5).train()
    x = torch.randn(2, 16, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = layer(x)
    assert torch.isfinite(mixed).all()
    assert torch.allclose(mixed.float(), layer.eval()(x), atol=0.1)


def test_refuses_odd_sizes_and_channel_counts_not_divisible_by_eight():
    with pytest.raises(ValueError, match="divisible by 8"):
        SelfAttention(12)
    with pytest.raises(ValueError, match="even H and W"):
        SelfAttention(16)(torch.randn(1, 16, 5, 4))
    with pytest.raises(ValueError, match=r"\(N, 16, H, W\)"):
        SelfAttention(16)(torch.randn(1, 8, 4, 4))
