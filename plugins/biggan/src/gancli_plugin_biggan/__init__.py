"""BigGAN and BigGAN-deep (Brock, Donahue & Simonyan 2019) as a gancli family. Importing this module is cheap."""
from gancli.plugins import Family

FAMILY = Family(
    name="biggan",
    summary="BigGAN: residual SN G and D, shared class embedding into every conditional BN (gain 1 + γ), "
    "hierarchical z, self-attention, hinge loss, orthogonal regularization, EMA; arch=biggan-deep for the deep variant",
    config="gancli_plugin_biggan.config:BigGANConfig",
    build="gancli_plugin_biggan.model:build",
    paper="Brock, Donahue & Simonyan 2019, arXiv:1809.11096",
    # the kit's unconditional variants need conditional=false; its conditional variant switches it back on
    check_settings={
        "conditional": False, "g_ch": 2, "d_ch": 2, "z_dim": 8, "shared_dim": 8, "g_attention": 16, "d_attention": 16,
        "standing_passes": 2,
    },
    check_resolution=32,
    recipes="gancli_plugin_biggan:recipes",
    notes=(
        "learning rates default to the paper's (§3, 'halve the learning rates'): G 5e-5, D 2e-4; "
        "BigGAN-PyTorch's README and SAGAN use G 1e-4, D 4e-4 (--set lr_g=1e-4 --set lr_d=4e-4)",
        "orthogonal regularization at BigGAN-PyTorch's strength: β/2·Σ‖WWᵀ ⊙ (1 − I)‖²_F, whose gradient is "
        "utils.ortho's 2β·(WWᵀ ⊙ (1 − I))W (the paper writes β‖·‖²_F)",
        "the EMA copy's BatchNorm statistics are standing statistics (16 passes of G's batch) and its "
        "spectral-norm vectors are re-estimated before it is sampled or saved",
    ),
)
