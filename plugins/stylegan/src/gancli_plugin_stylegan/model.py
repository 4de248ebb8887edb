"""Build StyleGAN v1 from its settings: generator, discriminator and objective."""
from __future__ import annotations

from gancli.data.spec import DataSpec
from gancli.errors import GancliError
from gancli.growth import GrowthSchedule
from gancli.objective import GAN, OptimizerSettings

from gancli_plugin_stylegan.config import StyleGANConfig
from gancli_plugin_stylegan.discriminator import StyleGANDiscriminator
from gancli_plugin_stylegan.losses import reuses_fakes
from gancli_plugin_stylegan.generator import StyleGANGenerator
from gancli_plugin_stylegan.objective import StyleGANObjective
from gancli_plugin_stylegan.widths import Widths

MIN_RESOLUTION, MAX_RESOLUTION = 32, 1024


def check_data(spec: DataSpec) -> None:
    if spec.kind != "image":
        raise GancliError("stylegan makes images; give it an image dataset (a folder, IDX, npz or hub id), not 2-D points")
    resolution = spec.resolution
    if not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION or resolution & (resolution - 1):
        raise GancliError(
            f"stylegan makes square images of 32 to 1024 pixels, a power of two; got {resolution} "
            f"(use --resolution 32, 64, 128, 256, 512 or 1024)"
        )


def growth_schedule(config: StyleGANConfig, resolution: int) -> GrowthSchedule | None:
    if not config.grow:
        return None
    if config.start_resolution > resolution:
        raise GancliError(
            f"stylegan: start_resolution {config.start_resolution} is above the data's {resolution}; "
            f"set start_resolution to at most {resolution}"
        )
    return GrowthSchedule(
        target_resolution=resolution, kimg_per_phase=config.kimg_per_phase,
        start_resolution=config.start_resolution, batch_sizes=dict(config.batch_per_resolution),
    )


def build(config: StyleGANConfig, spec: DataSpec) -> GAN:
    """The unconditional v1 model (labels in the data are not used)."""
    check_data(spec)
    widths = Widths(config.fmap_base, config.fmap_decay, config.fmap_max)
    schedule = growth_schedule(config, spec.resolution)
    start = config.start_resolution if schedule is not None else 4
    G = StyleGANGenerator(
        resolution=spec.resolution, channels=spec.channels, z_dim=config.z_dim, w_dim=config.w_dim,
        mapping_layers=config.mapping_layers, mapping_width=config.mapping_width,
        mapping_lr_multiplier=config.mapping_lr_multiplier, w_avg_beta=config.w_avg_beta, widths=widths,
        blur=config.blur, grow=schedule is not None, start_resolution=start, const_init=config.const_init,
        truncation_cutoff=config.truncation_cutoff,
    )
    D = StyleGANDiscriminator(
        spec.resolution, spec.channels, widths, blur=config.blur, mbstd_group_size=config.mbstd_group_size,
        mbstd_num_features=config.mbstd_num_features, grow=schedule is not None, start_resolution=start,
    )
    optimizer = OptimizerSettings(
        name="adam", lr_g=config.lr, lr_d=config.lr, betas=(config.beta1, config.beta2), eps=config.eps
    )
    objective = StyleGANObjective(
        loss="nonsaturating", optimizer=optimizer, r1_gamma=config.r1_gamma, r1_interval=config.r1_interval,
        style_mixing_prob=config.style_mixing_prob, lr_per_resolution=dict(config.lr_per_resolution),
        growth=schedule, reset_optimizer_on_growth=config.reset_optimizer_on_growth,
        reuse_fake=reuses_fakes(config.fresh_g_latents, spec.resolution),
    )
    return GAN(G, D, objective)
