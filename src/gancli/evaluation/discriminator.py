"""The discriminator as a classifier: semi-supervised accuracy and a linear probe on its features.

Works for any family whose D follows the project convention `D(x, y=None, return_features=False)`:
logits (N,) or (N, K), and `(logits, features)` with return_features=True. The GAN is rebuilt with the
family's own builder and the checkpoint's `D.*` tensors; no training code is imported.
"""
from __future__ import annotations

from contextlib import nullcontext
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from gancli.errors import GancliError

PROBE_STEPS = 300
PROBE_L2 = 1e-4
BATCH_SIZE = 500


def load_discriminator(ckpt, device: str | torch.device = "cpu", *, averaged: bool = False
                       ) -> Optional[tuple[torch.nn.Module, Any]]:
    """(D in eval mode, plugin record), or None when the checkpoint holds no discriminator (an export).

    ``averaged``: the Polyak average of D (``D_ema.*``, train.ema_discriminator) instead; None when absent.
    """
    from gancli.pipeline import rebuild_gan

    prefix = "D_ema." if averaged else "D."
    if not ckpt.has(prefix):
        return None
    gan, record = rebuild_gan(ckpt, "building the discriminator")
    discriminator = gan.discriminator
    try:
        discriminator.load_state_dict(ckpt.tensors(prefix), strict=True)
    except RuntimeError as exc:
        raise GancliError(
            f"{ckpt.path}: discriminator weights do not fit {record.label} ({str(exc).splitlines()[0]})"
        ) from None
    return discriminator.to(device).eval().requires_grad_(False), record


def _as_input(values: Tensor, kind: str) -> Tensor:
    from gancli.data.images import to_float

    return to_float(values) if kind == "image" else values.float()


@torch.no_grad()
def discriminator_outputs(D, record, values: Tensor, kind: str, *, features: bool, device) -> Tensor:
    """D's logits (features=False) or flattened features (features=True) for every example, on the CPU.

    `record` (the plugin's registry row, or None for a D built by hand) names the plugin in errors."""
    from gancli.metrics.image_batches import batch_slices
    from gancli.plugins import PluginFault

    action = "computing discriminator features" if features else "running the discriminator"
    outputs = []
    for rows in batch_slices(len(values), BATCH_SIZE):
        x = _as_input(values[rows], kind).to(device)
        with PluginFault(record, action) if record is not None else nullcontext():
            out = D(x, None, return_features=True)[1].flatten(1) if features else D(x, None)
        outputs.append(out.float().cpu())
    return torch.cat(outputs)


@torch.no_grad()
def discriminator_accuracy(D, record, values: Tensor, labels: Tensor, kind: str, num_classes: int, device) -> Optional[float]:
    """Share of examples whose argmax D logit is their label, when D is a K-class classifier (semi-supervised
    GAN, K = num_classes); None for any other discriminator (one logit, or one that needs labels)."""
    try:
        trial = D(_as_input(values[:2], kind).to(device), None)
    except Exception:  # e.g. a conditional (projection) D refuses y=None: it is not a classifier
        return None
    if not isinstance(trial, Tensor) or trial.dim() != 2 or trial.shape[1] != num_classes or num_classes < 2:
        return None
    logits = discriminator_outputs(D, record, values, kind, features=False, device=device)
    return float((logits.argmax(dim=1) == labels).double().mean())


def fit_logistic_regression(features: Tensor, labels: Tensor, num_classes: int, *, steps: int, l2: float) -> tuple[torch.nn.Linear, int]:
    """Multinomial logistic regression by full-batch L-BFGS from zero weights (deterministic), float64.

    Returns the fitted layer and the L-BFGS iterations used (it stops early once converged).
    """
    layer = torch.nn.Linear(features.shape[1], num_classes, dtype=torch.float64)
    torch.nn.init.zeros_(layer.weight)
    torch.nn.init.zeros_(layer.bias)
    optimizer = torch.optim.LBFGS(
        layer.parameters(), lr=1.0, max_iter=steps, history_size=20, line_search_fn="strong_wolfe",
        tolerance_grad=1e-9, tolerance_change=1e-12,
    )

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(layer(features), labels) + l2 * layer.weight.square().sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    iterations = int(optimizer.state[layer.weight].get("n_iter", steps))
    return layer, iterations


def linear_probe(
    D, record, train_values: Tensor, train_labels: Tensor, test_values: Tensor, test_labels: Tensor, kind: str, *,
    device, steps: int = PROBE_STEPS, l2: float = PROBE_L2,
) -> dict:
    """Test accuracy of a linear classifier on D's frozen features (the DCGAN paper's use of D).

    Features are standardised with the train set's mean and std; the classifier is a multinomial logistic
    regression with a small L2 penalty, fitted by L-BFGS.
    """
    train_features = discriminator_outputs(D, record, train_values, kind, features=True, device=device).double()
    test_features = discriminator_outputs(D, record, test_values, kind, features=True, device=device).double()
    mean, std = train_features.mean(dim=0), train_features.std(dim=0).clamp_min(1e-8)
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    layer, iterations = fit_logistic_regression((train_features - mean) / std, train_labels, num_classes, steps=steps, l2=l2)
    with torch.no_grad():
        train_accuracy = (layer((train_features - mean) / std).argmax(dim=1) == train_labels).double().mean()
        test_accuracy = (layer((test_features - mean) / std).argmax(dim=1) == test_labels).double().mean()
    return {
        "accuracy": float(test_accuracy),
        "train_accuracy": float(train_accuracy),
        "train_count": len(train_labels),
        "test_count": len(test_labels),
        "feature_dim": int(train_features.shape[1]),
        "classifier": "multinomial logistic regression on standardised features, full-batch L-BFGS from zeros",
        "max_steps": steps,
        "steps_used": iterations,
        "l2": l2,
    }
