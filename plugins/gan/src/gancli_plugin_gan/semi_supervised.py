"""Test-set accuracy of a semi-supervised GAN's discriminator (Salimans et al. 2016, section 5).

The K-class discriminator is the classifier: a test example's predicted class is the
argmax of its K logits (the implicit fake class plays no part in it).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Union

import torch
from torch import Tensor

from gancli.errors import GancliError


def _labelled_batches(data, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
    from gancli.data.images import TensorData, to_float

    if isinstance(data, TensorData):
        if data.labels is None:
            raise GancliError(f"{data.spec.name} has no labels; accuracy needs a labelled test set")
        for start in range(0, len(data), batch_size):
            values = data.values[start : start + batch_size]
            x = values.float() if data.spec.kind == "points" else to_float(values)
            yield x, data.labels[start : start + batch_size]
        return
    if not getattr(data, "has_labels", False):
        raise GancliError(f"{data.spec.name} has no labels; accuracy needs a labelled test set")
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=False)
    for images, labels in loader:
        yield to_float(images), labels


@torch.no_grad()
def semi_supervised_accuracy(
    checkpoint_path: Union[str, Path],
    data_source: str,
    split: str = "test",
    *,
    batch_size: int = 1000,
    device: str = "cpu",
) -> float:
    """Share of the labelled examples of ``data_source`` (``split``) that D classifies correctly.

    Loads the discriminator weights ``D.*`` of a ``gan`` checkpoint trained with
    ``semi_supervised=true``; unlabelled examples (label −1) are not counted.
    """
    from gancli.data.sources import load_data
    from gancli.references import read_checkpoint
    from gancli_plugin_gan.config import GANConfig
    from gancli_plugin_gan.model import build

    ckpt = read_checkpoint(checkpoint_path)
    if ckpt.family != "gan":
        raise GancliError(f"{ckpt.path} is a {ckpt.family!r} checkpoint; classification accuracy needs a semi-supervised gan")
    config = GANConfig.model_validate(ckpt.config.get("model", {}))
    if not config.semi_supervised:
        raise GancliError(
            f"{ckpt.path} was not trained with semi_supervised=true, so its discriminator is no classifier"
        )
    if not ckpt.has("D."):
        raise GancliError(f"{ckpt.path} holds no discriminator weights (D.*); use a training checkpoint")
    spec = ckpt.spec
    D = build(config, spec).discriminator
    try:
        D.load_state_dict(ckpt.tensors("D."), strict=True)
    except RuntimeError as exc:
        raise GancliError(f"{ckpt.path}: discriminator weights do not fit ({str(exc).splitlines()[0]})") from None
    D.to(device).eval()

    data = load_data(data_source, resolution=spec.resolution or None, channels=spec.channels or None, split=split)
    if tuple(data.spec.shape) != tuple(spec.shape):
        raise GancliError(
            f"{data_source} holds {data.spec.describe()}, the model was trained on {spec.describe()}"
        )
    correct = total = 0
    for x, labels in _labelled_batches(data, batch_size):
        labelled = labels >= 0
        if not bool(labelled.any()):
            continue
        if int(labels.max()) >= spec.num_classes:
            raise GancliError(
                f"{data_source} has class {int(labels.max())}; the model knows {spec.num_classes} classes"
            )
        predicted = D(x.to(device)).argmax(dim=1).cpu()
        correct += int((predicted[labelled] == labels[labelled]).sum())
        total += int(labelled.sum())
    if total == 0:
        raise GancliError(f"{data_source} ({split}) has no labelled examples to classify")
    return correct / total
