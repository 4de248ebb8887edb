"""One training iteration: the objective's phases in order, each repeat one optimizer step.

A repeat runs ``accumulate`` micro-batches of forward and backward, then the processes agree on
whether any loss was non-finite (before any of them branches on it), then one all-reduce of the
phase network's gradients (gancli.train.distributed says why the trainer owns it), the
``after_backward`` hook and the optimizer step.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import torch

from gancli.objective import Phase, Step
from gancli.train import distributed
from gancli.train.gradients import backward, optimizer_step


class PhaseRunner:
    def __init__(self, *, run, phases: list[Phase], G, D, objective, optimizers: dict, scaler, consensus,
                 accelerator, stream, d_ema, reduce_mean: Callable[[torch.Tensor], torch.Tensor],
                 augmentation=None) -> None:
        self.run, self.phases, self.G, self.D, self.objective = run, phases, G, D, objective
        self.modules = {"G": G, "D": D}
        self.optimizers, self.scaler, self.consensus = optimizers, scaler, consensus
        self.accelerator, self.stream, self.d_ema, self.reduce_mean = accelerator, stream, d_ema, reduce_mean
        self.augmentation = augmentation  # gancli.train.augmentation: what D sees is augmented first
        self.world, self.rank, self.device = accelerator.num_processes, accelerator.process_index, accelerator.device
        self.accumulate = run.train.accumulate
        self.z_dim = int(getattr(G, "z_dim"))
        self.num_classes = int(getattr(G, "num_classes", 0) or 0)
        self.draws = torch.Generator(device=self.device)
        self.trainable: dict[str, list] = {}
        self.last_terms: dict[str, dict[str, torch.Tensor]] = {}  # the latest loss terms of each phase, for logging
        self.refresh_trainable()

    def refresh_trainable(self) -> None:
        """The parameters each optimizer steps (again after the networks grew)."""
        self.trainable = {name: [p for p in m.parameters() if p.requires_grad] for name, m in self.modules.items()}

    def iteration(self, step: int, batch: int) -> Optional[tuple[Phase, dict]]:
        """Run every due phase; the (phase, terms) where a non-finite value stopped the iteration, or None."""
        accumulate = self.accumulate
        caches: list[dict[str, Any]] = [{} for _ in range(accumulate)]
        chunks = None
        for index, phase in enumerate(self.phases):
            if not phase.due(step):
                continue
            repeats = phase.times(step)
            for repeat in range(repeats):
                if phase.real == "new" or (phase.real == "last" and chunks is None):
                    real, labels = self.stream.next(batch)
                    chunks = list(zip(real.chunk(accumulate), _chunks(labels, accumulate)))
                phase_chunks = chunks if phase.real != "none" else [(None, None)] * accumulate
                s, terms, outcome = self._repeat(step, phase, index, repeat, repeats, phase_chunks, caches, batch)
                self.last_terms[phase.log_prefix] = terms
                if outcome == "nonfinite":
                    return phase, terms
                if phase.after_step is not None:
                    phase.after_step(s)
                if self.d_ema is not None and phase.network == "D":
                    self.d_ema.update(self.D, step=step, batch_size=batch)
        return None

    def _repeat(self, step: int, phase: Phase, index: int, repeat: int, repeats: int, chunks, caches, batch: int):
        """One optimizer step of ``phase``: forward/backward over the micro-batches, sync, step.

        Returns (the last Step, the loss terms, the outcome): "stepped"; "overflow" (the scaler
        skipped the step and backed its scale off, as it does to find its level); or "nonfinite"
        (a loss on some process, or without a scaler a gradient, was not finite: no process stepped).
        """
        module, optimizer = self.modules[phase.network], self.optimizers[phase.network]
        accumulate, world = self.accumulate, self.world
        frozen_d = [(p, p.requires_grad) for p in self.D.parameters()] if phase.network == "G" else []
        for p, _ in frozen_d:
            p.requires_grad_(False)  # D's weight gradients are never needed in a G phase
        optimizer.zero_grad(set_to_none=True)
        micro_batch = batch // (world * accumulate)
        totals: dict[str, torch.Tensor] = {}
        loss_bad = torch.zeros((), dtype=torch.bool, device=self.device)
        s = None

        def backward_share(loss: torch.Tensor) -> None:  # a micro-batch's share of the step's gradient
            backward(loss / accumulate if accumulate > 1 else loss, self.scaler)

        try:
            for micro, (real, labels) in enumerate(chunks):
                s = Step(
                    index=step, real=real, labels=labels, G=self.G, D=self.D, z_dim=self.z_dim,
                    num_classes=self.num_classes, seed=self.run.train.seed, phase=phase.name, phase_index=index,
                    repeat=repeat, repeats=repeats, micro=micro, accumulate=accumulate, rank=self.rank,
                    world_size=world, images_seen=self.stream.consumed, batch_size=micro_batch, device=self.device,
                    autocast=self.accelerator.autocast, generator=self.draws, cache=caches[micro],
                    reduce_mean=self.reduce_mean, augment=self.augmentation,
                    observe_real=self.augmentation.observe_real if self.augmentation is not None else None,
                    backward=backward_share,
                )
                terms = phase.loss(s)
                loss = terms["loss"]
                loss_bad |= ~torch.isfinite(loss.detach())
                backward_share(loss)
                for key, value in terms.items():
                    value = value.detach()
                    totals[key] = totals[key] + value if key in totals else value
        finally:
            for p, wanted in frozen_d:
                p.requires_grad_(wanted)  # each parameter's own flag: a family may freeze some on purpose
        if accumulate > 1:
            totals = {k: v / accumulate for k, v in totals.items()}
        if self.consensus.agree(nonfinite=loss_bad).nonfinite:
            optimizer.zero_grad(set_to_none=True)
            return s, totals, "nonfinite"
        distributed.all_reduce_gradients(self.trainable[phase.network], world)
        stepped = optimizer_step(
            optimizer, self.trainable[phase.network], scaler=self.scaler,
            after_backward=lambda: self.objective.after_backward(phase, module),
        )
        if stepped:
            return s, totals, "stepped"
        # the gradients were averaged first, so every process sees the same ones and decides alike
        if self.scaler is not None:
            return s, totals, "overflow"
        optimizer.zero_grad(set_to_none=True)
        return s, totals, "nonfinite"


def _chunks(labels: Optional[torch.Tensor], parts: int) -> list[Optional[torch.Tensor]]:
    return list(labels.chunk(parts)) if labels is not None else [None] * parts
