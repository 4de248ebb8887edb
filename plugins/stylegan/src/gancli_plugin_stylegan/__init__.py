"""StyleGAN (Karras, Laine & Aila 2019) as a gancli family. Importing this module is cheap (no torch)."""
from gancli.plugins import Family

FAMILY = Family(
    name="stylegan",
    summary="Style-based generator: mapping network z → w, AdaIN synthesis from a learned constant, noise inputs, "
    "style mixing, truncation in W; logistic loss with R1 (γ = 10), minibatch stddev D, EMA of G",
    config="gancli_plugin_stylegan.config:StyleGANConfig",
    build="gancli_plugin_stylegan.model:build",
    paper="Karras, Laine & Aila 2019, arXiv:1812.04948",
    # a tiny model for the conformance kit: 4 channels everywhere, an 8-wide mapping network
    check_settings={"z_dim": 8, "w_dim": 8, "mapping_layers": 2, "fmap_base": 16, "fmap_max": 4},
    check_resolution=32,
    recipes="gancli_plugin_stylegan:recipes",
)
