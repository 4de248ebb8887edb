"""Tiny BigGANs for the tests: 32 px, narrow, a few classes."""
from __future__ import annotations

import torch

from gancli.data.spec import DataSpec
from gancli_plugin_biggan.config import BigGANConfig
from gancli_plugin_biggan.model import build

NUM_CLASSES = 5
TINY = {"g_ch": 2, "d_ch": 2, "z_dim": 8, "shared_dim": 6, "standing_passes": 2}


def tiny_gan(arch: str = "biggan", channels: int = 3, resolution: int = 32, num_classes: int = NUM_CLASSES, **settings):
    torch.manual_seed(0)
    config = BigGANConfig(arch=arch, **{**TINY, **settings})
    spec = DataSpec(kind="image", channels=channels, resolution=resolution, num_classes=num_classes, name="tiny")
    return build(config, spec)
