"""WGAN and WGAN-GP as gancli families. Importing this module is cheap (no torch)."""
from gancli.plugins import Family

# tiny networks for the conformance kit (gancli.testing.check_family); 16×16 images keep it fast
_CHECK_SETTINGS = {"z_dim": 8, "width": 8, "mlp_layers": 1}
_CHECK_RESOLUTION = 16

WGAN = Family(
    name="wgan",
    summary="Wasserstein GAN: critic with weight clipping (c = 0.01), RMSprop, 5 critic steps per G step",
    config="gancli_plugin_wgan.config:WGANConfig",
    build="gancli_plugin_wgan.model:build_wgan",
    data_kinds=("points", "image"),
    paper="Arjovsky, Chintala & Bottou 2017, arXiv:1701.07875",
    check_settings=_CHECK_SETTINGS,
    check_resolution=_CHECK_RESOLUTION,
)

WGAN_GP = Family(
    name="wgan-gp",
    summary="WGAN with gradient penalty (λ = 10) on interpolates, Adam β=(0, 0.9), no BatchNorm in the critic",
    config="gancli_plugin_wgan.config:WGANGPConfig",
    build="gancli_plugin_wgan.model:build_wgan_gp",
    data_kinds=("points", "image"),
    paper="Gulrajani et al. 2017, arXiv:1704.00028",
    check_settings=_CHECK_SETTINGS,
    check_resolution=_CHECK_RESOLUTION,
)
