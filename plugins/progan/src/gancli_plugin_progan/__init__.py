"""Progressive GAN (Karras et al. 2018) as a gancli family. Importing this module is cheap (no torch)."""
from gancli.plugins import Family

FAMILY = Family(
    name="progan",
    summary="Progressive GAN: G and D grown from 4×4 by fading in new blocks; equalized LR, pixel norm, "
    "minibatch stddev, WGAN-GP with drift",
    config="gancli_plugin_progan.config:ProGANConfig",
    build="gancli_plugin_progan.model:build",
    paper="Karras, Aila, Laine & Lehtinen 2018, arXiv:1710.10196",
    # tiny networks for the conformance kit; starting at 8×8 of a 16×16 target gives G and D a
    # grown block each without growing during the kit's three steps (see the tests for growth)
    check_settings={"z_dim": 8, "fmap_base": 32, "fmap_max": 8, "start_resolution": 8, "mbstd_group_size": 4},
    check_resolution=16,
    recipes="gancli_plugin_progan:recipes",
)
