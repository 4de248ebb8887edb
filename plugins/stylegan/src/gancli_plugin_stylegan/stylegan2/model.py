"""Build StyleGAN2 (config E/F) from its settings: generator, discriminator and objective."""
from __future__ import annotations

from gancli.data.spec import DataSpec
from gancli.errors import GancliError
from gancli.objective import GAN, OptimizerSettings

from gancli_plugin_stylegan.losses import reuses_fakes
from gancli_plugin_stylegan.stylegan2.config import StyleGAN2Config
from gancli_plugin_stylegan.stylegan2.networks import StyleGAN2Discriminator, StyleGAN2Generator
from gancli_plugin_stylegan.stylegan2.objective import StyleGAN2Objective
from gancli_plugin_stylegan.widths import Widths

MIN_RESOLUTION, MAX_RESOLUTION = 8, 1024


def check_data(spec: DataSpec) -> None:
    if spec.kind != "image":
        raise GancliError("stylegan2 makes images; give it an image dataset (a folder, IDX, npz or hub id), not 2-D points")
    resolution = spec.resolution
    if not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION or resolution & (resolution - 1):
        raise GancliError(
            f"stylegan2 makes square images of 8 to 1024 pixels, a power of two; got {resolution} "
            f"(use --resolution 32, 64, 128, 256, 512 or 1024)"
        )


def build(config: StyleGAN2Config, spec: DataSpec) -> GAN:
    """The unconditional model (labels in the data are not used)."""
    check_data(spec)
    widths = Widths(config.fmap_base, config.fmap_decay, config.fmap_max)
    if widths.at(spec.resolution) < 1 or widths.base * 2 < spec.resolution:
        raise GancliError(f"stylegan2: fmap_base {config.fmap_base} leaves no feature maps at {spec.resolution}²; "
                          f"set fmap_base to at least {spec.resolution // 2}")
    taps = tuple(config.resample_taps)
    G = StyleGAN2Generator(
        resolution=spec.resolution, channels=spec.channels, z_dim=config.z_dim, w_dim=config.w_dim,
        mapping_layers=config.mapping_layers, mapping_width=config.mapping_width,
        mapping_lr_multiplier=config.mapping_lr_multiplier, w_avg_beta=config.w_avg_beta, widths=widths, taps=taps,
        fused_modconv=config.fused_modconv,
    )
    D = StyleGAN2Discriminator(
        spec.resolution, spec.channels, widths, mbstd_group_size=config.mbstd_group_size,
        mbstd_num_features=config.mbstd_num_features, taps=taps,
    )
    optimizer = OptimizerSettings(
        name="adam", lr_g=config.lr, lr_d=config.lr, betas=(config.beta1, config.beta2), eps=config.eps
    )
    objective = StyleGAN2Objective(
        loss="nonsaturating", optimizer=optimizer, r1_gamma=config.r1_gamma, r1_interval=config.r1_interval,
        style_mixing_prob=config.style_mixing_prob, pl_weight=config.pl_weight, pl_interval=config.pl_interval,
        pl_decay=config.pl_decay, pl_batch_shrink=config.pl_batch_shrink, reuse_fake=reuses_fakes(config.fresh_g_latents, spec.resolution),
    )
    return GAN(G, D, objective)
