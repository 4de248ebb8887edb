"""Build SNGAN and SAGAN models: ResNets from networks.py, the hinge objective from objective.py.

What differs between the two families (everything else is shared):

============================  ===========================  ==================================
                              sngan (Miyato et al. 2018)   sagan (Zhang et al. 2019)
============================  ===========================  ==================================
spectral norm                 every D weight               every G and D weight
self-attention                none                         after the blocks at
                                                           ``attention_resolution``
D block hidden channels       the block's input's          the block's output's (``wide``)
                              (sngan_projection)           (self-attention-gan)
D head bias                   none at 32 px, else yes      yes
optimizer                     Adam 2e-4, β (0, 0.9)        TTUR: G 1e-4, D 4e-4, β (0, 0.9)
D steps per G step            5                            1
============================  ===========================  ==================================
"""
from __future__ import annotations

from typing import Optional

from gancli.data.spec import DataSpec
from gancli.errors import GancliError
from gancli.objective import GAN, OptimizerSettings

from gancli_plugin_sngan.layouts import Layout, layout_for
from gancli_plugin_sngan.networks import ResNetDiscriminator, ResNetGenerator
from gancli_plugin_sngan.objective import ResNetGANObjective

ATTENTION_CHANNEL_MULTIPLE = 8  # SelfAttention reduces the channels to C/8


def resolve_num_classes(config, spec: DataSpec, family: str) -> int:
    """The number of classes the model conditions on: 0 for an unconditional model."""
    if config.conditional is False:
        return 0
    if spec.num_classes > 1:
        return spec.num_classes
    if config.conditional:
        raise GancliError(
            f"{family}: conditional=true needs labelled data (class sub-folders, labelled IDX/npz files or a hub "
            f"dataset with a label column), but {spec.name or 'the data'} has no labels; drop conditional=true "
            f"for an unconditional model"
        )
    return 0


def _check_images(spec: DataSpec, family: str) -> None:
    if spec.kind != "image":
        raise GancliError(f"{family} trains on images; for 2-D points use the gan or wgan-gp family")
    if spec.channels not in (1, 3):
        raise GancliError(f"{family} makes 1- or 3-channel images; the data has {spec.channels} (use --channels 1 or 3)")


def default_attention_resolution(resolution: int) -> int:
    # StudioGAN's CIFAR-10 SAGAN attends at 16×16 (attn_g_loc [2], attn_d_loc [1]); the
    # released SAGAN at 32×32 (feat32) in its 128 px networks, which our 64 px ones also have
    return 16 if resolution == 32 else 32


def resolve_attention(config, layout: Layout, resolution: int, family: str) -> int:
    side = config.attention_resolution or default_attention_resolution(resolution)
    g_sides = layout.generator_resolutions()
    d_sides = layout.discriminator_resolutions(resolution)
    both = sorted(set(g_sides) & set(d_sides))
    if side not in both:
        raise GancliError(
            f"{family}: attention_resolution={side} is not a feature-map side of both networks at {resolution} px "
            f"(G: {', '.join(map(str, g_sides))}; D: {', '.join(map(str, sorted(set(d_sides))))}); "
            f"choose one of {', '.join(map(str, both))}"
        )
    g_width = config.g_ch * layout.generator[g_sides.index(side) + 1]
    d_width = config.d_ch * layout.discriminator[d_sides.index(side)]
    for net, width, setting in (("G", g_width, "g_ch"), ("D", d_width, "d_ch")):
        if width % ATTENTION_CHANNEL_MULTIPLE:
            raise GancliError(
                f"{family}: self-attention needs a multiple of {ATTENTION_CHANNEL_MULTIPLE} channels, but {net} has "
                f"{width} at {side}×{side}; raise {setting}"
            )
    return side


def _build(
    config, spec: DataSpec, family: str, *, attention_at: Optional[int], wide_d: bool, head_bias: bool
) -> GAN:
    layout = layout_for(family, spec.resolution)
    num_classes = resolve_num_classes(config, spec, family)
    G = ResNetGenerator(
        layout=layout, z_dim=config.z_dim, g_ch=config.g_ch, channels=spec.channels, num_classes=num_classes,
        spectral_norm=config.g_spectral_norm, attention_at=attention_at, init=config.init,
        residual_gain=config.residual_gain,
    )
    D = ResNetDiscriminator(
        layout=layout, resolution=spec.resolution, d_ch=config.d_ch, channels=spec.channels, num_classes=num_classes,
        spectral_norm=config.d_spectral_norm, attention_at=attention_at, init=config.init, wide=wide_d,
        head_bias=head_bias, residual_gain=config.residual_gain,
    )
    optimizer = OptimizerSettings(name="adam", lr_g=config.lr_g, lr_d=config.lr_d, betas=(config.beta1, config.beta2))
    # hinge loss (Miyato et al. 2018 eq. 16-17; Zhang et al. 2019 eq. 5); the core objective also decays the
    # learning rates linearly (sngan_projection's LinearShift) and re-runs the EMA copy's power method
    objective = ResNetGANObjective(loss="hinge", optimizer=optimizer, n_critic=config.n_critic,
                                   lr_decay_steps=config.lr_decay_steps, lr_decay_start=config.lr_decay_start,
                                   g_batch_factor=config.g_batch_factor)
    return GAN(G, D, objective)


def build_sngan(config, spec: DataSpec) -> GAN:
    _check_images(spec, "sngan")
    # sngan_projection's 32 px D has no bias on ψ (SNLinear(..., nobias=True)); its 64/128 px ones do
    return _build(config, spec, "sngan", attention_at=None, wide_d=False, head_bias=spec.resolution != 32)


def build_sagan(config, spec: DataSpec) -> GAN:
    _check_images(spec, "sagan")
    layout = layout_for("sagan", spec.resolution)
    attention_at = resolve_attention(config, layout, spec.resolution, "sagan")
    return _build(config, spec, "sagan", attention_at=attention_at, wide_d=True, head_bias=True)
