"""The block layout of the SNGAN/SAGAN ResNets at each image resolution.

A layout lists channel multipliers (times ``g_ch`` or ``d_ch``) and, for D, which blocks
halve the resolution. The 32 px layout is the SNGAN paper's CIFAR-10 ResNet (appendix B,
table 4) as pfnet-research/sngan_projection builds it (``gen_models/resnet_32.py``,
``dis_models/snresnet_32.py``) and as StudioGAN scales it (4·g_ch, 2·d_ch); the 64 and
128 px layouts are sngan_projection's ``resnet_64.py``/``snresnet_64.py`` and
``resnet.py``/``snresnet.py``; the 128 px one is also the released SAGAN's
(brain-research/self-attention-gan ``generator.py``/``discriminator.py``, ``gf_dim`` =
``df_dim`` = 64).
"""
from __future__ import annotations

from dataclasses import dataclass

from gancli.errors import GancliError


@dataclass(frozen=True)
class Layout:
    # G: the 4×4 input's multiplier, then each ×2 block's output multiplier
    generator: tuple[int, ...]
    # D: each block's output multiplier (the first is the "optimized" block on the image)
    discriminator: tuple[int, ...]
    downsample: tuple[bool, ...]

    def generator_resolutions(self) -> tuple[int, ...]:
        """The side of each G block's output."""
        return tuple(4 * 2 ** (i + 1) for i in range(len(self.generator) - 1))

    def discriminator_resolutions(self, resolution: int) -> tuple[int, ...]:
        """The side of each D block's output for ``resolution``-px images."""
        sides, side = [], resolution
        for down in self.downsample:
            side = side // 2 if down else side
            sides.append(side)
        return tuple(sides)


LAYOUTS = {
    32: Layout(generator=(4, 4, 4, 4), discriminator=(2, 2, 2, 2), downsample=(True, True, False, False)),
    64: Layout(generator=(16, 8, 4, 2, 1), discriminator=(1, 2, 4, 8, 16), downsample=(True,) * 5),
    128: Layout(
        generator=(16, 16, 8, 4, 2, 1), discriminator=(1, 2, 4, 8, 16, 16), downsample=(True,) * 5 + (False,)
    ),
}


def layout_for(family: str, resolution: int) -> Layout:
    if resolution not in LAYOUTS:
        sizes = ", ".join(map(str, LAYOUTS))
        raise GancliError(
            f"{family} makes square images of side {sizes}; the data is {resolution} px (use --resolution 32)"
        )
    return LAYOUTS[resolution]
