"""SNGAN and SAGAN as gancli families. Importing this module is cheap (no torch).

Both families share one ResNet generator and discriminator (``networks.py``), built from
the core layers in :mod:`gancli.nn`, and differ in where spectral normalization goes,
self-attention and the optimizer settings (``config.py``).
"""
from gancli.plugins import Family

# tiny networks for the conformance kit (gancli.testing.check_family): 32×32 is the
# smallest resolution the papers' ResNets have; 8 channels is the least attention allows
_CHECK_SETTINGS = {"z_dim": 8, "g_ch": 2, "d_ch": 4}

SNGAN = Family(
    name="sngan",
    summary="Spectrally normalized ResNet D, hinge loss, Adam 2e-4 β (0, 0.9) decayed linearly over 50k G "
    "steps, 5 D steps; conditional BN in G and a projection D when the data has labels",
    config="gancli_plugin_sngan.config:SNGANConfig",
    build="gancli_plugin_sngan.model:build_sngan",
    paper="Miyato et al. 2018, arXiv:1802.05957; Miyato & Koyama 2018, arXiv:1802.05637",
    check_settings=_CHECK_SETTINGS,
    check_resolution=32,
    recipes="gancli_plugin_sngan:recipes",
    notes=(
        "the sngan-fashion-mnist recipe uses the paper's setting C (1 D step, β (0.5, 0.999)) at lr 5e-4 for a "
        "CPU budget; the family's defaults are setting A's (n_critic 5, β (0, 0.9), 2e-4)",
        "both rates fall linearly to 0 at G step 50000 by default (sngan_projection's LinearShift over its "
        "configs' iterations): a shorter run stops partway down that line; set lr_decay_steps to the run's "
        "steps to reach 0 at its end, or 0 for constant rates",
    ),
)

SAGAN = Family(
    name="sagan",
    summary="SNGAN's ResNets with self-attention in G and D and spectral norm in both, hinge loss, "
    "TTUR (D 4e-4, G 1e-4, β (0, 0.9)), 1 D step",
    config="gancli_plugin_sngan.config:SAGANConfig",
    build="gancli_plugin_sngan.model:build_sagan",
    paper="Zhang, Goodfellow, Metaxas & Odena 2019, arXiv:1805.08318",
    check_settings=_CHECK_SETTINGS,
    check_resolution=32,
    recipes="gancli_plugin_sngan:recipes",
    notes=(
        "the sagan-fashion-mnist recipe drops TTUR for equal rates (5e-4, β (0.5, 0.999)), as StudioGAN's "
        "CIFAR-10 SAGAN config does; the family's defaults are the paper's TTUR (G 1e-4, D 4e-4, β (0, 0.9))",
    ),
)
