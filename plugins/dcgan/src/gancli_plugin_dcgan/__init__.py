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
)
