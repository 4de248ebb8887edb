"""SNGAN and SAGAN settings; defaults are the papers'.

Widths follow StudioGAN's convention (``g_conv_dim``/``d_conv_dim`` in
POSTECH-CVLab/PyTorch-StudioGAN ``src/models/resnet.py``), which at 64 and 128 px is
pfnet-research/sngan_projection's ``ch``: at 32 px every generator block has 4·``g_ch``
channels and every discriminator block 2·``d_ch``, so the defaults of 64 give the SNGAN
paper's CIFAR-10 ResNet (256 in G, 128 in D; ``configs/sn_cifar10_conditional.yml``);
at 64 and 128 px G starts from 16·``g_ch`` channels at 4×4 and halves them down to ``g_ch``,
D doubles ``d_ch`` up to 16·``d_ch`` (``gen_models/resnet_64.py``, ``dis_models/snresnet_64.py``,
``gen_models/resnet.py``, ``dis_models/snresnet.py``).

``conditional`` None means "when the data has labels": class sub-folders, labelled
IDX/npz files or a hub dataset with a label column make a class-conditional model
(conditional BatchNorm in G, projection D); ``conditional=false`` forces an
unconditional one, ``conditional=true`` insists on labels.
"""
from __future__ import annotations

from typing import ClassVar, Literal, Optional

from pydantic import ConfigDict, Field

from gancli.config import LinearLRDecaySettings

Init = Literal["xavier_uniform", "orthogonal", "normal"]


class _ResNetGANConfig(LinearLRDecaySettings):
    model_config = ConfigDict(extra="forbid")

    # the papers' CIFAR-10 setting (SNGAN: batch 64 at 32×32)
    train_defaults: ClassVar[dict] = {"batch_size": 64}
    data_defaults: ClassVar[dict] = {"resolution": 32}
    resume_may_change: ClassVar[frozenset] = frozenset({"lr_g", "lr_d", "beta1", "beta2", "n_critic", "lr_decay_steps",
                                                          "lr_decay_start"})

    z_dim: int = Field(128, ge=1, description="latent size (both papers: 128)")
    g_ch: int = Field(
        64, ge=1, description="G width: 32 px blocks have 4·g_ch channels (256, the SNGAN paper's); "
        "64/128 px start at 16·g_ch at 4×4 and halve down to g_ch",
    )
    d_ch: int = Field(
        64, ge=1, description="D width: 32 px blocks have 2·d_ch channels (128, the SNGAN paper's); "
        "64/128 px double from d_ch up to 16·d_ch",
    )
    conditional: Optional[bool] = Field(
        None, description="class-conditional G (conditional BN) and projection D; None: when the data has labels",
    )
    n_critic: int = Field(5, ge=1, description="D updates per G update")
    beta1: float = Field(0.0, ge=0, lt=1, description="Adam β1")
    beta2: float = Field(0.9, ge=0, lt=1, description="Adam β2")
    init: Init = Field(
        "xavier_uniform", description="weight init: xavier_uniform (the papers' code), orthogonal (StudioGAN, BigGAN), "
        "normal N(0, 0.02)",
    )
    residual_gain: Optional[float] = Field(
        None, gt=0, description="gain of the residual blocks' 3×3 convs (None: √2 with xavier_uniform, as "
        "sngan_projection's GlorotUniform(√2); 1 otherwise)",
    )
    g_batch_factor: int = Field(
        1, ge=1, le=8, description="the G step's batch as a multiple of D's (sngan_projection: 2, 128 generated "
        "for each G update against batches of 64; 1: equal, as StudioGAN and the SAGAN code)",
    )


class SNGANConfig(_ResNetGANConfig):
    """Miyato et al. 2018 (ResNet, hinge loss: α = 2e-4, β1 = 0, β2 = 0.9, n_dis = 5) and Miyato & Koyama 2018,
    with both rates decayed linearly to 0 over 50k G steps from the first, as sngan_projection's configs do."""

    lr_g: float = Field(2e-4, gt=0, description="G learning rate")
    lr_d: float = Field(2e-4, gt=0, description="D learning rate")
    lr_decay_steps: int = Field(
        50000, ge=0, description="decay both learning rates linearly to 0 at this G step (sngan_projection: "
        "LinearShift over its configs' 50k G iterations; 0: constant rates)",
    )
    g_spectral_norm: bool = Field(False, description="spectral norm in G (SNGAN: no; an ablation)")
    d_spectral_norm: bool = Field(True, description="spectral norm on every D weight (SNGAN: yes)")


class SAGANConfig(_ResNetGANConfig):
    """Zhang et al. 2019, section 5: SN in G and D, TTUR lr_D 4e-4 / lr_G 1e-4, Adam β1 = 0, β2 = 0.9, 1:1 updates."""

    n_critic: int = Field(1, ge=1, description="D updates per G update (SAGAN: 1, with TTUR)")
    beta2: float = Field(0.9, ge=0, lt=1, description="Adam β2 (the paper's 0.9; the released code keeps TF's "
                         "default 0.999, and both use ε = 1e-8)")
    residual_gain: Optional[float] = Field(
        1.0, gt=0, description="gain of the residual blocks' 3×3 convs (1: the released code's xavier_initializer "
        "on every conv; SNGAN's reference uses √2)",
    )
    lr_g: float = Field(1e-4, gt=0, description="G learning rate (TTUR)")
    lr_d: float = Field(4e-4, gt=0, description="D learning rate (TTUR)")
    g_spectral_norm: bool = Field(True, description="spectral norm on every G weight (SAGAN: yes)")
    d_spectral_norm: bool = Field(True, description="spectral norm on every D weight (SAGAN: yes)")
    attention_resolution: Optional[int] = Field(
        None, ge=2, description="feature-map side after which G and D attend (None: 16 for 32 px images as in "
        "StudioGAN's CIFAR-10 SAGAN, else 32, the released SAGAN's feat32)",
    )
