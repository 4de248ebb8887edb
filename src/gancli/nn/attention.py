"""The self-attention block of SAGAN (Zhang et al. 2019, "Self-Attention GANs")."""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from gancli.nn.initialization import init_weights
from gancli.nn.spectral import spectral_norm as _spectral_norm


class SelfAttention(nn.Module):
    """x + γ·o(attention-weighted values); γ is a learned scalar that starts at 0.

    We follow the released code rather than the paper's section 3. Both
    brain-research/self-attention-gan (``non_local.py``, ``sn_non_local_block_sim``) and
    ajbrock/BigGAN-PyTorch (``layers.py``, ``Attention``) do the same thing, which the
    paper describes only in part (BigGAN-PyTorch notes the paper's description is
    "largely incorrect"; the paper gives C/8 for every path and no pooling):

    * ``query`` (paper f, code θ): 1×1 conv C → C/8 at every position;
    * ``key`` (paper g, code φ): 1×1 conv C → C/8, then 2×2 max pooling;
    * ``value`` (paper h, code g): 1×1 conv C → C/2, then 2×2 max pooling;
    * attention = softmax over the HW/4 pooled positions of queryᵀ·key, no 1/√d scaling;
    * ``out`` (paper v, code o): 1×1 conv C/2 → C on the attended values;
    * ``gamma``: the scalar gain, 0 at init, so the block starts as the identity.

    All four convs are bias-free and, with ``spectral_norm`` (SAGAN puts SN in G and D),
    spectrally normalized. Pooling the keys and values makes attention 4× cheaper; it
    needs even H and W and ``channels`` divisible by 8. ``init`` is the weight scheme
    (SAGAN: Xavier/Glorot uniform; BigGAN: orthogonal).
    """

    def __init__(self, channels: int, spectral_norm: bool = True, *, init: str = "xavier_uniform") -> None:
        super().__init__()
        if channels < 8 or channels % 8:
            raise ValueError(f"SelfAttention needs a channel count divisible by 8, got {channels}")
        self.channels = channels
        self.query = nn.Conv2d(channels, channels // 8, 1, bias=False)
        self.key = nn.Conv2d(channels, channels // 8, 1, bias=False)
        self.value = nn.Conv2d(channels, channels // 2, 1, bias=False)
        self.out = nn.Conv2d(channels // 2, channels, 1, bias=False)
        for conv in (self.query, self.key, self.value, self.out):
            init_weights(conv, init)
            if spectral_norm:
                _spectral_norm(conv)
        self.gamma = nn.Parameter(torch.zeros(()))

    def _check(self, x: Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f"SelfAttention({self.channels}) expects (N, {self.channels}, H, W), got {tuple(x.shape)}")
        if x.shape[2] % 2 or x.shape[3] % 2:
            raise ValueError(f"SelfAttention pools keys and values 2×2 and needs even H and W, got {tuple(x.shape[2:])}")

    def _attention_and_values(self, x: Tensor) -> tuple[Tensor, Tensor]:
        query = self.query(x).flatten(2)  # (N, C/8, HW)
        key = F.max_pool2d(self.key(x), 2).flatten(2)  # (N, C/8, HW/4)
        value = F.max_pool2d(self.value(x), 2).flatten(2)  # (N, C/2, HW/4)
        attention = torch.softmax(torch.bmm(query.transpose(1, 2), key), dim=-1)  # (N, HW, HW/4)
        return attention, value

    def attention_map(self, x: Tensor) -> Tensor:
        """(N, HW, HW/4): how much each position attends to each pooled position; rows sum to 1."""
        self._check(x)
        return self._attention_and_values(x)[0]

    def forward(self, x: Tensor) -> Tensor:
        self._check(x)
        n, _, h, w = x.shape
        attention, value = self._attention_and_values(x)
        attended = torch.bmm(value, attention.transpose(1, 2)).view(n, self.channels // 2, h, w)
        return x + self.gamma * self.out(attended)

    def extra_repr(self) -> str:
        return f"{self.channels}"
