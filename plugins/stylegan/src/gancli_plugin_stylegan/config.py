"""StyleGAN (v1) settings; the defaults are the paper's and NVlabs/stylegan's.

Sources, by field: ``training/networks_stylegan.py`` (``G_style``, ``G_mapping``,
``G_synthesis``, ``D_basic`` keyword defaults), ``training/training_loop.py``
(``G_smoothing_kimg``, ``reset_opt_for_new_lod``, ``training_schedule``) and ``train.py``
(the official FFHQ config: Adam β (0, 0.99) ε 1e-8, logistic loss with R1 γ = 10,
``lod_initial_resolution = 8``) of NVlabs/stylegan, and §2–§3 and appendix C of Karras,
Laine & Aila 2019 (arXiv:1812.04948).
"""
from __future__ import annotations

from typing import ClassVar, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator


def _power_of_two_keys(values: dict[int, float | int], name: str) -> dict:
    for resolution in values:
        if resolution < 4 or resolution & (resolution - 1):
            raise ValueError(f"{name}: {resolution} is not a resolution (a power of two ≥ 4)")
    return values


class StyleGANConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # NVlabs/stylegan train.py: minibatch_base = 32 (8 GPUs) at ≥ 128 px; training_loop.py:
    # G_smoothing_kimg = 10 (the half-life of G's running average, in thousands of images)
    train_defaults: ClassVar[dict] = {"batch_size": 32, "ema": True, "ema_half_life_kimg": 10.0}
    # the paper trains FFHQ at 1024² with growing; a model that trains every layer from the first
    # step (the default, grow = false) is practical at 256² on one GPU. The stylegan-ffhq-1024
    # recipe has the paper's 1024² setting.
    data_defaults: ClassVar[dict] = {"resolution": 256}
    resume_may_change: ClassVar[frozenset] = frozenset(
        {"lr", "lr_per_resolution", "r1_gamma", "truncation_cutoff", "fresh_g_latents"})

    # ---------------------------------------------------------------- mapping network (G_mapping)
    z_dim: int = Field(512, ge=1, description="latent z size (latent_size)")
    w_dim: int = Field(512, ge=1, description="intermediate latent w size (dlatent_size)")
    mapping_layers: int = Field(8, ge=1, description="dense layers of the mapping network z → w")
    mapping_width: int | None = Field(None, ge=1, description="hidden width of the mapping network (None: w_dim; v1 512)")
    mapping_lr_multiplier: float = Field(
        0.01, gt=0, description="learning-rate multiplier of the mapping layers (equalized LR: lr × this)"
    )
    w_avg_beta: float = Field(
        0.995, ge=0, lt=1, description="decay of the moving average of w tracked in training (dlatent_avg_beta)"
    )
    truncation_cutoff: int | None = Field(
        8, ge=1, description="layers of w that ψ truncates when sampling names no --truncation-cutoff (G_style's "
        "truncation_cutoff = 8: the styles up to 32²); None: every layer",
    )

    # ---------------------------------------------------------------- widths (G_synthesis / D_basic)
    fmap_base: int = Field(8192, ge=1, description="feature maps at stage s: min(fmap_base / 2^(s·fmap_decay), "
                           "fmap_max), stage s = log2(resolution) − 1")
    fmap_decay: float = Field(1.0, ge=0, description="log2 feature-map reduction per doubling of the resolution")
    fmap_max: int = Field(512, ge=1, description="most feature maps in any layer")
    const_init: Literal["ones", "randn"] = Field(
        "ones", description="start of the learned 4×4 constant: ones (v1 G_synthesis) or N(0, 1) (StyleGAN2, "
        "rosinality), which gives the first instance norm a spatial map to normalise from the first step",
    )
    blur: bool = Field(True, description="[1, 2, 1] low-pass filter after upsampling in G and before downsampling in D")
    mbstd_group_size: int = Field(
        4, ge=0, description="minibatch standard deviation group size in D (0 or 1: off)"
    )
    mbstd_num_features: int = Field(1, ge=1, description="channels the minibatch stddev layer appends")

    # ---------------------------------------------------------------- training
    fresh_g_latents: Optional[bool] = Field(
        None, description="draw new latents for the G step, as NVlabs' losses do per loss (one more G forward a "
        "step; w_avg then moves in both passes); false reuses the D step's fakes and their graph (G's activations "
        "held through the D step); None: fresh above 64×64, reuse at 64×64 and below",
    )
    style_mixing_prob: float = Field(
        0.9, ge=0, le=1, description="share of generated images whose w switches to a second latent's at a random layer"
    )
    lr: float = Field(0.001, gt=0, description="Adam learning rate of G and D (training_schedule G/D_lrate_base)")
    lr_per_resolution: dict[int, float] = Field(
        default_factory=dict, description="learning rate while training at a resolution (growing; the FFHQ config: "
        "{128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003}); other resolutions use lr",
    )
    beta1: float = Field(0.0, ge=0, lt=1, description="Adam β1")
    beta2: float = Field(0.99, ge=0, lt=1, description="Adam β2")
    eps: float = Field(1e-8, gt=0, description="Adam ε")
    r1_gamma: float = Field(10.0, ge=0, description="R1 penalty γ: γ/2 · E‖∇D(x)‖² on real images (0: off)")
    r1_interval: int = Field(
        1, ge=1, description="apply R1 every k steps as a separate pass weighted by k (StyleGAN2's lazy "
        "regularization, with D's Adam settings corrected); 1: every step, as v1"
    )

    # ---------------------------------------------------------------- progressive growing (optional)
    grow: bool = Field(False, description="grow G and D from start_resolution (the paper's schedule); false: full resolution")
    start_resolution: int = Field(8, ge=4, description="resolution growing starts at (lod_initial_resolution)")
    kimg_per_phase: float = Field(
        600.0, gt=0, description="thousands of images per fade-in and per stabilisation (lod_training/transition_kimg)"
    )
    batch_per_resolution: dict[int, int] = Field(
        default_factory=dict, description="global batch while growing at a resolution (the FFHQ 8-GPU config: "
        "{4: 512, 8: 256, 16: 128, 32: 64, 64: 32}); other resolutions use train.batch_size",
    )
    reset_optimizer_on_growth: bool = Field(
        True, description="clear Adam's moments when a fade-in starts and when it ends (reset_opt_for_new_lod)"
    )

    @field_validator("lr_per_resolution")
    @classmethod
    def _lr_keys(cls, values: dict[int, float]) -> dict[int, float]:
        if any(v <= 0 for v in values.values()):
            raise ValueError("lr_per_resolution: learning rates must be positive")
        return _power_of_two_keys(values, "lr_per_resolution")

    @field_validator("batch_per_resolution")
    @classmethod
    def _batch_keys(cls, values: dict[int, int]) -> dict[int, int]:
        if any(v < 1 for v in values.values()):
            raise ValueError("batch_per_resolution: batch sizes must be at least 1")
        return _power_of_two_keys(values, "batch_per_resolution")

    @field_validator("start_resolution")
    @classmethod
    def _start(cls, value: int) -> int:
        if value & (value - 1):
            raise ValueError(f"start_resolution must be a power of two, got {value}")
        return value
