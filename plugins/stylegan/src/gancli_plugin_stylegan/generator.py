"""The style-based generator: mapping network f (z → w) and synthesis network g (w → image).

Karras, Laine & Aila 2019, §2 and appendix B; NVlabs/stylegan ``G_style``. It implements
gancli's W-space generator protocol (docs/plugins.md, "Optional W space"), which
``gancli sample --truncation ψ --truncation-cutoff L --noise-mode ...``, ``gancli style-mix``,
W-space interpolation and ``pipe.mapping`` / ``pipe.synthesis`` / ``pipe.w_avg`` use:

* ``mapping(z, y=None, *, psi=1.0, cutoff=None) -> (N, num_ws, w_dim)``: pixel-normalised z
  through 8 equalized dense layers (lr multiplier 0.01), w broadcast to every layer, then
  ψ-truncation ``w' = w_avg + ψ(w − w_avg)`` of the first ``cutoff`` layers (when None, the
  family's ``truncation_cutoff``: 8, G_style's default, i.e. the styles up to 32²).
  In training mode each call also moves ``w_avg`` (β = 0.995) unless ``update_w_avg=False``;
* ``synthesis(w, *, noise_mode="random")``: "random" draws the noise inputs from torch's
  global generator (the trainer seeds it per process and saves it; ``gancli.load(...)``
  seeds it from the sampling seed), "const" adds the ``noise_const`` buffers stored in the
  checkpoint, "none" leaves the noise out;
* ``forward(z, y=None, *, truncation=None, truncation_cutoff=None, noise_mode="random")``.

Style mixing regularization is not a forward mode: the objective calls ``mapping`` twice
and ``synthesis`` once (gancli_plugin_stylegan.mixing), as NVlabs' loss does.
"""
from __future__ import annotations

from typing import Optional

from gancli.nn import MappingNetwork

from gancli_plugin_stylegan.synthesis import SynthesisNetwork
from gancli_plugin_stylegan.widths import Widths
from gancli_plugin_stylegan.wspace import WSpaceGenerator


class StyleGANGenerator(WSpaceGenerator):
    def __init__(
        self,
        *,
        resolution: int,
        channels: int,
        z_dim: int = 512,
        w_dim: int = 512,
        mapping_layers: int = 8,
        mapping_width: Optional[int] = None,
        mapping_lr_multiplier: float = 0.01,
        w_avg_beta: float = 0.995,
        widths: Widths = Widths(),
        blur: bool = True,
        grow: bool = False,
        start_resolution: int = 4,
        const_init: str = "ones",
        truncation_cutoff: Optional[int] = None,
    ):
        super().__init__()
        self.z_dim = z_dim
        self.w_dim = w_dim
        self.num_classes = 0
        self.synthesis = SynthesisNetwork(
            resolution, channels, w_dim, widths, blur=blur, grow=grow, start_resolution=start_resolution,
            const_init=const_init,
        )
        self.mapping = MappingNetwork(
            z_dim, w_dim, mapping_layers, lr_multiplier=mapping_lr_multiplier, w_avg_beta=w_avg_beta,
            hidden_dim=mapping_width, num_ws=self.synthesis.num_ws, truncation_cutoff=truncation_cutoff,
        )
