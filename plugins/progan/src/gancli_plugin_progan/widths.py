"""What G and D share about their per-resolution blocks: names, widths and the growth state."""
from __future__ import annotations

from gancli.growth import feature_maps


def block_name(resolution: int) -> str:
    """``"8x8"``: the key of a resolution's blocks, as the reference names its variable scopes."""
    return f"{resolution}x{resolution}"


class GrowingBlocks:
    """Mixin for a network whose ``blocks`` start at 4×4 and double, blended by its ``alpha`` buffer."""

    fmap_base: int
    fmap_max: int

    def _width(self, resolution: int) -> int:
        return feature_maps(resolution, self.fmap_base, self.fmap_max)

    @property
    def current_resolution(self) -> int:
        return 4 * 2 ** (len(self.blocks) - 1)

    @property
    def fading(self) -> bool:
        """Whether the newest block is still being blended in (α < 1)."""
        return len(self.blocks) > 1 and bool(self.alpha < 1)
