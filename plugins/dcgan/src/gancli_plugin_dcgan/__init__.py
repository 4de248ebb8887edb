"""DCGAN (Radford, Metz & Chintala 2015) as a gancli family. Importing this module is cheap."""
from gancli.plugins import Family

FAMILY = Family(
    name="dcgan",
    summary="Deep convolutional GAN: transposed-conv G with BatchNorm+ReLU, strided-conv D with LeakyReLU",
    config="gancli_plugin_dcgan.config:DCGANConfig",
    build="gancli_plugin_dcgan.model:build",
    paper="Radford et al. 2015, arXiv:1511.06434",
    check_settings={"ngf": 4, "ndf": 4, "z_dim": 8},
    check_resolution=16,
    recipes="gancli_plugin_dcgan:recipes",
    notes=(
        "samples use BatchNorm's running statistics (eval mode) by default; pytorch/examples samples with batch "
        "statistics: gancli sample --bn-mode batch",
        "with train.ema the EMA generator gets BatchNorm statistics of its own (a standing-statistics pass over 16 "
        "batches of 64 random latents at every sample grid and checkpoint) instead of the live G's",
    ),
)
