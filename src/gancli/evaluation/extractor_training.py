"""`gancli eval train-extractor`: train the small domain classifier whose features `--extractor PATH` uses."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

from gancli.errors import GancliError

DEFAULT_STEPS = 1200
DEFAULT_BATCH_SIZE = 128
DEFAULT_RESOLUTION = 32
DEFAULT_WIDTHS = (16, 32, 64)
DEFAULT_FEATURE_DIM = 128
DEFAULT_LEARNING_RATE = 2e-3


@dataclass(frozen=True)
class ExtractorTraining:
    path: Path
    name: str
    sha256: str
    test_accuracy: float
    train_count: int
    test_count: int
    num_classes: int
    seconds: float

    def as_dict(self) -> dict:
        return {**asdict(self), "path": str(self.path)}


def train_domain_extractor(
    data: str,
    out: str | Path,
    *,
    steps: int = DEFAULT_STEPS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    seed: int = 0,
    resolution: int = DEFAULT_RESOLUTION,
    widths: tuple[int, ...] = DEFAULT_WIDTHS,
    feature_dim: int = DEFAULT_FEATURE_DIM,
    learning_rate: float = DEFAULT_LEARNING_RATE,
    name: Optional[str] = None,
    test_split: str = "test",
    log: Optional[Callable[[str], None]] = None,
) -> ExtractorTraining:
    """Train a SmallCNN on the labelled train split of `data`, measure it on `test_split` (or on a seeded
    held-out part when the data has no splits), and write it to `out` with its test accuracy, training data
    and settings in the metadata. Same data, settings and seed: same file."""
    import torch

    import gancli
    from gancli.evaluation.inputs import labelled_train_test
    from gancli.metrics._files import sha256_of_file
    from gancli.metrics.classifier import save_extractor, train_extractor

    say = log or (lambda message: None)
    if steps <= 0:
        raise GancliError(f"--steps must be positive, got {steps}")
    if batch_size <= 0:
        raise GancliError(f"--batch must be positive, got {batch_size}")
    divisor = 2 ** len(widths)
    if resolution <= 0 or resolution % divisor:
        raise GancliError(f"--resolution must be a positive multiple of {divisor} (the classifier halves it {len(widths)} times), got {resolution}")
    if test_split not in ("train", "test"):
        raise GancliError(f"the test split must be train or test, got {test_split!r}")
    train_images, train_labels, test_images, test_labels, how = labelled_train_test(
        data, test_split, resolution=None, channels=None, seed=seed
    )
    if train_images.dim() != 4:
        raise GancliError(f"{data} holds points, not images; a feature extractor is for image data")
    num_classes = int(train_labels.max()) + 1
    if len(train_labels.unique()) < 2:
        raise GancliError(f"{data} has one class only; the extractor is a classifier and needs at least 2")
    if int(test_labels.max()) >= num_classes:
        raise GancliError(f"{data}: the test examples have classes the train examples lack")
    name = name or f"{Path(data).stem if Path(data).expanduser().exists() else data.replace('/', '-')}-cnn"
    say(
        f"training extractor {name!r} on {len(train_labels)} images of {data} ({num_classes} classes, {steps} steps, "
        f"batch {batch_size}, {torch.get_num_threads()} threads); testing on {len(test_labels)}"
    )
    started = time.perf_counter()
    model, accuracy = train_extractor(
        train_images, train_labels.numpy(), test_images, test_labels.numpy(), steps=steps, batch_size=batch_size, seed=seed,
        learning_rate=learning_rate, resolution=resolution, widths=tuple(widths), feature_dim=feature_dim,
        progress=lambda step, loss: say(f"step {step}/{steps}: loss {loss:.4f}"),
    )
    seconds = time.perf_counter() - started
    meta = {
        "name": name,
        "test_accuracy": accuracy,
        "training_data": {"source": data, "split": "train", "count": len(train_labels)},
        "test_data": {"source": data, "split": how["test"], "count": len(test_labels)},
        "training": {"steps": steps, "batch_size": batch_size, "seed": seed, "learning_rate": learning_rate,
                     "optimizer": "adam, cosine decay"},
        "gancli_version": gancli.__version__,
        "torch_version": torch.__version__,
    }
    path = save_extractor(model, out, meta)
    return ExtractorTraining(
        path=Path(path), name=name, sha256=sha256_of_file(path), test_accuracy=accuracy,
        train_count=len(train_labels), test_count=len(test_labels), num_classes=num_classes, seconds=seconds,
    )
