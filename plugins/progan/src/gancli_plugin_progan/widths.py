"""Names of per-resolution blocks (shared by G and D); widths: gancli.growth.feature_maps."""
from __future__ import annotations

from gancli.growth import feature_maps  # noqa: F401  (G and D import it from here)


def block_name(resolution: int) -> str:
    """``"8x8"``: the key of a resolution's blocks, as the reference names its variable scopes."""
    return f"{resolution}x{resolution}"
