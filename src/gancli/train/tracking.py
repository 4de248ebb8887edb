"""``train.log_with``: experiment trackers through accelerate (TensorBoard, Weights & Biases, MLflow, Aim).

Every metrics line (loss terms, learning rates, img/s, kimg) goes to each tracker as scalars at its
step, each sample grid as an image, and the run's settings as hyperparameters. Only the main
process logs (accelerate's trackers live there). RUN/metrics.jsonl stays the always-on record;
the trackers are optional extras: ``pip install 'gancli[tensorboard]'`` and so on.
TensorBoard's event files are written under RUN/trackers/ (``tensorboard --logdir RUN/trackers``).
"""
from __future__ import annotations

import importlib.util
from typing import Any, Sequence

from gancli.errors import GancliError

# tracker name → the module it needs, and the extra that installs it
TRACKERS = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow", "aim": "aim"}
PROJECT = "gancli"  # the W&B / MLflow / Aim project; TensorBoard's folder under RUN/trackers


def check_trackers(names: Sequence[str]) -> list[str]:
    """The trackers asked for, each known and installed, or one clear error."""
    chosen: list[str] = []
    for name in names:
        if name not in TRACKERS:
            raise GancliError(f"unknown tracker {name!r} in --log-with; choose from {', '.join(TRACKERS)}")
        if importlib.util.find_spec(TRACKERS[name]) is None:
            raise GancliError(f"--log-with {name} needs the {TRACKERS[name]} package: pip install 'gancli[{name}]'")
        if name not in chosen:
            chosen.append(name)
    return chosen


def hyperparameters(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """The run's settings as one flat level of numbers, strings and booleans (what TensorBoard's hparams take)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(hyperparameters(value, f"{name}."))
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        else:
            flat[name] = str(value)
    return flat


class Trackers:
    def __init__(self, accelerator, names: Sequence[str], *, run, run_name: str) -> None:
        self.accelerator, self.names = accelerator, list(names)
        if self.names:
            accelerator.init_trackers(
                PROJECT, config=hyperparameters(run.model_dump(mode="json")),
                init_kwargs={"wandb": {"name": run_name}, "aim": {"run_name": run_name}} if self.names else {},
            )

    def scalars(self, values: dict[str, float], step: int) -> None:
        if self.names:
            self.accelerator.log(values, step=step)

    def image(self, name: str, image, step: int) -> None:
        """One PIL image (a sample grid) on every tracker that takes images."""
        if not self.names:
            return
        import numpy as np

        pixels = np.asarray(image.convert("RGB"))
        for tracker in self.accelerator.trackers:
            kind = getattr(tracker, "name", "")
            if kind == "tensorboard":
                tracker.writer.add_image(name, pixels, global_step=step, dataformats="HWC")
                tracker.writer.flush()
            elif kind == "wandb":
                import wandb

                tracker.log({name: wandb.Image(pixels)}, step=step)
            elif kind == "mlflow":
                import mlflow

                mlflow.log_image(pixels, f"{name}/step-{step:06d}.png")
            elif kind == "aim":
                from aim import Image

                tracker.writer.track(Image(image), name=name, step=step)

    def close(self) -> None:
        for tracker in self.accelerator.trackers if self.names else ():
            tracker.finish()
