"""Conditional batch norm and the projection head (gancli.nn.conditional)."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from gancli.nn.conditional import ConditionalBatchNorm2d, ProjectionHead
from gancli.nn.spectral import is_spectrally_normalized, unnormalized_weight


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _batch_norm(x: torch.Tensor) -> torch.Tensor:
    return F.batch_norm(x, None, None, training=True, eps=1e-5)


def _randomize_tables(layer: ConditionalBatchNorm2d) -> None:
    with torch.no_grad():
        layer.gamma.normal_(0.0, 0.5)
        layer.beta.normal_(0.0, 0.5)


# --- by class --------------------------------------------------------------------------------


def test_by_class_at_init_is_plain_batch_norm():
    layer = ConditionalBatchNorm2d(4, num_classes=3).train()
    assert torch.equal(layer.gamma, torch.zeros(3, 4)) and torch.equal(layer.beta, torch.zeros(3, 4))
    x = torch.randn(6, 4, 5, 5) * 3 + 1
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    out = layer(x, y)
    assert torch.equal(out, _batch_norm(x))
    plain = nn.BatchNorm2d(4).train()
    assert torch.allclose(out, plain(x), atol=1e-6)
    assert torch.allclose(layer.bn.running_mean, plain.running_mean)


def test_by_class_gain_is_one_plus_gamma_of_the_label():
    layer = ConditionalBatchNorm2d(4, num_classes=3).train()
    _randomize_tables(layer)
    x = torch.randn(6, 4, 5, 5)
    y = torch.tensor([2, 0, 1, 1, 0, 2])

    gain, bias = layer.gain_and_bias(y)
    assert torch.equal(gain, 1 + layer.gamma[y]) and torch.equal(bias, layer.beta[y])
    expected = _batch_norm(x) * (1 + layer.gamma[y])[:, :, None, None] + layer.beta[y][:, :, None, None]
    assert torch.allclose(layer(x, y), expected, atol=1e-6)


def test_by_class_same_label_same_output_other_label_other_output():
    layer = ConditionalBatchNorm2d(4, num_classes=3)
    _randomize_tables(layer)
    layer.train()
    layer(torch.randn(16, 4, 5, 5), torch.randint(0, 3, (16,)))  # some running statistics
    layer.eval()  # no batch statistics: each output depends on its own input and label only

    example = torch.randn(1, 4, 5, 5).expand(3, 4, 5, 5)
    out = layer(example, torch.tensor([1, 1, 2]))
    assert torch.equal(out[0], out[1])
    assert not torch.allclose(out[0], out[2])


def test_by_class_in_training_mode_changing_one_label_changes_only_that_output():
    layer = ConditionalBatchNorm2d(4, num_classes=3).train()
    _randomize_tables(layer)
    x = torch.randn(5, 4, 3, 3)
    before = layer(x, torch.tensor([0, 1, 2, 0, 1]))
    after = layer(x, torch.tensor([0, 1, 2, 2, 1]))  # the same batch: the same statistics
    assert torch.equal(before[[0, 1, 2, 4]], after[[0, 1, 2, 4]])
    assert not torch.allclose(before[3], after[3])


def test_class_tables_get_gradients_for_the_classes_present_only():
    layer = ConditionalBatchNorm2d(4, num_classes=3).train()
    _randomize_tables(layer)
    (layer(torch.randn(4, 4, 3, 3), torch.tensor([0, 0, 2, 2])) ** 2).sum().backward()
    assert torch.equal(layer.gamma.grad[1], torch.zeros(4))
    assert layer.gamma.grad[0].abs().sum() > 0 and layer.beta.grad[2].abs().sum() > 0


# --- by vector -------------------------------------------------------------------------------


def test_by_vector_gain_is_one_plus_a_bias_free_projection():
    layer = ConditionalBatchNorm2d(4, cond_dim=6, spectral_norm=True).train()
    assert layer.gamma.bias is None and layer.beta.bias is None
    assert is_spectrally_normalized(layer.gamma) and is_spectrally_normalized(layer.beta)
    x = torch.randn(5, 4, 3, 3)
    c = torch.randn(5, 6)
    out = layer(x, c)  # this forward took the power step; read W̄ after it, in eval mode
    layer.eval()
    gamma_w, beta_w = layer.gamma.weight, layer.beta.weight
    expected = _batch_norm(x) * (1 + c @ gamma_w.T)[:, :, None, None] + (c @ beta_w.T)[:, :, None, None]
    assert torch.allclose(out, expected, atol=1e-5)
    assert float(torch.linalg.matrix_norm(gamma_w.detach(), 2)) == pytest.approx(1.0, rel=0.01)


def test_by_vector_same_condition_same_output():
    layer = ConditionalBatchNorm2d(4, cond_dim=6).eval()
    example = torch.randn(1, 4, 3, 3).expand(3, 4, 3, 3)
    c = torch.randn(2, 6)
    out = layer(example, c[[0, 0, 1]])
    # a matrix product may round identical rows differently by their place in the batch
    assert torch.allclose(out[0], out[1], rtol=0, atol=1e-6)
    assert not torch.allclose(out[0], out[2], atol=1e-2)


def test_by_vector_with_zeroed_projections_is_plain_batch_norm():
    layer = ConditionalBatchNorm2d(4, cond_dim=6).train()
    with torch.no_grad():
        layer.gamma.weight.zero_()
        layer.beta.weight.zero_()
    x = torch.randn(5, 4, 3, 3)
    assert torch.equal(layer(x, torch.randn(5, 6)), _batch_norm(x))


def test_state_dict_keys_are_the_documented_ones():
    by_class = ConditionalBatchNorm2d(4, num_classes=3)
    assert set(by_class.state_dict()) == {
        "gamma", "beta", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"}
    by_vector = ConditionalBatchNorm2d(4, cond_dim=6, spectral_norm=True)
    assert "gamma.parametrizations.weight.original" in by_vector.state_dict()
    assert "beta.parametrizations.weight.0._u" in by_vector.state_dict()


def test_conditional_batch_norm_refuses_bad_settings_and_conditions():
    with pytest.raises(ValueError, match="exactly one"):
        ConditionalBatchNorm2d(4)
    with pytest.raises(ValueError, match="exactly one"):
        ConditionalBatchNorm2d(4, num_classes=3, cond_dim=2)
    by_class = ConditionalBatchNorm2d(4, num_classes=3)
    x = torch.randn(2, 4, 3, 3)
    with pytest.raises(ValueError, match="class labels"):
        by_class(x, None)
    with pytest.raises(ValueError, match="integer labels"):
        by_class(x, torch.randn(2))
    with pytest.raises(ValueError, match="2 inputs but 3"):
        by_class(x, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"\(N, 6\)"):
        ConditionalBatchNorm2d(4, cond_dim=6)(x, torch.randn(2, 5))


# --- projection head -------------------------------------------------------------------------


def test_projection_head_is_psi_plus_the_inner_product_with_the_class_embedding():
    head = ProjectionHead(8, num_classes=3).train()
    features = torch.randn(6, 8)
    y = torch.tensor([0, 1, 2, 2, 1, 0])
    logit = head(features, y)
    head.eval()  # W̄ as the forward above used it (it took its power step first)
    psi = features @ head.linear.weight.T + head.linear.bias
    expected = psi.squeeze(1) + (head.embed.weight[y] * features).sum(dim=1)
    assert logit.shape == (6,)
    assert torch.allclose(logit, expected, atol=1e-6)


def test_projection_head_depends_on_the_label_and_is_spectrally_normalized():
    head = ProjectionHead(8, num_classes=3).eval()
    assert is_spectrally_normalized(head.linear) and is_spectrally_normalized(head.embed)
    assert float(torch.linalg.matrix_norm(head.embed.weight.detach(), 2)) == pytest.approx(1.0, rel=0.01)
    features = torch.randn(1, 8).expand(3, 8)
    logits = head(features, torch.tensor([0, 1, 2]))
    assert len(set(logits.tolist())) == 3
    with pytest.raises(ValueError, match="class labels"):
        head(features)


def test_unconditional_projection_head_is_psi_alone():
    head = ProjectionHead(8, spectral_norm=False, bias=False)
    assert head.embed is None and head.linear.bias is None
    assert not is_spectrally_normalized(head.linear)
    features = torch.randn(4, 8)
    expected = (features @ unnormalized_weight(head.linear).T).squeeze(1)
    assert torch.allclose(head(features), expected)
    assert torch.equal(head(features, torch.tensor([0, 1, 2, 3])), head(features))
    with pytest.raises(ValueError, match=r"\(N, 8\)"):
        head(torch.randn(4, 8, 1, 1))
