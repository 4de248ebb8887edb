"""WGAN and WGAN-GP hyperparameters; defaults are the papers' (Algorithm 1 of each).

Architectures (``arch``):

* ``mlp``: the WGAN-GP toy networks (gan_toy.py in igul222/improved_wgan_training):
  ``mlp_layers`` hidden ReLU layers of ``width`` (512) units in G and critic. Also
  usable on images (flattened, tanh output), as WGAN's MLP-generator experiments.
* ``dcgan``: DCGAN-like convolutional nets (WGAN-GP's gan_cifar.py / gan_mnist.py):
  G with 5×5 transposed convs and BatchNorm, critic with 5×5 strided convs and LeakyReLU.
* ``resnet``: the WGAN-GP CIFAR-10 ResNet (gan_cifar_resnet.py): 128-channel
  pre-activation residual blocks, nearest-neighbour upsampling and BatchNorm in G,
  mean-pool downsampling and no BatchNorm in the critic.
* ``auto``: ``mlp`` for 2-D points, ``dcgan`` for images.
"""
from __future__ import annotations

from typing import ClassVar, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

Arch = Literal["auto", "mlp", "dcgan", "resnet"]


class _WassersteinConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    train_defaults: ClassVar[dict] = {"batch_size": 64}
    data_defaults: ClassVar[dict] = {"resolution": 32}

    arch: Arch = Field("auto", description="mlp | dcgan | resnet | auto (mlp for points, dcgan for images)")
    width: Optional[int] = Field(
        None, ge=1, description="network width (None: the arch's default: mlp 512 units, dcgan 64, resnet 128 channels)"
    )
    mlp_layers: int = Field(3, ge=1, description="hidden layers of the mlp arch (G and critic)")
    point_scale: float = Field(
        1.0, gt=0, description="2-D points: the critic sees x / point_scale and G outputs point_scale × its "
        "last layer, so the nets work at unit scale (the official toy code divides its data by 2.828)",
    )
    n_critic: int = Field(5, ge=1, description="critic updates per generator update")
    lr_d: Optional[float] = Field(None, gt=0, description="critic learning rate if it differs from lr")
    lr_decay_steps: int = Field(
        0, ge=0, description="decay both learning rates linearly to 0 over this many G steps (0: constant)"
    )
    conditional: bool = Field(False, description="class-conditional G (label embedding) and projection critic")


class WGANConfig(_WassersteinConfig):
    """Arjovsky et al. 2017, Algorithm 1: α = 5e-5, c = 0.01, m = 64, n_critic = 5, RMSprop."""

    z_dim: int = Field(100, ge=1, description="latent size")
    clip: float = Field(0.01, gt=0, description="critic weights are clipped to [-clip, clip] after every critic step")
    critic_schedule: Literal["constant", "reference"] = Field(
        "constant", description="constant: n_critic critic steps per G step (the paper's Algorithm 1); reference: "
        "100 critic steps for the first 25 G steps and every 500th, n_critic otherwise (martinarjovsky/WassersteinGAN)",
    )
    optimizer: Literal["rmsprop", "adam"] = Field("rmsprop", description="RMSprop as in the paper (Adam was unstable)")
    lr: float = Field(5e-5, gt=0, description="learning rate of G and critic")
    beta1: float = Field(0.5, ge=0, lt=1, description="Adam β1 (optimizer=adam only)")
    beta2: float = Field(0.999, ge=0, lt=1, description="Adam β2 (optimizer=adam only)")
    critic_norm: Optional[Literal["none", "layer", "batch"]] = Field(
        None, description="critic normalization (None: batch for dcgan as in the paper, none for mlp/resnet)"
    )


class WGANGPConfig(_WassersteinConfig):
    """Gulrajani et al. 2017, Algorithm 1: λ = 10, n_critic = 5, Adam α = 1e-4, β1 = 0, β2 = 0.9."""

    z_dim: int = Field(128, ge=1, description="latent size")
    gp_lambda: float = Field(10.0, gt=0, description="gradient penalty weight λ")
    lr: float = Field(1e-4, gt=0, description="Adam learning rate of G and critic")
    beta1: float = Field(0.0, ge=0, lt=1, description="Adam β1")
    beta2: float = Field(0.9, ge=0, lt=1, description="Adam β2")
    # BatchNorm couples the examples of a batch, which breaks the per-example penalty
    critic_norm: Literal["none", "layer"] = Field("none", description="critic normalization: none or layer (never batch)")
