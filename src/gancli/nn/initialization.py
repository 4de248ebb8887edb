"""Weight initialisation schemes of the SNGAN, SAGAN and BigGAN reference code.

* ``"xavier_uniform"``: Glorot & Bengio's uniform init. SNGAN (pfnet-research/sngan_projection,
  ``chainer.initializers.GlorotUniform``) uses gain √2 for the 3×3 convs inside residual
  blocks and gain 1 for shortcuts, linear layers and embeddings; SAGAN
  (brain-research/self-attention-gan, ``xavier_initializer``) uses gain 1.
* ``"orthogonal"``: BigGAN (ajbrock/BigGAN-PyTorch ``G_init='ortho'``, ``init.orthogonal_``).
* ``"normal"``: N(0, 0.02), DCGAN's and BigGAN-PyTorch's ``'N02'``.

Biases are set to zero in every scheme, as chainer does for the SNGAN reference
(BigGAN-PyTorch leaves PyTorch's default bias init; zero makes the init explicit).
"""
from __future__ import annotations

import torch
from torch import nn

from gancli.nn.spectral import reestimate_spectral_norm, unnormalized_weight

INIT_SCHEMES = ("xavier_uniform", "orthogonal", "normal")
NORMAL_STD = 0.02

_INITIALISED = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.Linear,
    nn.Embedding,
)


def check_init_scheme(scheme: str) -> str:
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}; choose one of {', '.join(INIT_SCHEMES)}")
    return scheme


@torch.no_grad()
def init_weights(module: nn.Module, scheme: str = "xavier_uniform", *, gain: float = 1.0) -> nn.Module:
    """Initialise every Conv/Linear/Embedding in ``module`` (itself included) by ``scheme``.

    ``gain`` scales the xavier and orthogonal schemes (it is ignored by ``"normal"``).
    Spectrally normalized layers get their unnormalized W initialised and their power
    method re-estimated, so σ̂ matches the new W at once. Under SN the effective weight is
    W / σ(W) whatever the gain; the gain then only sets ‖W‖, i.e. how far one optimizer
    step turns W̄. Returns ``module``.
    """
    check_init_scheme(scheme)
    for layer in module.modules():
        if not isinstance(layer, _INITIALISED):
            continue
        weight = unnormalized_weight(layer)
        if scheme == "xavier_uniform":
            nn.init.xavier_uniform_(weight, gain=gain)
        elif scheme == "orthogonal":
            nn.init.orthogonal_(weight, gain=gain)
        else:
            nn.init.normal_(weight, 0.0, NORMAL_STD)
        bias = getattr(layer, "bias", None)
        if isinstance(bias, torch.Tensor):
            nn.init.zeros_(bias)
        reestimate_spectral_norm(layer)
    return module
