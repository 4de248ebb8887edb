"""The original GAN (Goodfellow et al. 2014) as a gancli family. Importing this module is cheap."""
from gancli.plugins import Family

FAMILY = Family(
    name="gan",
    summary="Original GAN: MLP generator and discriminator for 2-D points and small flattened images; "
    "minimax or non-saturating loss, Improved-GAN options",
    config="gancli_plugin_gan.config:GANConfig",
    build="gancli_plugin_gan.model:build",
    data_kinds=("points", "image"),
    paper="Goodfellow et al. 2014, arXiv:1406.2661; Salimans et al. 2016, arXiv:1606.03498",
    check_settings={"z_dim": 4, "g_hidden": 16, "d_hidden": 16},
    check_resolution=8,
    recipes="gancli_plugin_gan:recipes",
    notes=(
        "minibatch discrimination without the weight normalization of openai/improved-gan's layers",
        "feature matching takes E f(x) on an independent real batch by default, as the reference does "
        "(feature_matching_target=same_batch uses the batch D was trained on); the loss is the paper's squared L2 "
        "norm, the reference scripts use the mean absolute difference",
        "semi-supervised: the reference tests a Polyak average of D (decay 0.9999, from zero); gancli reports the "
        "raw D and, with train.ema_discriminator=true, the average (started from D's initial weights)",
    ),
)
