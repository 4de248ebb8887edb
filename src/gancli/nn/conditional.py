"""Class conditioning layers: conditional batch norm in G, the projection head of D.

* :class:`ConditionalBatchNorm2d` (de Vries et al. 2017; Dumoulin et al. 2017) normalizes
  like BatchNorm2d without an affine of its own, then applies a per-example gain and bias
  taken from the condition.
* :class:`ProjectionHead` is the output of the projection discriminator (Miyato & Koyama
  2018, "cGANs with Projection Discriminator"): ψ(φ(x)) + ⟨embed(y), φ(x)⟩.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from gancli.nn.initialization import check_init_scheme, init_weights
from gancli.nn.spectral import spectral_norm as _spectral_norm


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm2d (no affine) followed by gain = 1 + γ(c) and bias = β(c) for each example.

    Two ways to get γ and β, chosen by the constructor:

    * by class, ``num_classes=K``: γ and β are (K, C) tables indexed by the labels y
      (SNGAN, SAGAN; sngan_projection ``CategoricalConditionalBatchNormalization``). Both
      start at zero, so at init the layer is plain BatchNorm with gain 1 and bias 0. The
      reference stores the gain itself and starts it at 1; storing its offset from 1
      gives the same network and the same parametrisation BigGAN uses.
      The tables are parameters, not Embedding layers, so neither
      :func:`~gancli.nn.spectral.apply_spectral_norm` nor
      :func:`~gancli.nn.initialization.init_weights` touches them (normalizing or
      re-initialising a zero table would undo "plain BN at init").
    * by vector, ``cond_dim=D``: γ and β are bias-free linear maps of a conditioning
      vector c of D features (BigGAN: the shared class embedding concatenated with this
      block's chunk of z; BigGAN-PyTorch ``layers.ccbn`` with ``which_linear`` set to
      ``SNLinear(bias=False)``), spectrally normalized when ``spectral_norm`` is set.
      They are initialised by ``init`` (BigGAN: orthogonal), so here the gain starts
      near, not at, 1.

    The normalization is a nested ``nn.BatchNorm2d(affine=False)`` named ``bn``, so its
    running statistics (``bn.running_mean``, ``bn.running_var``) work with
    :func:`gancli.nn.norms.standing_statistics` and with ``nn.SyncBatchNorm`` conversion
    (BigGAN's cross-replica BN). ``forward(x, cond)`` takes y (N,) integer labels or c
    (N, D) according to the mode.
    """

    def __init__(
        self,
        num_features: int,
        *,
        num_classes: int = 0,
        cond_dim: int = 0,
        spectral_norm: bool = False,
        init: str = "orthogonal",
        eps: float = 1e-5,
        momentum: Optional[float] = 0.1,
    ) -> None:
        super().__init__()
        if (num_classes > 0) == (cond_dim > 0):
            raise ValueError("ConditionalBatchNorm2d needs exactly one of num_classes > 0 or cond_dim > 0")
        if spectral_norm and num_classes > 0:
            raise ValueError("spectral_norm applies to the cond_dim projections; class tables are not normalized")
        self.num_features = num_features
        self.num_classes = num_classes
        self.cond_dim = cond_dim
        self.bn = nn.BatchNorm2d(num_features, eps=eps, momentum=momentum, affine=False)
        self.gamma: nn.Module | nn.Parameter
        self.beta: nn.Module | nn.Parameter
        if num_classes > 0:
            self.gamma = nn.Parameter(torch.zeros(num_classes, num_features))
            self.beta = nn.Parameter(torch.zeros(num_classes, num_features))
        else:
            check_init_scheme(init)
            self.gamma = init_weights(nn.Linear(cond_dim, num_features, bias=False), init)
            self.beta = init_weights(nn.Linear(cond_dim, num_features, bias=False), init)
            if spectral_norm:
                _spectral_norm(self.gamma)
                _spectral_norm(self.beta)

    @property
    def mode(self) -> str:
        return "class" if self.num_classes > 0 else "vector"

    def gain_and_bias(self, cond: Tensor) -> tuple[Tensor, Tensor]:
        """Per-example (gain, bias), each (N, C): gain = 1 + γ(cond), bias = β(cond).

        By class, ``cond`` is integer labels (N,) or class weights (N, K): a mixture takes the
        weighted sum of the classes' γ and β (sngan_projection's class interpolation)."""
        if self.num_classes > 0:
            if cond.dim() == 2 and cond.dtype.is_floating_point and cond.shape[1] == self.num_classes:
                return 1.0 + cond.to(self.gamma.dtype) @ self.gamma, cond.to(self.beta.dtype) @ self.beta
            if cond.dim() != 1 or cond.dtype.is_floating_point or cond.dtype.is_complex:
                raise ValueError(
                    f"ConditionalBatchNorm2d by class expects integer labels of shape (N,) or class weights "
                    f"(N, {self.num_classes}), got {cond.dtype} {tuple(cond.shape)}"
                )
            gamma, beta = F.embedding(cond, self.gamma), F.embedding(cond, self.beta)
        else:
            if cond.dim() != 2 or cond.shape[1] != self.cond_dim:
                raise ValueError(
                    f"ConditionalBatchNorm2d by vector expects conditions of shape (N, {self.cond_dim}), "
                    f"got {tuple(cond.shape)}"
                )
            gamma, beta = self.gamma(cond), self.beta(cond)
        return 1.0 + gamma, beta

    def forward(self, x: Tensor, cond: Optional[Tensor]) -> Tensor:
        if cond is None:
            kind = "class labels y" if self.num_classes > 0 else f"a condition vector of {self.cond_dim} features"
            raise ValueError(f"ConditionalBatchNorm2d needs {kind}")
        if cond.shape[0] != x.shape[0]:
            raise ValueError(f"{x.shape[0]} inputs but {cond.shape[0]} conditions")
        gain, bias = self.gain_and_bias(cond)
        return self.bn(x) * gain[:, :, None, None] + bias[:, :, None, None]

    def extra_repr(self) -> str:
        by = f"num_classes={self.num_classes}" if self.num_classes > 0 else f"cond_dim={self.cond_dim}"
        return f"{self.num_features}, {by}"


def class_projection(embed: nn.Module, features: Tensor, y: Optional[Tensor]) -> Tensor:
    """⟨embed(y), φ(x)⟩ per example (Miyato & Koyama 2018); φ are (N, F) features."""
    if y is None:
        raise ValueError("this conditional discriminator needs class labels y")
    return (embed(y) * features).sum(dim=1)


class ClassProjection(nn.Module):
    """Adds the projection term ⟨embed(y), φ(x)⟩ to a discriminator's own score (no ψ of its own).

    For discriminators whose unconditional score is not a linear map of the pooled features
    (DCGAN's 4×4 conv head, the WGAN critics' linear layer over a flattened map): ``forward(score,
    features, y)`` returns ``score`` unchanged when ``num_classes`` is 0. The embedding is
    initialised N(0, 0.02) (``init="normal"``), optionally spectrally normalized.
    """

    def __init__(self, in_features: int, num_classes: int = 0, *, spectral_norm: bool = False,
                 init: str = "normal") -> None:
        super().__init__()
        self.in_features, self.num_classes = in_features, num_classes
        self.embed = init_weights(nn.Embedding(num_classes, in_features), init) if num_classes > 0 else None
        if spectral_norm and self.embed is not None:
            _spectral_norm(self.embed)

    def forward(self, score: Tensor, features: Tensor, y: Optional[Tensor] = None) -> Tensor:
        if self.embed is None:
            return score
        return score + class_projection(self.embed, features, y)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, num_classes={self.num_classes}"


class ProjectionHead(nn.Module):
    """The projection discriminator's output: ψ(φ(x)) + ⟨embed(y), φ(x)⟩ (one logit per example).

    ``features`` is φ(x), the discriminator's (N, F) pooled features (the SNGAN and BigGAN
    discriminators sum the last block's ReLU output over positions). ψ is a linear map to
    one logit; ``embed`` holds one F-dimensional vector per class. With ``num_classes=0``
    there is no embedding, the head is ψ(φ(x)) alone and ``y`` is ignored.

    Both layers are spectrally normalized when ``spectral_norm`` is set, as in
    sngan_projection (``SNLinear`` l7 and ``SNEmbedID`` l_y, ``dis_models/snresnet.py``)
    and BigGAN-PyTorch (``SNLinear``/``SNEmbedding``). ``bias`` is ψ's bias: the 64/128 px
    SNGAN discriminators and BigGAN have one, sngan_projection's 32 px one does not
    (``dis_models/snresnet_32.py``). Both layers are initialised by ``init``
    (the SNGAN reference uses Glorot uniform, BigGAN orthogonal).
    Returns shape (N,).
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int = 0,
        *,
        spectral_norm: bool = True,
        bias: bool = True,
        init: str = "xavier_uniform",
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.num_classes = num_classes
        self.linear = init_weights(nn.Linear(in_features, 1, bias=bias), init)
        self.embed = init_weights(nn.Embedding(num_classes, in_features), init) if num_classes > 0 else None
        if spectral_norm:
            _spectral_norm(self.linear)
            if self.embed is not None:
                _spectral_norm(self.embed)

    def forward(self, features: Tensor, y: Optional[Tensor] = None) -> Tensor:
        if features.dim() != 2 or features.shape[1] != self.in_features:
            raise ValueError(
                f"ProjectionHead expects features of shape (N, {self.in_features}), got {tuple(features.shape)}"
            )
        logit = self.linear(features).squeeze(1)
        if self.embed is None:
            return logit
        return logit + class_projection(self.embed, features, y)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, num_classes={self.num_classes}"
