"""A test-only family: sagan whose objective also saves this process's spectral-norm vectors.

The trainer saves the networks of the main process only; per-process objective state is
saved for every process. This probe puts G's and D's u and v there (sagan normalizes
both), so that a test can compare them across processes. It is registered only inside the
multi-process test.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from gancli.objective import AdversarialObjective
from gancli.plugins import Family
from gancli_plugin_sngan.model import build_sagan

FAMILY = Family(
    name="sngan-rank-probe",
    summary="sagan, saving every process's spectral-norm vectors (tests only)",
    config="gancli_plugin_sngan.config:SAGANConfig",
    build="_sngan_rank_probe:build",
)


@dataclass
class RankProbeObjective(AdversarialObjective):
    loss: str = "hinge"
    generator: nn.Module | None = field(default=None, repr=False)
    discriminator: nn.Module | None = field(default=None, repr=False)

    def state_tensors(self):
        state = super().state_tensors()
        for prefix, network in (("G", self.generator), ("D", self.discriminator)):
            for name, tensor in network.state_dict().items():
                if name.endswith(("._u", "._v")):
                    state[f"sn.{prefix}.{name}"] = tensor.detach().clone()
        return state


def build(config, spec):
    gan = build_sagan(config, spec)
    plain = gan.objective
    gan.objective = RankProbeObjective(
        optimizer=plain.optimizer, n_critic=plain.n_critic, lr_decay_steps=plain.lr_decay_steps,
        generator=gan.generator, discriminator=gan.discriminator,
    )
    return gan
