"""Spectral normalization (Miyato et al. 2018, "Spectral Normalization for GANs").

The weight W of a layer is used as W̄ = W / σ̂(W), where σ̂ = uᵀ W v estimates the largest
singular value of W viewed as a matrix, and u, v are refined by one step of the power
method per training-mode forward pass (the paper's algorithm 1).

This module is a thin layer over PyTorch's own
:func:`torch.nn.utils.parametrizations.spectral_norm`, which already does what the paper
and the reference code (pfnet-research/sngan_projection ``source/functions/max_sv.py``)
do, and which the tests in ``tests/test_nn_spectral.py`` hold to it:

* one power iteration each time the weight is computed, i.e. once per forward pass of a
  Conv/Linear/Embedding layer in training mode; in eval mode the stored u, v are used
  as they are (σ̂ = uᵀ W v is still recomputed from the current W, without updating u, v);
* u and v are persistent buffers, so they are saved in every checkpoint and a reloaded
  model continues the power method exactly where it stopped;
* u and v are computed without autograd: the gradient of W̄ treats them as constants;
* conv kernels (out, in, k, k) are reshaped to (out, in·k·k); transposed convolutions,
  whose kernels are (in, out, k, k), use dim = 1, i.e. (out, in·k·k) as well;
* the power method runs in fp32 under ``torch.autocast`` (matrix-vector products are not
  autocast), so bf16 training does not degrade u, v;
* double backward works (gradient penalties through a spectrally normalized critic).

State-dict layout of a spectrally normalized layer ``<name>`` (PyTorch's parametrization
layout)::

    <name>.parametrizations.weight.original   W, the trained parameter (unnormalized)
    <name>.parametrizations.weight.0._u       u, shape (out,)       left singular vector
    <name>.parametrizations.weight.0._v       v, shape (in·k·k,)    right singular vector
    <name>.bias                               unchanged, when the layer has a bias

For an Embedding, W is (num_embeddings, embedding_dim) and u has num_embeddings entries,
as in BigGAN-PyTorch ``layers.SNEmbedding`` and sngan_projection ``SNEmbedID``.
:func:`SNConv2d` and friends return the plain torch layer with the parametrization
registered, so a network built from them has exactly the keys that
:func:`apply_spectral_norm` gives a network built from plain layers.
:func:`remove_spectral_norm` folds W̄ into an ordinary ``<name>.weight`` for export.
"""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import _SpectralNorm as _TorchSpectralNorm
from torch.nn.utils.parametrizations import spectral_norm as _torch_spectral_norm

DEFAULT_EPS = 1e-12  # the paper's, torch's and both reference implementations'

#: layer types :func:`apply_spectral_norm` wraps unless told otherwise. Embeddings are left
#: out on purpose: BigGAN keeps G's shared class embedding unnormalized ("applying SN to
#: G's embedding seems to randomly cripple G", BigGAN-PyTorch ``BigGAN.py``); pass
#: ``WITH_EMBEDDINGS`` for a projection discriminator's class embedding.
LAYERS = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.Linear,
)
WITH_EMBEDDINGS = LAYERS + (nn.Embedding,)

# torch warms u, v up with this many power iterations when the parametrization is
# registered; we do the same after the weight has been replaced (see reestimate)
_WARM_UP_ITERATIONS = 15


def _spectral_parametrization(module: nn.Module) -> Optional[_TorchSpectralNorm]:
    if not parametrize.is_parametrized(module, "weight"):
        return None
    for parametrization in module.parametrizations.weight:
        if isinstance(parametrization, _TorchSpectralNorm):
            return parametrization
    return None


def _require_spectral_parametrization(module: nn.Module) -> _TorchSpectralNorm:
    parametrization = _spectral_parametrization(module)
    if parametrization is None:
        raise ValueError(f"{type(module).__name__} is not spectrally normalized")
    return parametrization


def is_spectrally_normalized(module: nn.Module) -> bool:
    """Whether ``module.weight`` is spectrally normalized (by this module or by torch's function)."""
    return _spectral_parametrization(module) is not None


def unnormalized_weight(module: nn.Module) -> Tensor:
    """The parameter that training updates: W itself for an SN layer, else ``module.weight``.

    Initialise or inspect this tensor, never ``module.weight`` of an SN layer: that one is
    computed (W / σ̂) on every access and, in training mode, advances the power method.
    """
    if is_spectrally_normalized(module):
        return module.parametrizations.weight.original
    return module.weight


def _weight_matrix(weight: Tensor, dim: int) -> Tensor:
    # the same reshape as torch's parametrization: `dim` first, everything else flattened
    return weight.movedim(dim, 0).flatten(1)


def spectral_norm(
    module: nn.Module, n_power_iterations: int = 1, eps: float = DEFAULT_EPS, dim: Optional[int] = None
) -> nn.Module:
    """Spectrally normalize ``module.weight`` in place and return ``module``.

    ``dim`` is the output dimension of the weight (0, or 1 for transposed convolutions,
    which torch picks itself when ``dim`` is None). Normalizing a layer twice is refused:
    a second parametrization would divide by σ twice and shift every state-dict key.
    """
    weight = getattr(module, "weight", None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"{type(module).__name__} has no weight to spectrally normalize")
    if is_spectrally_normalized(module):
        raise ValueError(f"{type(module).__name__} is already spectrally normalized")
    if weight.ndim < 2:
        raise ValueError(
            f"spectral normalization needs a weight with at least 2 dimensions; "
            f"{type(module).__name__}.weight has shape {tuple(weight.shape)}"
        )
    return _torch_spectral_norm(module, "weight", n_power_iterations=n_power_iterations, eps=eps, dim=dim)


def SNConv2d(*args: Any, n_power_iterations: int = 1, eps: float = DEFAULT_EPS, **kwargs: Any) -> nn.Conv2d:
    """An ``nn.Conv2d(*args, **kwargs)`` with a spectrally normalized weight."""
    return spectral_norm(nn.Conv2d(*args, **kwargs), n_power_iterations, eps)


def SNConvTranspose2d(
    *args: Any, n_power_iterations: int = 1, eps: float = DEFAULT_EPS, **kwargs: Any
) -> nn.ConvTranspose2d:
    """An ``nn.ConvTranspose2d(*args, **kwargs)`` with a spectrally normalized weight (dim = 1)."""
    return spectral_norm(nn.ConvTranspose2d(*args, **kwargs), n_power_iterations, eps)


def SNLinear(*args: Any, n_power_iterations: int = 1, eps: float = DEFAULT_EPS, **kwargs: Any) -> nn.Linear:
    """An ``nn.Linear(*args, **kwargs)`` with a spectrally normalized weight."""
    return spectral_norm(nn.Linear(*args, **kwargs), n_power_iterations, eps)


def SNEmbedding(*args: Any, n_power_iterations: int = 1, eps: float = DEFAULT_EPS, **kwargs: Any) -> nn.Embedding:
    """An ``nn.Embedding(*args, **kwargs)`` whose (num_embeddings, dim) table is spectrally normalized."""
    return spectral_norm(nn.Embedding(*args, **kwargs), n_power_iterations, eps)


def apply_spectral_norm(
    model: nn.Module,
    types: tuple[type[nn.Module], ...] = LAYERS,
    n_power_iterations: int = 1,
    eps: float = DEFAULT_EPS,
) -> nn.Module:
    """Spectrally normalize every layer of ``model`` (itself included) that is one of ``types``.

    Layers that are already spectrally normalized are left as they are, so applying this
    to a network that mixes SN and plain layers normalizes only the plain ones.
    Returns ``model``.
    """
    for module in list(model.modules()):
        if isinstance(module, types) and not is_spectrally_normalized(module):
            spectral_norm(module, n_power_iterations, eps)
    return model


@torch.no_grad()
def spectral_norm_estimate(module: nn.Module) -> Tensor:
    """σ̂ = uᵀ W v from the stored u, v and the current W of an SN layer (a 0-dim tensor).

    Reading it never advances the power method, in either mode.
    """
    parametrization = _require_spectral_parametrization(module)
    matrix = _weight_matrix(module.parametrizations.weight.original, parametrization.dim)
    return torch.vdot(parametrization._u, torch.mv(matrix, parametrization._v))


@torch.no_grad()
def reestimate_spectral_norm(model: nn.Module, n_power_iterations: int = _WARM_UP_ITERATIONS) -> nn.Module:
    """Run ``n_power_iterations`` power-method steps on every SN layer of ``model``.

    Needed after W was replaced outside training (re-initialised, copied from another
    model): one step per forward would otherwise take many steps to find the new top
    singular vectors, and until then σ̂ underestimates σ, over-scaling W̄.
    """
    for module in model.modules():
        parametrization = _spectral_parametrization(module)
        if parametrization is not None:
            matrix = _weight_matrix(module.parametrizations.weight.original, parametrization.dim)
            # torch's own step, so u, v are updated in place exactly as in training
            parametrization._power_method(matrix, n_power_iterations)
    return model


@torch.no_grad()
def remove_spectral_norm(model: nn.Module) -> nn.Module:
    """Replace every SN parametrization in ``model`` by a plain ``weight`` equal to W / σ̂.

    The folded weight uses the stored u, v, so the exported network computes exactly what
    the SN network computes in eval mode, whatever mode ``model`` is in (torch's
    ``remove_parametrizations`` alone would take one more power step in training mode).
    Returns ``model``; its state dict then has ``<name>.weight`` and no u, v.
    ``torch.jit.script`` needs this first (it cannot script parametrizations); tracing
    and ONNX export work either way.

    Fold a freshly built copy (load the weights into it), not a ``copy.deepcopy``: with the
    torch version gancli pins, removing the parametrizations of a deep copy also breaks the
    original's ("no attribute weight"), as gancli.export found.
    """
    for module in list(model.modules()):
        parametrization = _spectral_parametrization(module)
        if parametrization is None:
            continue
        if len(module.parametrizations.weight) > 1:
            raise ValueError(
                f"{type(module).__name__}.weight has other parametrizations besides spectral "
                "normalization; remove them first"
            )
        parametrization.eval()
        parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    return model
