"""Support for the reliability tests: tiny data, a fake installed plugin that fails on request, hand-made files."""
from __future__ import annotations

import json
import os
import struct
import sys
import textwrap
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

FAKE_DISTRIBUTION = "gancli-plugin-faulty"
FAKE_MODULE = "gancli_fake_faulty"

# A third-party plugin as pip would install it: a package plus a .dist-info folder with its entry points.
FAKE_PACKAGE_INIT = '''
"""A 2-D points family for tests: it breaks on request at any plugin call site. Importing it is cheap."""
from gancli.plugins import Family

FAMILY = Family(
    name="faulty",
    summary="test family that fails on request",
    config="gancli_fake_faulty.model:Config",
    build="gancli_fake_faulty.model:build",
    data_kinds=("points",),
)
SECOND = Family(
    name="faulty2",
    summary="the same family under a second name",
    config="gancli_fake_faulty.model:Config",
    build="gancli_fake_faulty.model:build",
    data_kinds=("points",),
)
'''

FAKE_PACKAGE_MODEL = '''
from dataclasses import dataclass
from typing import Any, ClassVar, Optional

import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from gancli.objective import GAN, AdversarialObjective, OptimizerSettings


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resume_may_change: ClassVar[frozenset] = frozenset({"lr", "nan_steps", "nan_side", "fail_in", "fail_at",
                                                        "fail_batch", "poison_step"})

    hidden: int = 8
    z_dim: int = 2
    lr: float = 1e-3
    nan_steps: list[int] = []       # steps whose loss gets a NaN term named "penalty"
    nan_side: str = "d"             # "d" or "g"
    fail_in: str = ""               # a call site that raises RuntimeError (build, d_loss, sample, ...)
    fail_at: int = 1                # the step at which per-step call sites raise
    fail_batch: int = 5             # with fail_in="sample": the generator raises for a batch of this size
    poison_step: int = -1           # after_g_step at this step writes a NaN into G's weights


def _fail(config, where, step=None):
    if config.fail_in == where and (step is None or step == config.fail_at):
        raise RuntimeError(f"deliberate failure in {where}")


class Generator(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.z_dim = config.z_dim
        self.num_classes = 0
        self.net = nn.Sequential(nn.Linear(config.z_dim, config.hidden), nn.ReLU(), nn.Linear(config.hidden, 2))

    def forward(self, z, y=None):
        if self.config.fail_in == "sample" and z.shape[0] == self.config.fail_batch:
            raise RuntimeError("deliberate failure in sample")
        return self.net(z)


class Discriminator(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(2, config.hidden), nn.LeakyReLU(0.2))
        self.head = nn.Linear(config.hidden, 1)

    def forward(self, x, y=None, return_features=False):
        h = self.body(x)
        out = self.head(h).flatten()
        return (out, h) if return_features else out


@dataclass
class FaultyObjective(AdversarialObjective):
    faults: Optional[Any] = None

    def optimizers(self, G, D):
        _fail(self.faults, "optimizers")
        return super().optimizers(G, D)

    def begin_step(self, progress, G, D):
        _fail(self.faults, "begin_step", progress.step)

    def _poisoned(self, terms, side, step):
        if self.faults.nan_side == side and step in self.faults.nan_steps:
            terms = dict(terms)
            nan = torch.tensor(float("nan"), device=terms["loss"].device)
            terms["penalty"] = nan
            terms["loss"] = terms["loss"] + nan
        return terms

    def d_loss(self, s):
        _fail(self.faults, "d_loss", s.index)
        return self._poisoned(super().d_loss(s), "d", s.index)

    def g_loss(self, s):
        _fail(self.faults, "g_loss", s.index)
        return self._poisoned(super().g_loss(s), "g", s.index)

    def after_d_step(self, s):
        _fail(self.faults, "after_d_step", s.index)
        super().after_d_step(s)

    def after_g_step(self, s):
        _fail(self.faults, "after_g_step", s.index)
        super().after_g_step(s)
        if s.index == self.faults.poison_step:
            with torch.no_grad():
                next(s.G.parameters()).fill_(float("nan"))

    def state_tensors(self):
        _fail(self.faults, "state_tensors")
        return {"calls": torch.tensor([1.0])}

    def load_state_tensors(self, tensors):
        _fail(self.faults, "load_state_tensors")


def build(config, spec):
    _fail(config, "build")
    settings = OptimizerSettings(lr_g=config.lr, lr_d=config.lr)
    objective = FaultyObjective(loss="nonsaturating", optimizer=settings, faults=config)
    return GAN(Generator(config), Discriminator(config), objective)
'''


def install_fake_plugin(site: Path, version: str = "1.2.3") -> Path:
    """Write the fake plugin into folder ``site`` as an installed distribution; put ``site`` on sys.path to use it."""
    package = site / FAKE_MODULE
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(textwrap.dedent(FAKE_PACKAGE_INIT))
    (package / "model.py").write_text(textwrap.dedent(FAKE_PACKAGE_MODEL))
    dist_info = site / f"{FAKE_DISTRIBUTION.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir(exist_ok=True)
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {FAKE_DISTRIBUTION}\nVersion: {version}\n"
    )
    (dist_info / "entry_points.txt").write_text(
        f"[gancli.plugins]\nfaulty = {FAKE_MODULE}:FAMILY\nfaulty2 = {FAKE_MODULE}:SECOND\n"
    )
    return site


def tiny_images(path: Path, *, n: int = 32, classes: int = 0, seed: int = 0) -> Path:
    """An .npz of n random 16×16 grey images (with labels 0..classes-1 when classes > 0)."""
    rng = np.random.default_rng(seed)
    arrays: dict[str, Any] = {"images": rng.integers(0, 256, size=(n, 16, 16), dtype=np.uint8)}
    if classes:
        arrays["labels"] = np.arange(n) % classes
    np.savez(path, **arrays)
    return path


TINY_DCGAN = ["--resolution", "16", "--set", "ngf=4", "--set", "ndf=4", "--set", "z_dim=8", "--batch", "8"]


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for a child gancli: one thread (the tests run side by side on small machines)."""
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "COLUMNS": "200"})
    env.update(extra)
    return env


def gancli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "gancli", *map(str, args)]


def safetensors_bytes(header: dict[str, Any], data: bytes = b"") -> bytes:
    """A safetensors file from a hand-written header: for files no well-behaved writer would make."""
    raw = json.dumps(header).encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw + data


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread, and test runs share small machines with other work."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
