"""``train.augment``: the trainer's side of discriminator augmentation (gancli.augment has the transforms).

Every image D sees through ``Step.discriminate`` is augmented, reals, fakes and the R1 pass alike, with
the Step's counter-based draws, so k processes augment exactly as one process with the whole batch.
With ADA the probability p follows the sign of D's outputs on reals: the statistic is summed over
the processes every ``ada_interval`` steps (all of them then hold the same p), logged as
``augment/p``, and saved per process with the resume state.
"""
from __future__ import annotations

import functools
from typing import Callable, Optional

import torch
from torch import Tensor

from gancli.errors import GancliError


@functools.lru_cache(maxsize=None)
def grid_sample_twice_differentiable() -> bool:
    """Whether this torch differentiates ``grid_sample`` twice (older releases lack the derivative of
    grid_sampler_2d_backward, which R1 through ADA's geometric transforms needs)."""
    x = torch.rand(1, 1, 4, 4, requires_grad=True)
    grid = torch.rand(1, 4, 4, 2) * 2 - 1
    try:
        out = torch.nn.functional.grid_sample(x, grid, align_corners=False)
        (g,) = torch.autograd.grad(out.square().sum(), x, create_graph=True)
        g.sum().backward()
    except RuntimeError:
        return False
    return True


class Augmentation:
    def __init__(self, kind: str, policy: Optional[str], controller=None) -> None:
        self.kind, self.policy, self.controller = kind, policy, controller

    @classmethod
    def for_run(cls, train) -> Optional["Augmentation"]:
        """The augmentation ``train`` (a TrainConfig) asks for, or None."""
        if train.augment == "none":
            return None
        if train.augment == "diffaugment":
            from gancli.augment import DIFFAUGMENT_POLICY

            policy = train.augment_policy or DIFFAUGMENT_POLICY
            unknown = [p for p in policy.split(",") if p.strip() not in ("color", "translation", "cutout")]
            if unknown:
                raise GancliError(f"train.augment_policy {policy!r}: DiffAugment's policy is a comma-separated "
                                  f"choice of color, translation and cutout")
            return cls("diffaugment", policy)
        from gancli.augment import ADA_PIPELINES, AdaController

        if (train.augment_policy or "bgc") not in ADA_PIPELINES:
            raise GancliError(f"train.augment_policy {train.augment_policy!r}: ADA's pipeline is one of "
                              f"{', '.join(ADA_PIPELINES)}")

        controller = AdaController(target=train.ada_target, interval=train.ada_interval, speed_kimg=train.ada_kimg,
                                   p=train.ada_p)
        return cls("ada", train.augment_policy or "bgc", controller)

    @property
    def p(self) -> float:
        return self.controller.p if self.controller is not None else 1.0

    def __call__(self, x: Tensor, step) -> Tensor:
        from gancli import augment

        if self.kind == "diffaugment":
            return augment.diffaugment(x, self.policy, draws=step)
        # a penalty's input (a leaf that requires grad: R1, WGAN-GP) is differentiated through the
        # augmentation twice, which ADA's geometric transforms can do only where torch has it
        if self.policy in ("geom", "bg", "bgc") and x.requires_grad and x.is_leaf and not grid_sample_twice_differentiable():
            raise GancliError(
                f"a gradient penalty through ADA's geometric transforms (pipeline {self.policy!r}) needs "
                f"grid_sample's second derivative, which torch {torch.__version__} lacks: upgrade torch (2.13 has "
                f"it), or use --set train.augment_policy=color (or blit) or --augment diffaugment")
        return augment.ada(x, self.controller.p, pipeline=self.policy, draws=step)

    @property
    def observe_real(self) -> Optional[Callable[[Tensor], None]]:
        return self.controller.observe if self.controller is not None else None

    def end_step(self, steps_done: int, batch_size: int, reduce_sum: Callable[[Tensor], Tensor]) -> None:
        if self.controller is not None:
            self.controller.end_step(steps_done, batch_size, reduce_sum=reduce_sum)

    def log_terms(self) -> dict[str, float]:
        return {"augment/p": float(self.p)} if self.controller is not None else {}

    def state_tensors(self) -> dict[str, Tensor]:
        return self.controller.state_tensors() if self.controller is not None else {}

    def load_state_tensors(self, tensors: dict[str, Tensor]) -> None:
        if self.controller is not None and tensors:
            self.controller.load_state_tensors(tensors)


def sum_over_processes(world: int, consensus) -> Callable[[Tensor], Tensor]:
    from gancli.train import distributed

    def reduce_sum(value: Tensor) -> Tensor:
        if world == 1:
            return value
        consensus.agree()
        return distributed.mean(value.to(consensus.device), world) * world

    return reduce_sum
