"""A small third-party-style family that uses every part of plugin contract 2.0.

tests/test_contract.py installs it as a fake distribution: a D phase with a gradient
penalty and n_critic 2, a lazy R1 pass ("Dreg"), a G phase that calls the generator's
sub-modules (mapping, then synthesis), a lazy G regularization pass ("Greg") through the
mapping network, optional spectral norm in D, optional growth (G and D gain a layer at
given steps) and per-process objective state that records each process's weights. For the
trainer's failure paths it can also make a loss non-finite or raise at a chosen step on a
chosen process, and freeze one D parameter.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import ClassVar, Optional

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from gancli import losses
from gancli.objective import GAN, AdversarialObjective, OptimizerSettings, Phase, Progress
from gancli.plugins import Family

FAMILY = Family(
    name="contract-toy",
    summary="a tiny family that exercises plugin contract 2.0",
    config="_contract_family:ToyConfig",
    build="_contract_family:build",
    data_kinds=("points",),
    check_settings={},
)

HOOK_CALLS: list[tuple[str, float]] = []  # (phase, gradient norm) seen by after_backward
FROZEN_SEEN: list[bool] = []  # requires_grad of the frozen D parameter in each D pass


class ToyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    train_defaults: ClassVar[dict] = {"batch_size": 8}

    z_dim: int = Field(4, ge=1)
    width: int = Field(16, ge=1)
    n_critic: int = Field(2, ge=1)
    gp: float = Field(1.0, ge=0)
    r1_gamma: float = Field(0.5, ge=0)
    r1_interval: int = Field(2, ge=1)
    g_reg_interval: int = Field(2, ge=1)
    spectral_norm: bool = False
    grow_at: list[int] = Field(default_factory=list)
    fail_sampling_on_main: bool = False
    record_hooks: bool = False
    nan_at: list[int] = Field(default_factory=list)  # steps whose D loss is NaN on process nan_rank
    nan_rank: int = 0
    fail_at: int = -1  # the step whose D loss raises on process fail_rank
    fail_rank: int = 1
    freeze_d_input_bias: bool = False  # D.inp.bias fixed at 0.25, requires_grad False
    d_loss_gain: float = 1.0  # the D loss times this: > 1 makes a large loss scale overflow its gradients


class Mapping(nn.Module):
    def __init__(self, z_dim: int, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(z_dim, width), nn.Tanh(), nn.Linear(width, width))

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class Synthesis(nn.Module):
    def __init__(self, width: int, dim: int) -> None:
        super().__init__()
        self.width = width
        self.extra = nn.ModuleList()
        self.out = nn.Linear(width, dim)

    def add_layer(self) -> None:
        self.extra.append(nn.Linear(self.width, self.width))

    def forward(self, w: Tensor) -> Tensor:
        for layer in self.extra:
            w = w + torch.tanh(layer(w))
        return self.out(w)


class ToyGenerator(nn.Module):
    def __init__(self, z_dim: int, width: int, dim: int, fail_sampling_on_main: bool) -> None:
        super().__init__()
        self.z_dim, self.num_classes = z_dim, 0
        self.mapping = Mapping(z_dim, width)
        self.synthesis = Synthesis(width, dim)
        self.fail_sampling_on_main = fail_sampling_on_main

    def forward(self, z: Tensor, y: Optional[Tensor] = None) -> Tensor:
        if self.fail_sampling_on_main and not self.training and os.environ.get("RANK", "0") == "0":
            raise RuntimeError("deliberate failure while sampling on the main process")
        return self.synthesis(self.mapping(z))


class ToyDiscriminator(nn.Module):
    def __init__(self, dim: int, width: int, spectral_norm: bool) -> None:
        super().__init__()
        wrap = nn.utils.parametrizations.spectral_norm if spectral_norm else (lambda m: m)
        self.wrap = wrap
        self.width = width
        self.inp = wrap(nn.Linear(dim, width))
        self.extra = nn.ModuleList()
        self.out = wrap(nn.Linear(width, 1))

    def add_layer(self) -> None:
        self.extra.append(self.wrap(nn.Linear(self.width, self.width)))

    def forward(self, x: Tensor, y: Optional[Tensor] = None, return_features: bool = False):
        h = torch.tanh(self.inp(x))
        for layer in self.extra:
            h = h + torch.tanh(layer(h))
        out = self.out(h).squeeze(1)
        return (out, h) if return_features else out


@dataclass
class ToyObjective(AdversarialObjective):
    grow_at: tuple = ()
    g_reg_interval: int = 2
    record_hooks: bool = False
    faults: Optional[ToyConfig] = None
    _networks: tuple = field(default=(), init=False, repr=False)

    def optimizers(self, G, D):
        self._networks = (G, D)
        return super().optimizers(G, D)

    def phases(self):
        phases = list(super().phases())
        phases.append(Phase("Greg", "G", self.g_regularization, interval=self.g_reg_interval, real="none"))
        return phases

    def d_loss(self, s):
        terms = super().d_loss(s)
        if self.faults.d_loss_gain != 1.0:
            terms = {**terms, "loss": terms["loss"] * self.faults.d_loss_gain}
        if s.index == self.faults.fail_at and s.rank == self.faults.fail_rank:
            raise RuntimeError(f"deliberate failure in d_loss on process {s.rank}")
        if s.index in self.faults.nan_at and s.rank == self.faults.nan_rank:
            terms = {**terms, "loss": terms["loss"] * float("nan")}
        if self.faults.freeze_d_input_bias:
            FROZEN_SEEN.append(s.D.inp.bias.requires_grad)
        return terms

    def g_loss(self, s):
        w = s.G.mapping(s.latents())  # sub-module calls: no wrapper forward in between
        fake = s.G.synthesis(w)
        return {"loss": losses.nonsaturating_g_loss(s.discriminate(fake))}

    def g_regularization(self, s):
        w = s.G.mapping(s.latents())
        penalty = w.square().mean()
        return {"wnorm": penalty.detach(), "loss": 0.01 * self.g_reg_interval * penalty}

    def grow(self, progress: Progress, G, D) -> bool:
        target = sum(1 for at in self.grow_at if progress.step >= at)
        added = False
        while len(G.synthesis.extra) < target:
            G.synthesis.add_layer()
            D.add_layer()
            added = True
        return added

    def stage(self, progress: Progress):
        if not self.grow_at:
            return None
        return f"{sum(1 for at in self.grow_at if progress.step >= at)} extra layers"

    def after_backward(self, phase, module):
        if self.record_hooks:
            grads = [p.grad for p in module.parameters() if p.grad is not None]
            norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
            HOOK_CALLS.append((phase.name, float(norm)))

    def state_tensors(self):
        state = dict(super().state_tensors())
        if self._networks:
            G, D = self._networks
            values = [t.detach().float().flatten().cpu() for m in (G, D) for t in [*m.parameters(), *m.buffers()]]
            state["weights"] = torch.cat(values)  # this process's weights, to compare processes
        if self.record_hooks:  # the summed gradients' norms this process saw, to compare processes
            state["gradient_norms"] = torch.tensor([norm for _, norm in HOOK_CALLS], dtype=torch.float64)
        return state

    def load_state_tensors(self, tensors):
        super().load_state_tensors({k: v for k, v in tensors.items() if k not in ("weights", "gradient_norms")})


def build(config: ToyConfig, spec) -> GAN:
    G = ToyGenerator(config.z_dim, config.width, spec.dim, config.fail_sampling_on_main)
    D = ToyDiscriminator(spec.dim, config.width, config.spectral_norm)
    if config.freeze_d_input_bias:
        with torch.no_grad():
            D.inp.bias.fill_(0.25)
        D.inp.bias.requires_grad_(False)
    objective = ToyObjective(
        loss="nonsaturating", optimizer=OptimizerSettings(lr_g=1e-3, lr_d=1e-3, betas=(0.5, 0.99)),
        n_critic=config.n_critic, gradient_penalty=config.gp, r1_gamma=config.r1_gamma,
        r1_interval=config.r1_interval, reuse_fake=False, grow_at=tuple(config.grow_at),
        g_reg_interval=config.g_reg_interval, record_hooks=config.record_hooks, faults=config,
    )
    return GAN(G, D, objective)
