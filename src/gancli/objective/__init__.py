"""What a family's ``build`` returns, and how the trainer drives it (plugin API 2).

A :class:`GAN` bundles a generator, a discriminator and an :class:`Objective`. The
trainer owns the loop (data, devices, precision, gradient synchronisation, EMA,
checkpoints); the objective describes one training iteration as a list of
:class:`Phase` objects, the way stylegan2-ada's loop runs Gmain/Greg/Dmain/Dreg:

* each phase trains one network ("G" or "D") with its own loss function, runs at
  iterations where ``step % interval == 0`` and ``repeats(step)`` times when it runs
  (a D-step schedule); every repeat is one optimizer step over ``train.accumulate``
  micro-batches, with a fresh real batch, the last one, or none;
* the hooks: ``optimizers(G, D)``, ``grow(progress, G, D)`` (networks that gain layers),
  ``begin_step(progress, G, D)`` (schedules: learning rates, fade-in α), ``batch_size(progress)``
  (a batch that follows a schedule), ``after_backward(phase, module)`` (between backward and
  the optimizer step: clipping, ``nan_to_num``), a phase's ``after_step`` (weight clipping,
  running averages), ``before_sampling(generator, is_ema=...)`` (standing statistics), and
  ``state_tensors``/``load_state_tensors`` (objective state, saved per process).

:class:`AdversarialObjective` is the configurable objective most families use as it is:
one adversarial loss plus optional regularizers.

The package keeps its parts apart: ``step`` (what a loss sees), ``phases``, ``base`` (the
hooks), ``optimizers`` (construction and schedules), ``adversarial`` and ``labelled_pool``;
the names of the plugin API are importable from here.
"""
from __future__ import annotations

from gancli.objective.adversarial import AdversarialObjective
from gancli.objective.base import GAN, Objective
from gancli.objective.labelled_pool import LabelledPool
from gancli.objective.optimizers import OptimizerSettings, lazy_regularization, linear_lr_decay, make_optimizer
from gancli.objective.phases import Network, Phase, RealBatch, check_phases
from gancli.objective.step import Progress, Step

__all__ = [
    "GAN", "Objective", "AdversarialObjective", "Phase", "Step", "Progress", "OptimizerSettings", "make_optimizer",
    "lazy_regularization", "linear_lr_decay", "LabelledPool", "check_phases", "Network", "RealBatch",
]
