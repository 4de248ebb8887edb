"""Layers that families share (improved-GAN layers live in gancli.nn.improved)."""

from gancli.nn.equalized import (
    EqualizedConv2d,
    EqualizedLinear,
    MinibatchStdDev,
    PixelNorm,
    downscale2d,
    fade_in,
    upscale2d,
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
from gancli.nn.initialization import INIT_SCHEMES, init_weights
from gancli.nn.conditional import ConditionalBatchNorm2d, ProjectionHead
from gancli.nn.attention import SelfAttention
from gancli.nn.resblocks import DiscriminatorResBlock, GeneratorResBlock
