"""BigGAN hyperparameters; the defaults are the paper's ImageNet 128×128 settings.

Sources: Brock, Donahue & Simonyan 2019 (arXiv:1809.11096) §3, §3.1, appendix B/C, and the
authors' ajbrock/BigGAN-PyTorch (``BigGAN.py``, ``BigGANdeep.py``, ``layers.py``,
``train_fns.py``, ``utils.py``, ``scripts/launch_BigGAN_bs256x8.sh``,
``scripts/launch_BigGAN_deep.sh``).

* Optimizer: the paper takes SAGAN's settings "with the modification that we halve the learning
  rates and take two D steps per G step": Adam β = (0, 0.999), lr G 5e-5, D 2e-4, n_critic 2.
  BigGAN-PyTorch's released model keeps SAGAN's 1e-4 / 4e-4 with one D step (its README, "Key
  Differences"); set ``lr_g``/``lr_d``/``n_critic`` for that. Adam ε = 1e-6 is the launch
  scripts' ``--adam_eps``.
* Orthogonal regularization β = 1e-4 (§3.1), see ``ortho_beta``.
* Widths: ``ch`` = 96 for BigGAN and 128 for BigGAN-deep at 128 px (``--G_ch/--D_ch``); z 120 with
  a 128-d shared embedding for BigGAN, z 128 for BigGAN-deep (``--dim_z``, ``--shared_dim``).
* EMA of G with decay 0.9999 starting at step 20 000 (launch scripts ``--ema_start 20000``) and
  batch 2048 (paper; BigGAN-PyTorch reaches it as 256 × 8 accumulations): ``train_defaults``.
"""
from __future__ import annotations

from typing import ClassVar, Literal, Optional

from pydantic import ConfigDict, Field

from gancli.config import LinearLRDecaySettings

Arch = Literal["biggan", "biggan-deep"]
Init = Literal["orthogonal", "normal", "xavier_uniform"]

#: the paper's widths (``--G_ch``/``--D_ch``) and latent sizes (``--dim_z``) per architecture
DEFAULT_CH = {"biggan": 96, "biggan-deep": 128}
DEFAULT_Z_DIM = {"biggan": 120, "biggan-deep": 128}


class BigGANConfig(LinearLRDecaySettings):
    model_config = ConfigDict(extra="forbid")

    train_defaults: ClassVar[dict] = {"batch_size": 2048, "ema": True, "ema_decay": 0.9999, "ema_start_step": 20_000}
    data_defaults: ClassVar[dict] = {"resolution": 128}
    resume_may_change: ClassVar[frozenset] = frozenset({"lr_g", "lr_d", "beta1", "beta2", "adam_eps", "n_critic", "ortho_beta", "standing_passes",
                                                          "lr_decay_steps", "lr_decay_start"})

    arch: Arch = Field("biggan", description="biggan (hierarchical z, 2 convs per block) or biggan-deep (bottleneck "
                       "blocks, full z + class into every block, channels dropped/kept instead of 1×1 shortcuts)")
    conditional: bool = Field(
        True, description="class-conditional G and projection D (BigGAN is a class-conditional model; false trains "
        "the unconditional variant on unlabelled data, z chunks alone feeding the BatchNorm gains)",
    )
    z_dim: Optional[int] = Field(None, ge=1, description="latent size (None: 120 for biggan, 128 for biggan-deep)")
    shared_dim: int = Field(128, ge=1, description="size of the shared class embedding G.shared")
    hierarchical: bool = Field(
        True, description="biggan: split z into one chunk per block plus one for the input layer, each block's chunk "
        "concatenated with the shared embedding (skip-z); false feeds all of z to the input layer",
    )
    g_ch: Optional[int] = Field(None, ge=1, description="G channel multiplier (None: 96 biggan, 128 biggan-deep)")
    d_ch: Optional[int] = Field(None, ge=1, description="D channel multiplier (None: 96 biggan, 128 biggan-deep)")
    g_attention: Optional[int] = Field(
        None, ge=0, description="resolution after which G has a self-attention block, 0 for none (None: 64 as in the "
        "paper at 64 and 128 px, 16 at 32 px as in StudioGAN's CIFAR-10 config)",
    )
    d_attention: Optional[int] = Field(
        None, ge=0, description="resolution after which D has a self-attention block, 0 for none (None: after D's first "
        "block, i.e. 64 at 128 px as in the paper, 16 at 32 px as in StudioGAN)",
    )
    depth: int = Field(2, ge=1, description="biggan-deep: residual blocks per resolution in G and D (--G_depth/--D_depth)")
    init: Init = Field("orthogonal", description="weight init of G and D (BigGAN-PyTorch --G_init/--D_init ortho)")
    lr_g: float = Field(5e-5, gt=0, description="Adam learning rate of G (paper: SAGAN's 1e-4 halved)")
    lr_d: float = Field(2e-4, gt=0, description="Adam learning rate of D (paper: SAGAN's 4e-4 halved)")
    beta1: float = Field(0.0, ge=0, lt=1, description="Adam β1")
    beta2: float = Field(0.999, ge=0, lt=1, description="Adam β2")
    adam_eps: float = Field(1e-6, gt=0, description="Adam ε (BigGAN-PyTorch launch scripts)")
    n_critic: int = Field(2, ge=1, description="D steps per G step")
    ortho_beta: float = Field(
        1e-4, ge=0, description="orthogonal regularization β of G's weights (shared embedding excluded), with "
        "BigGAN-PyTorch's strength: G's loss gets β/2·Σ‖WWᵀ⊙(1−I)‖²_F, whose gradient is utils.ortho's 2β(WWᵀ⊙(1−I))W; "
        "0 turns it off",
    )
    standing_passes: int = Field(
        16, ge=1, description="forward passes that give the EMA generator its standing BatchNorm statistics before "
        "it samples or is saved (BigGAN-PyTorch --num_standing_accumulations 16)",
    )
