"""WGAN and WGAN-GP as gancli families. Importing this module is cheap (no torch)."""
from gancli.plugins import Family

# tiny networks for the conformance kit (gancli.testing.check_family); 16×16 images keep it fast
_CHECK_SETTINGS = {"z_dim": 8, "width": 8, "mlp_layers": 1}
_CHECK_RESOLUTION = 16

_WGAN_NOTES = (
    "arch=dcgan defaults to width 64 (the DCGAN-like nets of gan_cifar.py use DIM 128; set width=128 for them)",
    "the critic schedule of martinarjovsky/WassersteinGAN (100 critic steps for the first 25 G steps and every "
    "500th) is critic_schedule=reference, on in the wgan-fashion-mnist recipe; the paper's Algorithm 1 is the default",
)
_WGAN_GP_NOTES = (
    "Adam β1 = 0 as in the paper's Algorithm 1; the official toy and CIFAR scripts (gan_toy.py, gan_cifar.py, "
    "gan_cifar_resnet.py) use β1 = 0.5 (the grid25 recipe does)",
    "arch=dcgan defaults to width 64; the official gan_cifar.py / gan_mnist.py use DIM 128 (set width=128)",
    "gan_cifar_resnet.py draws 2 × 64 samples per generator step; gancli's G step uses one batch (--batch)",
    "for conditional models the critic's fakes take the real batch's labels, so the penalty's interpolates "
    "share a class (as the official conditional CIFAR-10 script does)",
)

WGAN = Family(
    name="wgan",
    summary="Wasserstein GAN: critic with weight clipping (c = 0.01), RMSprop, 5 critic steps per G step",
    config="gancli_plugin_wgan.config:WGANConfig",
    build="gancli_plugin_wgan.model:build_wgan",
    data_kinds=("points", "image"),
    paper="Arjovsky, Chintala & Bottou 2017, arXiv:1701.07875",
    check_settings=_CHECK_SETTINGS,
    check_resolution=_CHECK_RESOLUTION,
    recipes="gancli_plugin_wgan:recipes",
    notes=_WGAN_NOTES,
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
    recipes="gancli_plugin_wgan:recipes",
    notes=_WGAN_GP_NOTES,
)
