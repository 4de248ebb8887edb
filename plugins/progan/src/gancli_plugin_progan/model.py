"""Build a Progressive GAN: the growing networks at 4×4 and the objective that grows them."""
from __future__ import annotations

from gancli.data.spec import DataSpec
from gancli.errors import GancliError
from gancli.growth import GrowthSchedule
from gancli.objective import GAN, OptimizerSettings

from gancli_plugin_progan.config import ProGANConfig
from gancli_plugin_progan.discriminator import ProGANDiscriminator
from gancli_plugin_progan.generator import ProGANGenerator
from gancli_plugin_progan.objective import ProGANObjective
from gancli.growth import feature_maps

MAX_RESOLUTION = 1024


def check_data(config: ProGANConfig, spec: DataSpec) -> None:
    if spec.kind != "image":
        raise GancliError("progan makes images; the data holds 2-D points — use --data with an image folder, "
                          "IDX/npz file or image alias")
    resolution = spec.resolution
    if resolution < 4 or resolution > MAX_RESOLUTION or resolution & (resolution - 1):
        raise GancliError(
            f"progan grows by doubling from 4×4 to at most {MAX_RESOLUTION}×{MAX_RESOLUTION}, so the resolution "
            f"must be a power of two; got {resolution} — pass --resolution 32 (or 64, 128, ...)"
        )
    if config.start_resolution > resolution:
        raise GancliError(
            f"progan: start_resolution {config.start_resolution} is above the data's resolution {resolution}; "
            f"set start_resolution to at most {resolution}"
        )
    narrowest = feature_maps(resolution, config.fmap_base, config.fmap_max)
    if narrowest < 1:
        raise GancliError(
            f"progan: fmap_base {config.fmap_base} leaves no feature maps at {resolution}×{resolution} "
            f"(min(2·fmap_base/resolution, fmap_max) = 0); raise fmap_base to at least {resolution // 2}"
        )


def build(config: ProGANConfig, spec: DataSpec) -> GAN:
    check_data(config, spec)
    schedule = GrowthSchedule(
        target_resolution=spec.resolution, kimg_per_phase=config.kimg_per_phase,
        start_resolution=config.start_resolution, batch_sizes=dict(config.batch_sizes),
    )
    z_dim = config.z_dim or feature_maps(2, config.fmap_base, config.fmap_max)
    G = ProGANGenerator(z_dim, spec.channels, spec.resolution, config.fmap_base, config.fmap_max)
    D = ProGANDiscriminator(spec.channels, spec.resolution, config.fmap_base, config.fmap_max,
                            config.mbstd_group_size)
    optimizer = OptimizerSettings(
        name="adam", lr_g=config.lr, lr_d=config.lr, betas=(config.beta1, config.beta2), eps=config.adam_eps
    )
    objective = ProGANObjective(
        schedule=schedule, optimizer=optimizer, gp_lambda=config.gp_lambda, gp_target=config.gp_target,
        drift=config.drift, lr_per_resolution=dict(config.lr_per_resolution),
        mirror_augment=config.mirror_augment, reset_optimizer_on_growth=config.reset_optimizer_on_growth,
    )
    return GAN(G, D, objective)
