"""Progressive GAN settings; defaults are the paper's (Karras et al. 2018, appendix A.1).

Where the paper is silent, the defaults follow the official code, tkarras/progressive_growing_of_gans
(``networks.py`` G_paper/D_paper, ``loss.py`` D_wgangp_acgan, ``train.py`` TrainingSchedule and
train_progressive_gan, ``config.py`` preset-v1, the configuration the paper's results were trained
with). Growth: one phase of ``kimg_per_phase`` thousand images at the start resolution, then per
doubling a fade-in phase and a stabilisation phase of the same length (gancli.growth.GrowthSchedule).
"""
from __future__ import annotations

from typing import ClassVar, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator


def _is_power_of_two(value: int) -> bool:
    return value >= 1 and value & (value - 1) == 0


class ProGANConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # the paper: minibatch 16 for 4²–128² (the per-resolution sizes above that are batch_sizes below);
    # EMA of G's weights with decay 0.999 per step (train.py G_smoothing, updated once per minibatch)
    train_defaults: ClassVar[dict] = {"batch_size": 16, "ema": True, "ema_decay": 0.999}
    data_defaults: ClassVar[dict] = {"resolution": 128}
    resume_may_change: ClassVar[frozenset] = frozenset({"lr", "beta1", "beta2", "lr_per_resolution"})

    z_dim: Optional[int] = Field(
        None, ge=1, description="latent size (None: min(fmap_base, fmap_max) as networks.py, 512 in the paper)"
    )
    fmap_base: int = Field(
        8192, ge=1, description="feature maps at resolution r: min(2·fmap_base/r, fmap_max); the paper's "
        "8192 and 512 give 512 up to 32×32, then 256, 128, 64, 32, 16 at 1024×1024 (Table 2)",
    )
    fmap_max: int = Field(512, ge=1, description="the most feature maps of any layer")
    kimg_per_phase: float = Field(
        800.0, gt=0, description="thousands of real images per fade-in and per stabilisation phase (the paper: 800)"
    )
    start_resolution: int = Field(
        4, ge=4, description="resolution training starts at (4: the paper; the target resolution: no growing)"
    )
    batch_sizes: dict[int, int] = Field(
        {256: 14, 512: 6, 1024: 3},
        description="global batch per resolution; resolutions not listed use train.batch_size "
        "(the paper: 16 up to 128², then 14, 6, 3)",
    )
    lr: float = Field(1e-3, gt=0, description="Adam learning rate of G and D")
    beta1: float = Field(0.0, ge=0, lt=1, description="Adam β1")
    beta2: float = Field(0.99, ge=0, lt=1, description="Adam β2")
    adam_eps: float = Field(1e-8, gt=0, description="Adam ε")
    gp_lambda: float = Field(10.0, ge=0, description="WGAN-GP weight λ (the paper: 10, target gradient norm 1)")
    gp_target: float = Field(1.0, gt=0, description="the gradient norm the penalty pulls towards, γ: (‖∇‖ − γ)²/γ² "
                             "(the official code's wgan_target, 1)")
    lr_per_resolution: dict[int, float] = Field(
        default_factory=dict, description="learning rate of G and D at given resolutions, e.g. {\"128\": 0.0015, "
        "\"256\": 0.002} (the official config's G_lrate_dict/D_lrate_dict for 1024²); others use lr",
    )
    drift: float = Field(1e-3, ge=0, description="ε_drift: D is also penalised by ε_drift·E[D(x)²] on real images")
    mbstd_group_size: int = Field(
        16, ge=0, description="minibatch-stddev group (the paper's preset: 16, the whole minibatch; the code's "
        "later default: 4; 0 or 1: no minibatch-stddev layer)",
    )
    reset_optimizer_on_growth: bool = Field(
        True, description="clear the Adam moments when a fade-in starts and when it ends (train.py "
        "reset_opt_for_new_lod, on in the official runs)",
    )
    mirror_augment: bool = Field(False, description="flip each real image left-right with probability ½ (the "
                                 "official CelebA and LSUN runs)")

    @field_validator("start_resolution")
    @classmethod
    def _start_is_a_power_of_two(cls, value: int) -> int:
        if not _is_power_of_two(value):
            raise ValueError(f"start_resolution must be a power of two ≥ 4, got {value}")
        return value

    @field_validator("batch_sizes")
    @classmethod
    def _batch_sizes_are_per_resolution(cls, value: dict[int, int]) -> dict[int, int]:
        for resolution, batch in value.items():
            if resolution < 4 or not _is_power_of_two(resolution):
                raise ValueError(f"batch_sizes keys are resolutions (powers of two ≥ 4), got {resolution}")
            if batch < 1:
                raise ValueError(f"batch_sizes[{resolution}] must be at least 1, got {batch}")
        return dict(sorted(value.items()))
