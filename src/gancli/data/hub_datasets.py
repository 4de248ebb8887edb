"""Named datasets (aliases such as fashion-mnist and cifar10, found locally or on the hub) and Hugging Face
dataset ids."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import torch

from gancli.data.folders import open_path
from gancli.data.images import MATERIALIZE_LIMIT_BYTES, Dataset, LazyImages, TensorData, pil_to_tensor, stack
from gancli.data.spec import DataSpec
from gancli.errors import GancliError

# alias -> (local folder names tried under the search roots, Hugging Face dataset id)
ALIASES: dict[str, tuple[tuple[str, ...], str]] = {
    "fashion-mnist": (("fashion-mnist", "fashion_mnist"), "zalando-datasets/fashion_mnist"),
    "mnist": (("mnist",), "ylecun/mnist"),
    "cifar10": (("cifar10", "cifar-10"), "uoft-cs/cifar10"),
    "ffhq": (("ffhq",), "bitmind/ffhq-256"),  # FFHQ's 70,000 faces at 256×256 (parquet, an "image" column)
    "celeba": (("celeba",), "flwrlabs/celeba"),
}
ALIAS_DEFAULT_RESOLUTION = {"fashion-mnist": 28, "mnist": 28, "cifar10": 32, "ffhq": 256, "celeba": 64}


def data_roots() -> list[Path]:
    roots = []
    if env := os.environ.get("GANCLI_DATA_DIR"):
        roots.append(Path(env).expanduser())
    roots += [Path("/usr/share/datasets"), Path.home() / ".cache" / "gancli" / "datasets"]
    return roots


def alias_folder(alias: str) -> Optional[Path]:
    for root in data_roots():
        for folder in ALIASES[alias][0]:
            candidate = root / folder
            if candidate.is_dir():
                return candidate
    return None


def open_alias(alias: str, *, resolution, channels, split, hub_info: dict) -> Dataset:
    local = alias_folder(alias)
    if local is not None:
        return open_path(local, resolution=resolution, channels=channels, split=split)
    return open_hub(ALIASES[alias][1], resolution=resolution, channels=channels, split=split, alias=alias, hub_info=hub_info)


def open_hub(dataset_id: str, *, resolution, channels, split, alias: Optional[str] = None, hub_info: dict) -> Dataset:
    what = f"{alias!r} ({dataset_id})" if alias else repr(dataset_id)
    hint = (
        f"put the files in $GANCLI_DATA_DIR/{ALIASES[alias][0][0]} or pass a local folder"
        if alias
        else "check the id, or pass a local folder"
    )
    try:
        import datasets
        from datasets.utils.logging import disable_progress_bar

        disable_progress_bar()
        ds = datasets.load_dataset(dataset_id, split=split)
    except Exception as exc:  # offline, unknown id, or missing split all land here
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GancliError(
            f"could not load Hugging Face dataset {what}: {first_line[:200]}; {hint}"
        ) from None
    hub_info.update(hub_fingerprint=getattr(ds, "_fingerprint", None), revision=_hub_revision(ds))
    return _from_hub_dataset(ds, dataset_id, resolution=resolution, channels=channels)


def _hub_revision(ds) -> Optional[str]:
    """The dataset revision the local cache holds: the hash folder its Arrow files live in, when there is one."""
    for entry in getattr(ds, "cache_files", None) or []:
        parent = Path(entry.get("filename", "")).parent.name
        if parent and all(char in "0123456789abcdef" for char in parent) and len(parent) >= 7:
            return parent
    return None


def _from_hub_dataset(ds, dataset_id: str, *, resolution, channels) -> Dataset:
    columns = ds.column_names
    image_key = next((k for k in ("image", "img", "images") if k in columns), None)
    if image_key is None:
        raise GancliError(f"{dataset_id} has no image column (columns: {', '.join(columns)})")
    label_key = next((k for k in ("label", "labels", "fine_label") if k in columns), None)
    class_names: tuple[str, ...] = ()
    if label_key is not None and hasattr(ds.features[label_key], "names"):
        class_names = tuple(ds.features[label_key].names)
    first = ds[0][image_key]
    channels = channels or (1 if first.mode in ("L", "1") else 3)
    resolution = resolution or min(first.size)
    spec = DataSpec(
        kind="image", channels=channels, resolution=resolution, num_classes=len(class_names),
        name=dataset_id.split("/")[-1], class_names=class_names,
    )

    def load(index: int):
        row = ds[index]
        return pil_to_tensor(row[image_key], channels, resolution), (int(row[label_key]) if label_key else -1)

    lazy = LazyImages(spec, len(ds), load, has_labels=label_key is not None)
    if len(ds) * channels * resolution * resolution > MATERIALIZE_LIMIT_BYTES:
        return lazy
    items = [load(i) for i in range(len(ds))]
    labels = torch.tensor([y for _, y in items], dtype=torch.int64) if label_key else None
    return TensorData(spec, stack([x for x, _ in items]), labels)
