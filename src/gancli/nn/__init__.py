"""Layers that families share; everything in ``__all__`` is public plugin API (docs/plugins.md).

One module per job: spectral normalization (spectral), conditional BatchNorm and the
projection head (conditional), self-attention (attention), residual blocks (resblocks),
initialisation schemes (initialization), equalized learning rate, pixel norm, minibatch
standard deviation and fade-in (equalized), the StyleGAN layers (style), the Improved-GAN
layers (improved) and BatchNorm statistics (norms).
"""

from gancli.nn.attention import SelfAttention
from gancli.nn.conditional import ClassProjection, ConditionalBatchNorm2d, ProjectionHead
from gancli.nn.equalized import (
    EqualizedConv2d,
    EqualizedLinear,
    MinibatchStdDev,
    PixelNorm,
    downscale2d,
    fade_in,
    upscale2d,
)
from gancli.nn.improved import (
    MinibatchDiscrimination,
    VirtualBatchNorm,
    joint_vbn_reference,
    recording_vbn_reference,
)
from gancli.nn.initialization import INIT_SCHEMES, init_weights
from gancli.nn.norms import batch_norm_layers, has_batch_norm, standing_statistics
from gancli.nn.resblocks import DiscriminatorResBlock, GeneratorResBlock
from gancli.nn.spectral import (
    SNConv2d,
    SNConvTranspose2d,
    SNEmbedding,
    SNLinear,
    apply_spectral_norm,
    is_spectrally_normalized,
    reestimate_spectral_norm,
    remove_spectral_norm,
    spectral_norm,
    spectral_norm_estimate,
    unnormalized_weight,
)
from gancli.nn.style import (
    AdaIN,
    Blur,
    BlurDownsample,
    BlurUpsample,
    ConstantInput,
    MappingNetwork,
    NoiseInjection,
)

__all__ = [
    "AdaIN", "Blur", "BlurDownsample", "BlurUpsample", "ClassProjection", "ConditionalBatchNorm2d", "ConstantInput",
    "DiscriminatorResBlock", "EqualizedConv2d", "EqualizedLinear", "GeneratorResBlock", "INIT_SCHEMES",
    "MappingNetwork", "MinibatchDiscrimination", "MinibatchStdDev", "NoiseInjection", "PixelNorm",
    "ProjectionHead", "SNConv2d", "SNConvTranspose2d", "SNEmbedding", "SNLinear", "SelfAttention",
    "VirtualBatchNorm", "apply_spectral_norm", "batch_norm_layers", "downscale2d", "fade_in",
    "has_batch_norm", "init_weights", "is_spectrally_normalized", "joint_vbn_reference",
    "recording_vbn_reference", "reestimate_spectral_norm", "remove_spectral_norm", "spectral_norm",
    "spectral_norm_estimate", "standing_statistics", "unnormalized_weight", "upscale2d",
]
