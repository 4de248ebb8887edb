"""StyleGAN (Karras, Laine & Aila 2019) and StyleGAN2 (Karras et al. 2020) as gancli families. Importing this
module is cheap (no torch)."""
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

STYLEGAN2 = Family(
    name="stylegan2",
    summary="StyleGAN2 (config E/F): modulated convolutions with weight demodulation, skip G, residual D, "
    "[1,3,3,1] resampling, no growing; lazy R1 (every 16) and path-length regularization (every 4) with the "
    "lr/β correction for G and D; the stylegan family's mapping network, W space, style mixing and truncation",
    config="gancli_plugin_stylegan.stylegan2.config:StyleGAN2Config",
    build="gancli_plugin_stylegan.stylegan2.model:build",
    paper="Karras, Laine, Aittala, Hellsten, Lehtinen & Aila 2020, arXiv:1912.04958",
    # a tiny model for the conformance kit: 4 channels everywhere, an 8-wide two-layer mapping network, both
    # lazy regularizers every 2 steps so that the few steps the kit trains and resumes run them
    check_settings={"z_dim": 8, "w_dim": 8, "mapping_layers": 2, "fmap_base": 64, "fmap_max": 4,
                    "r1_interval": 2, "pl_interval": 2},
    check_resolution=16,
    recipes="gancli_plugin_stylegan:recipes",
    notes=(
        "style mixing draws its decision and crossover per image, not per minibatch as NVlabs' run_G, so that "
        "a batch split over processes or micro-batches draws the same numbers (as the stylegan family)",
        "the running path length pl_mean is updated from the mean length over all processes (NVlabs keep one "
        "per GPU); with train.accumulate > 1 it moves once per micro-batch, as NVlabs' rounds do",
        "the stage order is D, Dreg, G, Gpl (NVlabs: Gmain, Greg, Dmain, Dreg), so that the G step reuses the "
        "D step's fakes and their graph",
        "no fp16-specific paths (num_fp16_res, conv_clamp, weight pre-normalisation); bf16 autocast runs as is",
        "not yet: stylegan2-ada's EMA ramp-up (ema_rampup), which needs the trainer's EMA to know the images seen",
    ),
)
