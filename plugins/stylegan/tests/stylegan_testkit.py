"""Tiny StyleGAN models, data and Steps shared by the stylegan tests."""
from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import torch

from gancli import config as cfg
from gancli.data.images import TensorData
from gancli.data.spec import DataSpec
from gancli.objective import Step
from gancli.train.loop import train
from gancli_plugin_stylegan.config import StyleGANConfig
from gancli_plugin_stylegan.model import build
from gancli_plugin_stylegan.stylegan2.config import StyleGAN2Config
from gancli_plugin_stylegan.stylegan2.model import build as build_stylegan2

# 4 channels at every resolution up to 32², an 8-wide two-layer mapping network
TINY = {"z_dim": 8, "w_dim": 8, "mapping_layers": 2, "fmap_base": 64, "fmap_max": 4}


FAMILIES = ("stylegan", "stylegan2")


def tiny_config(family: str = "stylegan", **settings):
    model = StyleGAN2Config if family == "stylegan2" else StyleGANConfig
    return model(**{**TINY, **settings})


def spec(resolution: int = 32, channels: int = 1) -> DataSpec:
    return DataSpec(kind="image", channels=channels, resolution=resolution, name="tiny")


def build_tiny(resolution: int = 32, channels: int = 1, seed: int = 0, family: str = "stylegan", **settings):
    torch.manual_seed(seed)
    builder = build_stylegan2 if family == "stylegan2" else build
    return builder(tiny_config(family, **settings), spec(resolution, channels))


def image_data(n: int = 32, channels: int = 1, resolution: int = 32) -> TensorData:
    g = torch.Generator().manual_seed(0)
    values = torch.randint(0, 256, (n, channels, resolution, resolution), generator=g, dtype=torch.uint8)
    return TensorData(spec(resolution, channels), values)


def real_batch(n: int = 8, channels: int = 1, resolution: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, channels, resolution, resolution, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def make_step(G, D, real, *, seed: int = 0, phase_index: int = 0, index: int = 0, autocast=nullcontext,
              rank: int = 0, world_size: int = 1, batch_size=None, device=None, backward=None) -> Step:
    return Step(
        index=index, real=real, labels=None, G=G, D=D, z_dim=G.z_dim, num_classes=0, seed=seed,
        phase_index=phase_index, autocast=autocast, rank=rank, world_size=world_size, batch_size=batch_size,
        device=device, backward=backward,
    )


def randomize_noise_strengths(G, seed: int = 1) -> None:
    """Give every noise input a visible strength (they start at 0, where noise changes nothing)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise.strength"):
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)


def train_tiny(out: Path, *, steps: int, overrides: list[str] = (), data=None, resume: bool = False,
               family: str = "stylegan", **train_settings):
    settings = {"steps": steps, "batch_size": 8, "log_every": 1, "sample_every": 0, "checkpoint_every": steps,
                "seed": 0, **train_settings}
    run, family_config = cfg.resolve(
        family, flags={"data": {"source": "tiny"}, "train": settings},
        overrides=[f"{k}={v}" for k, v in TINY.items()] + list(overrides),
    )
    return train(run, family_config, out=out, data=data or image_data(), show_progress=False, resume=resume)
