"""DCGAN hyperparameters; defaults are the paper's."""
from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field


class DCGANConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    train_defaults: ClassVar[dict] = {"batch_size": 128}
    data_defaults: ClassVar[dict] = {"resolution": 64}
    # optimizer settings may change when a run is resumed; the architecture may not
    resume_may_change: ClassVar[frozenset] = frozenset({"lr", "lr_d", "beta1", "beta2", "real_label"})

    z_dim: int = Field(100, ge=1, description="latent size")
    ngf: int = Field(64, ge=1, description="G width: the 4×4 layer has 8·ngf channels")
    ndf: int = Field(64, ge=1, description="D width: the 4×4 layer has 8·ndf channels")
    loss: Literal["nonsaturating", "minimax", "least_squares", "hinge"] = Field(
        "nonsaturating", description="adversarial loss (minimax is the saturating one)"
    )
    lr: float = Field(2e-4, gt=0, description="Adam learning rate for G and D")
    lr_d: float | None = Field(None, gt=0, description="D learning rate if it differs (TTUR)")
    beta1: float = Field(0.5, ge=0, lt=1, description="Adam β1")
    beta2: float = Field(0.999, ge=0, lt=1, description="Adam β2")
    n_critic: int = Field(1, ge=1, description="D steps per G step")
    real_label: float = Field(1.0, gt=0, le=1, description="real target; 0.9 is one-sided label smoothing")
    conditional: bool = Field(False, description="class-conditional G (label embedding) and projection D")
    init_std: float = Field(0.02, gt=0, description="std of the N(0, σ) weight init")
