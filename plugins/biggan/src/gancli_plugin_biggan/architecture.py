"""Channel tables of BigGAN and BigGAN-deep, and where self-attention goes.

The multipliers of ``ch`` are BigGAN-PyTorch's ``G_arch``/``D_arch`` (``BigGAN.py`` and
``BigGANdeep.py``), paper appendix B tables 4–6. G starts from a 4×4 tensor and every stage
doubles the resolution; D halves it per stage until the last stage(s) keep it.
"""
from __future__ import annotations

from dataclasses import dataclass

from gancli.errors import GancliError

RESOLUTIONS = (32, 64, 128)
BOTTOM_WIDTH = 4  # G's input layer makes a 4×4 tensor (--bottom_width)

# G: (input, output) multipliers of ch per up-sampling stage (the same for BigGAN and BigGAN-deep)
_G_STAGES = {
    32: ((4, 4), (4, 4), (4, 4)),
    64: ((16, 16), (16, 8), (8, 4), (4, 2)),
    128: ((16, 16), (16, 8), (8, 4), (4, 2), (2, 1)),
}
# BigGAN D: (input, output, downsample) per residual block; input None is the image
_D_BLOCKS = {
    32: ((None, 4, True), (4, 4, True), (4, 4, False), (4, 4, False)),
    64: ((None, 1, True), (1, 2, True), (2, 4, True), (4, 8, True), (8, 16, False)),
    128: ((None, 1, True), (1, 2, True), (2, 4, True), (4, 8, True), (8, 16, True), (16, 16, False)),
}
# BigGAN-deep D: a 3×3 stem conv to the first input width, then (input, output, downsample) per stage
_DEEP_D_STAGES = {
    32: ((4, 4, True), (4, 4, True), (4, 4, False)),
    64: ((1, 2, True), (2, 4, True), (4, 8, True), (8, 16, True)),
    128: ((1, 2, True), (2, 4, True), (4, 8, True), (8, 16, True), (16, 16, True)),
}


@dataclass(frozen=True)
class Stage:
    in_ch: int
    out_ch: int
    resolution: int  # spatial size of the stage's output
    resample: bool  # G: upsample ×2; D: downsample ×2


def check_resolution(resolution: int) -> None:
    if resolution not in RESOLUTIONS:
        raise GancliError(
            f"biggan makes {', '.join(map(str, RESOLUTIONS))} px images, not {resolution}; pass --resolution 32 "
            f"(or 64, 128) and the data is resized"
        )


def generator_stages(resolution: int, ch: int) -> list[Stage]:
    stages, size = [], BOTTOM_WIDTH
    for a, b in _G_STAGES[resolution]:
        size *= 2
        stages.append(Stage(a * ch, b * ch, size, True))
    return stages


def discriminator_blocks(resolution: int, ch: int, image_channels: int) -> list[Stage]:
    blocks, size = [], resolution
    for a, b, down in _D_BLOCKS[resolution]:
        size = size // 2 if down else size
        blocks.append(Stage(image_channels if a is None else a * ch, b * ch, size, down))
    return blocks


def deep_discriminator_stages(resolution: int, ch: int) -> list[Stage]:
    stages, size = [], resolution
    for a, b, down in _DEEP_D_STAGES[resolution]:
        size = size // 2 if down else size
        stages.append(Stage(a * ch, b * ch, size, down))
    return stages


def default_attention(resolution: int, network: str) -> int:
    """Where self-attention goes unless the settings say: G at 64×64 as in the paper (``--G_attn 64``), 16×16 at
    32 px as StudioGAN's CIFAR-10 config; D after its first block (64×64 at 128 px as the paper's ``--D_attn 64``,
    16×16 at 32 px as StudioGAN's ``attn_d_loc: [1]``)."""
    if network == "G":
        return 64 if resolution >= 64 else 16
    return resolution // 2


def attention_index(stages: list[Stage], attention: int, network: str) -> int | None:
    """Index of the first stage whose output is ``attention`` px (attention follows it), None for 0."""
    if attention == 0:
        return None
    for index, stage in enumerate(stages):
        if stage.resolution == attention:
            return index
    choices = sorted({s.resolution for s in stages})
    setting = "g_attention" if network == "G" else "d_attention"
    raise GancliError(
        f"biggan's {network} has no {attention}×{attention} features at this resolution; set {setting} to one of "
        f"{', '.join(map(str, choices))} or 0 (no attention)"
    )
