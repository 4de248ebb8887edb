"""``train.augment``: the trainer's side of discriminator augmentation (gancli.augment has the transforms).

Every image D sees through ``Step.discriminate`` is augmented, reals, fakes and the R1 pass alike, with
the Step's counter-based draws, so k processes augment exactly as one process with the whole batch.
With ADA the probability p follows the sign of D's outputs on reals: the statistic is summed over
the processes every ``ada_interval`` steps (all of them then hold the same p), logged as
``augment/p``, and saved per process with the resume state.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor


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

            return cls("diffaugment", train.augment_policy or DIFFAUGMENT_POLICY)
        from gancli.augment import AdaController

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
