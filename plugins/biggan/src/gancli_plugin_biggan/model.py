"""Build a BigGAN or BigGAN-deep from its settings and the data (checks that a user can fix come first)."""
from __future__ import annotations

from gancli.data.spec import DataSpec
from gancli.errors import GancliError
from gancli.objective import GAN, OptimizerSettings

from gancli_plugin_biggan.architecture import check_resolution, default_attention, generator_stages
from gancli_plugin_biggan.config import DEFAULT_CH, DEFAULT_Z_DIM, BigGANConfig
from gancli_plugin_biggan.discriminator import BigGANDeepDiscriminator, BigGANDiscriminator
from gancli_plugin_biggan.generator import BigGANDeepGenerator, BigGANGenerator
from gancli_plugin_biggan.objective import BigGANObjective


def _num_classes(config: BigGANConfig, spec: DataSpec) -> int:
    if not config.conditional:
        return 0
    if spec.num_classes < 2:
        raise GancliError(
            "biggan is class-conditional and needs labelled data: use a folder with one sub-folder per class, IDX "
            "files with their labels or an .npz with 'labels' (or set model.conditional=false for unconditional BigGAN)"
        )
    return spec.num_classes


def _z_dim(config: BigGANConfig, resolution: int) -> int:
    z_dim = config.z_dim or DEFAULT_Z_DIM[config.arch]
    if config.arch == "biggan" and config.hierarchical:
        chunks = len(generator_stages(resolution, 1)) + 1
        if z_dim % chunks:
            lower, upper = z_dim - z_dim % chunks, z_dim - z_dim % chunks + chunks
            raise GancliError(
                f"biggan splits z into {chunks} equal chunks at {resolution} px (one per block plus the input layer); "
                f"z_dim {z_dim} does not divide, use {lower or upper} or {upper}"
            )
    return z_dim


def build(config: BigGANConfig, spec: DataSpec) -> GAN:
    if spec.kind != "image":
        raise GancliError("biggan makes images; use an image dataset (not 2-D points)")
    check_resolution(spec.resolution)
    num_classes = _num_classes(config, spec)
    z_dim = _z_dim(config, spec.resolution)
    g_ch = config.g_ch or DEFAULT_CH[config.arch]
    d_ch = config.d_ch or DEFAULT_CH[config.arch]
    g_attention = default_attention(spec.resolution, "G") if config.g_attention is None else config.g_attention
    d_attention = default_attention(spec.resolution, "D") if config.d_attention is None else config.d_attention
    if config.arch == "biggan-deep" and not config.hierarchical:
        raise GancliError("biggan-deep always feeds all of z and the class to every block; hierarchical=false "
                          "applies to arch=biggan only")
    common = dict(resolution=spec.resolution, image_channels=spec.channels, init=config.init)
    try:
        if config.arch == "biggan":
            G = BigGANGenerator(
                z_dim=z_dim, num_classes=num_classes, shared_dim=config.shared_dim, ch=g_ch, attention=g_attention,
                hierarchical=config.hierarchical, **common,
            )
            D = BigGANDiscriminator(ch=d_ch, num_classes=num_classes, attention=d_attention, **common)
        else:
            G = BigGANDeepGenerator(
                z_dim=z_dim, num_classes=num_classes, shared_dim=config.shared_dim, ch=g_ch, attention=g_attention,
                depth=config.depth, **common,
            )
            D = BigGANDeepDiscriminator(ch=d_ch, num_classes=num_classes, attention=d_attention, depth=config.depth,
                                        **common)
    except ValueError as exc:  # widths the layers cannot take (attention channels, bottlenecks)
        raise GancliError(f"biggan cannot be built with these widths: {exc}") from None
    optimizer = OptimizerSettings(
        name="adam", lr_g=config.lr_g, lr_d=config.lr_d, betas=(config.beta1, config.beta2), eps=config.adam_eps
    )
    objective = BigGANObjective(
        loss="hinge", optimizer=optimizer, n_critic=config.n_critic, reuse_fake=False, ortho_beta=config.ortho_beta,
        standing_passes=config.standing_passes, lr_decay_steps=config.lr_decay_steps,
        lr_decay_start=config.lr_decay_start,
    )
    return GAN(G, D, objective)
