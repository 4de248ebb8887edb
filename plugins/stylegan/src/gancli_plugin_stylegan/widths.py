"""Feature-map widths per resolution, as NVlabs/stylegan's ``nf(stage)`` computes them."""
from __future__ import annotations

from dataclasses import dataclass

from gancli.growth import feature_maps


@dataclass(frozen=True)
class Widths:
    """The (fmap_base, fmap_decay, fmap_max) of G and D, and the rule that turns them into widths.

    NVlabs/stylegan ``training/networks_stylegan.py`` (``G_synthesis`` and ``D_basic``): the
    layers at resolution 2^r have ``nf(r − 1)`` feature maps (:func:`gancli.growth.feature_maps`,
    shared with progan), so the defaults (8192, 1.0, 512) give 512 channels from 4² to 32², then
    256, 128, 64, 32 and 16 at 64² … 1024². D's first dense layer has ``nf(0)`` units (``at(2)``).
    """

    base: int = 8192
    decay: float = 1.0
    max: int = 512

    def at(self, resolution: int) -> int:
        """Feature maps of the layers that work at ``resolution`` (at least 1)."""
        return max(1, feature_maps(resolution, self.base, self.max, self.decay))
