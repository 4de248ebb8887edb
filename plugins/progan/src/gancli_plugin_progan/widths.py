"""Feature maps per resolution and the names of per-resolution blocks (shared by G and D)."""
from __future__ import annotations


def feature_maps(resolution: int, fmap_base: int, fmap_max: int) -> int:
    """Channels of the layers at ``resolution``: min(2·fmap_base / resolution, fmap_max).

    tkarras/progressive_growing_of_gans networks.py ``nf(stage) = min(fmap_base / 2**stage, fmap_max)``
    with stage = log2(resolution) − 1 (fmap_decay 1). ``resolution=2`` gives nf(0), the width of
    D's hidden dense layer and the default latent size.
    """
    return min(2 * fmap_base // resolution, fmap_max)


def block_name(resolution: int) -> str:
    """``"8x8"``: the key of a resolution's blocks, as the reference names its variable scopes."""
    return f"{resolution}x{resolution}"
