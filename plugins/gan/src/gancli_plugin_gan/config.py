"""Hyperparameters of the ``gan`` family.

Goodfellow et al. (2014) trained maxout/dropout MLPs with SGD on MNIST; the defaults
here are instead those of a well-known, reproducible 2-D mixture-of-Gaussians setup,
the toy MLPs of the unrolled-GAN demo (poolio/unrolled_gan, "Unrolled GAN demo.ipynb",
Metz et al. 2017's code): two tanh layers of 128 units in G and D, z ~ N(0, I) of size
256, orthogonal init with gain 1.4, batch 512, Adam β1 = 0.5 with lr 1e-3 for G and
1e-4 for D. Recipes change what a dataset needs.
"""
from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

Activation = Literal["tanh", "relu", "leaky_relu"]


class GANConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # batch 512: unrolled-GAN demo notebook (poolio/unrolled_gan)
    train_defaults: ClassVar[dict] = {"batch_size": 512}
    data_defaults: ClassVar[dict] = {}

    z_dim: int = Field(256, ge=1, description="latent size, z ~ N(0, I) (256: unrolled-GAN demo)")
    g_hidden: int = Field(128, ge=1, description="G hidden units per layer (128: unrolled-GAN demo)")
    g_layers: int = Field(2, ge=1, description="G hidden layers (2: unrolled-GAN demo)")
    g_activation: Activation = Field("tanh", description="G hidden activation (tanh: unrolled-GAN demo)")
    g_norm: Literal["none", "batch", "virtual"] = Field(
        "none", description="normalization of G's hidden layers: none, batch (PacGAN's toy G), or virtual "
        "batch norm (Salimans et al. 2016; reference batch refreshed at every training forward)"
    )
    vbn_reference_size: int = Field(128, ge=2, description="latents in the fixed VBN reference batch")
    d_hidden: int = Field(128, ge=1, description="D hidden units per layer (128: unrolled-GAN demo)")
    d_layers: int = Field(2, ge=1, description="D hidden layers (2: unrolled-GAN demo)")
    d_activation: Activation = Field("tanh", description="D hidden activation (tanh: unrolled-GAN demo)")
    d_dropout: float = Field(0.0, ge=0, lt=1, description="dropout on D's hidden layers (Goodfellow et al. used 0.5)")
    init: Literal["orthogonal", "pytorch"] = Field(
        "orthogonal", description="weight init: orthogonal (unrolled-GAN demo) or PyTorch's default"
    )
    init_gain: float = Field(1.4, gt=0, description="gain of the orthogonal init (1.4: unrolled-GAN demo)")
    loss: Literal["nonsaturating", "minimax"] = Field(
        "nonsaturating", description="G loss: nonsaturating −log D(G(z)), or minimax log(1 − D(G(z))) (saturates)"
    )
    n_critic: int = Field(1, ge=1, description="k: D steps per G step (Goodfellow et al. used k = 1)")
    lr_g: float = Field(1e-3, gt=0, description="Adam lr for G (1e-3: unrolled-GAN demo)")
    lr_d: float = Field(1e-4, gt=0, description="Adam lr for D (1e-4: unrolled-GAN demo)")
    beta1: float = Field(0.5, ge=0, lt=1, description="Adam β1 (0.5: unrolled-GAN demo)")
    beta2: float = Field(0.999, ge=0, lt=1, description="Adam β2")
    real_label: float = Field(1.0, gt=0, le=1, description="real target; 0.9 is one-sided label smoothing")
    minibatch_discrimination: bool = Field(False, description="append minibatch-discrimination features in D")
    mbd_kernels: int = Field(100, ge=1, description="B: minibatch-discrimination kernels (100: openai/improved-gan)")
    mbd_kernel_dim: int = Field(5, ge=1, description="C: dimension of each kernel (5: openai/improved-gan)")
    feature_matching: bool = Field(False, description="G matches the mean of D's last hidden layer on real data")
    feature_matching_target: Literal["independent", "same_batch"] = Field(
        "independent", description="the real features G matches: from a fresh real batch (openai/improved-gan) or "
        "from the batch D was just trained on",
    )
    feature_matching_adversarial: float = Field(
        0.0, ge=0, description="weight of the adversarial G loss added to feature matching (0: pure, as the paper)"
    )
    historical_averaging: float = Field(0.0, ge=0, description="λ of the historical-averaging penalty on G and D")
    semi_supervised: bool = Field(
        False, description="D outputs K class logits (fake = implicit extra class); train with data.labeled=N"
    )
    unsupervised_weight: float = Field(
        1.0, ge=0, description="weight of the unsupervised GAN term in the semi-supervised D loss (paper: 1)"
    )
    supervised_batch: int = Field(
        100, ge=0, description="labelled examples per semi-supervised D step, drawn from the labelled examples "
        "seen so far (100: openai/improved-gan's MNIST script); 0 uses only the labelled ones in each batch"
    )
    supervised_pool: int = Field(2048, ge=1, description="how many of the last labelled examples seen are kept to draw from")
