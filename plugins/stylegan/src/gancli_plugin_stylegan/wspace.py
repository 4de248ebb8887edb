"""What both StyleGAN generators share: gancli's W-space generator protocol over a mapping and a synthesis network.

docs/plugins.md, "Optional W space": ``mapping(z, y, psi=, cutoff=)``, ``synthesis(w, noise_mode=)``,
``w_avg``, ``num_ws``, ``layer_resolutions`` and ``forward(z, truncation=, truncation_cutoff=,
noise_mode=)``, which ``gancli sample``, ``gancli style-mix``, W-space walks and the pipeline use.
A subclass sets ``self.mapping`` (a :class:`gancli.nn.MappingNetwork`) and ``self.synthesis``.
"""
from __future__ import annotations

from typing import Optional

from torch import Tensor, nn


class WSpaceGenerator(nn.Module):
    truncation_space = "w"
    mapping: nn.Module
    synthesis: nn.Module

    @property
    def w_avg(self) -> Tensor:
        """The moving average of w (a buffer of the mapping network, saved with G and G_ema)."""
        return self.mapping.w_avg

    @property
    def num_ws(self) -> int:
        return self.synthesis.num_ws

    @property
    def layer_resolutions(self) -> list[int]:
        """The resolution each w layer styles: 4, 4, 8, 8, 16, 16, ..."""
        return list(self.synthesis.layer_resolutions)

    @property
    def current_resolution(self) -> int:
        return self.synthesis.current_resolution

    def forward(self, z: Tensor, y: Optional[Tensor] = None, *, truncation: Optional[float] = None,
                truncation_cutoff: Optional[int] = None, noise_mode: str = "random") -> Tensor:
        psi = 1.0 if truncation is None else float(truncation)
        return self.synthesis(self.mapping(z, y, psi=psi, cutoff=truncation_cutoff), noise_mode=noise_mode)
