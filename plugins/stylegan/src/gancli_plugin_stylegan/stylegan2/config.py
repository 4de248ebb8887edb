"""StyleGAN2 settings; the defaults are the paper's config F and stylegan2-ada-pytorch's ``--cfg stylegan2``.

Sources, by field: ``training/networks.py`` (``Generator``, ``MappingNetwork``,
``SynthesisNetwork``, ``Discriminator`` keyword defaults), ``training/loss.py``
(``StyleGAN2Loss``: style mixing 0.9, R1, path length weight 2, decay 0.01, batch shrink 2),
``training/training_loop.py`` (lazy intervals 16 for D and 4 for G, the lr/β correction) and
``train.py`` (``cfg_specs['stylegan2']``: batch 32, lr 0.002, γ 10, EMA 10 kimg, 8 mapping
layers; Adam β (0, 0.99), ε 1e-8) of NVlabs/stylegan2-ada-pytorch, and Karras et al. 2020
(arXiv:1912.04958) §2–§4 and appendix B.

Widths: the layers at resolution r have min(2·fmap_base / r, fmap_max) feature maps
(:class:`gancli_plugin_stylegan.widths.Widths`); NVlabs' ``channel_base`` is 2·fmap_base, so
config F (``channel_base`` 32768, 512 maps up to 64², 32 at 1024²) is fmap_base 16384 and
stylegan2-ada's ``paper256`` (``fmaps`` 0.5, config E's widths) is fmap_base 8192.
"""
from __future__ import annotations

from typing import ClassVar, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator


class StyleGAN2Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # cfg_specs['stylegan2']: mb 32, ema 10 (kimg; ema_rampup None)
    train_defaults: ClassVar[dict] = {"batch_size": 32, "ema": True, "ema_half_life_kimg": 10.0}
    data_defaults: ClassVar[dict] = {"resolution": 256}
    resume_may_change: ClassVar[frozenset] = frozenset({"lr", "r1_gamma", "pl_weight", "fresh_g_latents"})

    # ---------------------------------------------------------------- mapping network
    z_dim: int = Field(512, ge=1, description="latent z size")
    w_dim: int = Field(512, ge=1, description="intermediate latent w size")
    mapping_layers: int = Field(8, ge=1, description="dense layers of the mapping network z → w")
    mapping_width: int | None = Field(None, ge=1, description="hidden width of the mapping network (None: w_dim)")
    mapping_lr_multiplier: float = Field(0.01, gt=0, description="learning-rate multiplier of the mapping layers")
    w_avg_beta: float = Field(0.995, ge=0, lt=1, description="decay of the moving average of w tracked in training")

    # ---------------------------------------------------------------- widths, layers
    fmap_base: int = Field(16384, ge=1, description="feature maps at resolution r: min(2·fmap_base / r, fmap_max); "
                           "16384 is config F (NVlabs channel_base 32768), 8192 config E / paper256")
    fmap_decay: float = Field(1.0, ge=0, description="log2 feature-map reduction per doubling of the resolution")
    fmap_max: int = Field(512, ge=1, description="most feature maps in any layer")
    resample_taps: tuple[float, ...] = Field(
        (1.0, 3.0, 3.0, 1.0), description="the separable low-pass filter of every up- and downsampling"
    )
    fused_modconv: bool = Field(
        False, description="modulated convolutions as one grouped convolution with per-example weights (true) or "
        "by scaling activations around one shared convolution (false, NVlabs' training form); the same function"
    )
    mbstd_group_size: int = Field(4, ge=0, description="minibatch standard deviation group size in D (0 or 1: off)")
    mbstd_num_features: int = Field(1, ge=1, description="channels the minibatch stddev layer appends")

    # ---------------------------------------------------------------- training
    fresh_g_latents: Optional[bool] = Field(
        None, description="draw new latents for the G step, as stylegan2-ada's loss does per phase (one more G "
        "forward a step); false reuses the D step's fakes and their graph (G's activations held through the D "
        "step); None: fresh above 64×64, reuse at 64×64 and below",
    )
    style_mixing_prob: float = Field(0.9, ge=0, le=1, description="share of generated images that mix two latents")
    lr: float = Field(0.002, gt=0, description="Adam learning rate of G and D before the lazy-regularization correction")
    beta1: float = Field(0.0, ge=0, lt=1, description="Adam β1")
    beta2: float = Field(0.99, ge=0, lt=1, description="Adam β2")
    eps: float = Field(1e-8, gt=0, description="Adam ε")
    r1_gamma: float = Field(10.0, ge=0, description="R1 γ: γ/2 · E‖∇D(x)‖² on reals (the paper's FFHQ value 10; 0: off)")
    r1_interval: int = Field(16, ge=1, description="lazy R1: its own D pass every k minibatches, weighted by k")
    pl_weight: float = Field(2.0, ge=0, description="path-length regularization weight (0: off)")
    pl_interval: int = Field(4, ge=1, description="path-length regularization every k minibatches, weighted by k")
    pl_decay: float = Field(0.01, gt=0, le=1, description="decay of the running mean path length a")
    pl_batch_shrink: int = Field(2, ge=1, description="the path-length pass uses batch / pl_batch_shrink latents")

    @field_validator("resample_taps")
    @classmethod
    def _taps(cls, taps: tuple[float, ...]) -> tuple[float, ...]:
        if len(taps) < 2 or sum(taps) <= 0:
            raise ValueError("resample_taps: at least 2 taps with a positive sum")
        return taps
