"""Spectral normalization (gancli.nn.spectral) holds the properties SNGAN relies on."""
from __future__ import annotations

import copy

import pytest
import safetensors.torch
import torch
from torch import nn
from torch.nn.utils import parametrize

from gancli.nn.spectral import (
    WITH_EMBEDDINGS,
    SNConv2d,
    SNConvTranspose2d,
    SNEmbedding,
    SNLinear,
    apply_spectral_norm,
    is_spectrally_normalized,
    reestimate_spectral_norm,
    remove_spectral_norm,
    spectral_norm,
    spectral_norm_estimate,
    unnormalized_weight,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _u(layer: nn.Module) -> torch.Tensor:
    return layer.parametrizations.weight[0]._u


def _v(layer: nn.Module) -> torch.Tensor:
    return layer.parametrizations.weight[0]._v


# How the paper reshapes each kind of weight to the matrix whose σ is taken: (out, in·k·k).
def _paper_matrix(layer: nn.Module, weight: torch.Tensor) -> torch.Tensor:
    if isinstance(layer, nn.ConvTranspose2d):  # kernels are (in, out, k, k)
        return weight.transpose(0, 1).reshape(weight.shape[1], -1)
    return weight.reshape(weight.shape[0], -1)


def _true_sigma(layer: nn.Module) -> torch.Tensor:
    return torch.linalg.matrix_norm(_paper_matrix(layer, unnormalized_weight(layer).detach()), 2)


def _run_forward(layer: nn.Module) -> torch.Tensor:
    if isinstance(layer, nn.Embedding):
        return layer(torch.arange(layer.num_embeddings))
    if isinstance(layer, nn.Linear):
        return layer(torch.randn(2, layer.in_features))
    return layer(torch.randn(2, layer.in_channels, 5, 5))


LAYERS = {
    "conv": lambda: SNConv2d(4, 6, 3),
    "conv_transpose": lambda: SNConvTranspose2d(6, 4, 3),
    "linear": lambda: SNLinear(10, 7),
    "embedding": lambda: SNEmbedding(5, 9),
}


@torch.no_grad()
def _give_known_singular_values(layer: nn.Module, top: float = 3.0, second: float = 1.5) -> None:
    """Replace W by a matrix (in the paper's reshape) with singular values top, second, 1, 1, ..."""
    weight = unnormalized_weight(layer)
    matrix = _paper_matrix(layer, weight)
    left, _, right_t = torch.linalg.svd(torch.randn_like(matrix), full_matrices=False)
    values = torch.ones(min(matrix.shape))
    values[0], values[1] = top, second
    new_matrix = left @ torch.diag(values) @ right_t
    if isinstance(layer, nn.ConvTranspose2d):
        out_ch, in_ch = weight.shape[1], weight.shape[0]
        weight.copy_(new_matrix.reshape(out_ch, in_ch, *weight.shape[2:]).transpose(0, 1))
    else:
        weight.copy_(new_matrix.reshape(weight.shape))


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_power_iterations_converge_to_the_spectral_norm_of_the_reshaped_weight(kind):
    layer = LAYERS[kind]().train()
    _give_known_singular_values(layer)  # u, v now belong to the old W
    assert abs(float(spectral_norm_estimate(layer)) - 3.0) > 0.03  # the stale estimate is off

    for _ in range(10):
        _run_forward(layer)

    sigma = float(_true_sigma(layer))
    assert sigma == pytest.approx(3.0, rel=1e-5)
    assert float(spectral_norm_estimate(layer)) == pytest.approx(sigma, rel=0.01)
    # u lives on the output side of the (out, in·k·k) matrix, v on the input side
    rows, cols = _paper_matrix(layer, unnormalized_weight(layer)).shape
    assert _u(layer).shape == (rows,) and _v(layer).shape == (cols,)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_a_normalized_weight_has_largest_singular_value_one(kind):
    layer = LAYERS[kind]().train()
    for _ in range(3):
        _run_forward(layer)
    layer.eval()
    normalized = _paper_matrix(layer, layer.weight.detach())
    assert float(torch.linalg.matrix_norm(normalized, 2)) == pytest.approx(1.0, rel=0.01)
    # the trained parameter itself is not constrained
    assert float(_true_sigma(layer)) != pytest.approx(1.0, rel=0.01)


def test_each_training_forward_takes_exactly_one_power_step():
    layer = SNConv2d(3, 5, 3).train()
    _give_known_singular_values(layer)
    matrix = _paper_matrix(layer, unnormalized_weight(layer).detach())
    v_before = _v(layer).clone()

    layer(torch.randn(2, 3, 6, 6))

    expected_u = nn.functional.normalize(matrix @ v_before, dim=0)
    expected_v = nn.functional.normalize(matrix.T @ expected_u, dim=0)
    assert torch.allclose(_u(layer), expected_u, atol=1e-6)
    assert torch.allclose(_v(layer), expected_v, atol=1e-6)


def test_u_moves_in_training_mode_and_stays_in_eval_mode():
    layer = SNLinear(6, 4)
    _give_known_singular_values(layer)
    x = torch.randn(3, 6)

    layer.eval()
    u, v = _u(layer).clone(), _v(layer).clone()
    first = layer(x)
    second = layer(x)
    spectral_norm_estimate(layer)
    assert torch.equal(_u(layer), u) and torch.equal(_v(layer), v)
    assert torch.equal(first, second)

    layer.train()
    spectral_norm_estimate(layer)  # reading the estimate is not a forward pass
    assert torch.equal(_u(layer), u)
    layer(x)
    assert not torch.equal(_u(layer), u)
    assert not torch.equal(_v(layer), v)


def _critic() -> nn.Module:
    return nn.Sequential(
        SNConv2d(2, 4, 3, padding=1),
        nn.LeakyReLU(0.2),
        SNConv2d(4, 4, 4, stride=2, padding=1),
        nn.LeakyReLU(0.2),
        nn.Flatten(),
        SNLinear(4 * 4 * 4, 1),
    )


def test_u_and_v_are_buffers_that_round_trip_through_safetensors_bit_for_bit():
    critic = _critic().train()
    for _ in range(3):
        critic(torch.randn(2, 2, 8, 8))

    keys = set(critic.state_dict())
    assert {"0.bias", "0.parametrizations.weight.original", "0.parametrizations.weight.0._u",
            "0.parametrizations.weight.0._v"} <= keys
    assert "0.weight" not in keys
    buffers = dict(critic.named_buffers())
    assert "0.parametrizations.weight.0._u" in buffers and "5.parametrizations.weight.0._v" in buffers

    blob = safetensors.torch.save(critic.state_dict())
    torch.manual_seed(123)  # the copy starts with other weights and other u, v
    restored = _critic().train()
    restored.load_state_dict(safetensors.torch.load(blob), strict=True)

    x = torch.randn(4, 2, 8, 8)
    assert torch.equal(critic(x), restored(x))  # this forward also advances u, v identically
    for (name, ours), theirs in zip(critic.state_dict().items(), restored.state_dict().values()):
        assert torch.equal(ours, theirs), name
    assert torch.equal(critic(x), restored(x))


def test_no_gradient_reaches_u_or_v():
    layer = SNLinear(5, 4).double().eval()
    u, v = _u(layer), _v(layer)
    assert not u.requires_grad and not v.requires_grad

    probe = torch.randn(4, 5, dtype=torch.float64)
    (layer.weight * probe).sum().backward()
    assert u.grad is None and v.grad is None

    # d⟨W/σ, M⟩/dW with σ = uᵀWv and u, v held constant: M/σ − ⟨W, M⟩/σ² · u vᵀ
    weight = unnormalized_weight(layer).detach()
    sigma = u @ weight @ v
    expected = probe / sigma - (weight * probe).sum() / sigma**2 * torch.outer(u, v)
    assert torch.allclose(unnormalized_weight(layer).grad, expected)


def test_double_backward_through_a_spectrally_normalized_critic():
    critic = _critic().train()
    real, fake = torch.randn(3, 2, 8, 8), torch.randn(3, 2, 8, 8)
    alpha = torch.rand(3, 1, 1, 1)
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    penalty = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
    # two more forwards before backward: the classic D(real) − D(fake) pattern
    loss = critic(fake).mean() - critic(real).mean() + 10 * penalty
    loss.backward()
    for name, parameter in critic.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
    assert unnormalized_weight(critic[0]).grad.abs().sum() > 0


def test_second_derivatives_through_spectral_norm_are_exact():
    layer = nn.Sequential(SNConv2d(1, 2, 2), nn.Tanh(), nn.Flatten(), SNLinear(8, 1)).double().eval()
    x = torch.randn(1, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda inp: layer(inp), (x,))


def test_autocast_bf16_keeps_the_power_method_in_fp32():
    critic = _critic().train()
    twin = copy.deepcopy(critic)
    x = torch.randn(3, 2, 8, 8)

    plain = critic(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = twin(x)
    assert mixed.dtype == torch.bfloat16
    assert torch.allclose(mixed.float(), plain, rtol=0.05, atol=0.02)
    for ours, theirs in zip(critic.modules(), twin.modules()):
        if is_spectrally_normalized(ours):
            assert _u(theirs).dtype == torch.float32
            assert torch.equal(_u(ours), _u(theirs)) and torch.equal(_v(ours), _v(theirs))

    mixed.float().sum().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in twin.parameters())


def test_a_deep_copy_has_its_own_u_and_v():
    # the EMA generator is a deep copy; sharing buffers would make its eval forward move
    critic = _critic().train()
    twin = copy.deepcopy(critic)
    assert is_spectrally_normalized(twin[0])
    assert _u(twin[0]).data_ptr() != _u(critic[0]).data_ptr()
    before = _u(twin[0]).clone()
    critic(torch.randn(2, 2, 8, 8))
    assert torch.equal(_u(twin[0]), before)


def test_apply_spectral_norm_wraps_convs_and_linears_with_the_factories_keys():
    def build(conv, linear, embed):
        return nn.ModuleDict({"conv": conv(3, 4, 3), "up": nn.ConvTranspose2d(4, 4, 2, 2),
                              "bn": nn.BatchNorm2d(4), "linear": linear(4, 1), "embed": embed(3, 4)})

    plain = apply_spectral_norm(build(nn.Conv2d, nn.Linear, nn.Embedding))
    assert is_spectrally_normalized(plain["conv"]) and is_spectrally_normalized(plain["up"])
    assert is_spectrally_normalized(plain["linear"])
    assert not is_spectrally_normalized(plain["embed"])  # embeddings only on request
    assert not parametrize.is_parametrized(plain["bn"])
    assert plain["up"].parametrizations.weight[0].dim == 1

    apply_spectral_norm(plain, types=WITH_EMBEDDINGS)  # idempotent on the others
    assert is_spectrally_normalized(plain["embed"])
    assert all(len(m.parametrizations.weight) == 1 for m in plain.values() if parametrize.is_parametrized(m))

    made = build(SNConv2d, SNLinear, SNEmbedding)
    spectral_norm(made["up"])
    assert list(made.state_dict()) == list(plain.state_dict())


def test_spectral_norm_refuses_a_second_normalization_and_vectors():
    layer = SNLinear(3, 2)
    with pytest.raises(ValueError, match="already"):
        spectral_norm(layer)
    with pytest.raises(ValueError, match="2 dimensions"):
        spectral_norm(nn.BatchNorm2d(3))
    with pytest.raises(ValueError, match="not spectrally normalized"):
        spectral_norm_estimate(nn.Linear(3, 2))


def test_reestimating_after_replacing_the_weight_makes_the_estimate_right_at_once():
    layer = SNConv2d(4, 6, 3)
    _give_known_singular_values(layer)
    reestimate_spectral_norm(layer)
    assert float(spectral_norm_estimate(layer)) == pytest.approx(3.0, rel=0.01)


def test_remove_spectral_norm_folds_the_eval_weight_and_leaves_plain_layers():
    model = nn.Sequential(SNConv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), SNLinear(4 * 6 * 6, 3))
    head = SNEmbedding(3, 3)
    model.train()
    for _ in range(3):
        model(torch.randn(2, 2, 6, 6))
    x = torch.randn(5, 2, 6, 6)
    model.eval()
    expected = model(x)
    table = head.eval().weight.detach().clone()

    model.train()  # folding in training mode must not take another power step
    head.train()
    remove_spectral_norm(model)
    remove_spectral_norm(head)

    assert not any(parametrize.is_parametrized(m) for m in model.modules())
    assert not parametrize.is_parametrized(head)
    assert all("_u" not in key and "_v" not in key for key in model.state_dict())
    assert {"0.weight", "0.bias", "3.weight", "3.bias"} == set(model.state_dict())
    assert type(model[0]) is nn.Conv2d and isinstance(model[0].weight, nn.Parameter)
    model.eval()
    assert torch.equal(model(x), expected)
    assert torch.equal(head.weight, table)
