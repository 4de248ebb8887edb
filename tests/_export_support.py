"""Tiny checkpoints of any installed family, for the export, hub and walk tests."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLASS_NAMES = ("Bag", "Shirt", "Sneaker")


def families_with_images() -> list[str]:
    from gancli.plugins import discover

    return sorted(name for name, record in discover().items()
                  if record.ok and "image" in record.family.data_kinds and name != "wspace-toy")


def is_conditional_capable(family: str) -> bool:
    from gancli.plugins import get_record

    return "conditional" in get_record(family).family.load_config_model().model_fields


def tiny_checkpoint(family: str, out: Path, *, num_classes: int = 0, steps: int = 1, settings: dict | None = None,
                    channels: int = 1) -> Path:
    """Train ``family`` with its conformance settings for ``steps`` steps on random images; the last checkpoint."""
    import torch

    from gancli.config import RunConfig
    from gancli.data.images import TensorData
    from gancli.data.spec import DataSpec
    from gancli.plugins import get_record
    from gancli.train.loop import train

    fam = get_record(family).family
    resolution = fam.check_resolution
    tiny = {**fam.check_settings, **({"conditional": True} if num_classes else {}), **(settings or {})}
    config = fam.load_config_model().model_validate(tiny)
    g = torch.Generator().manual_seed(0)
    n = 16
    spec = DataSpec(kind="image", channels=channels, resolution=resolution, num_classes=num_classes, name="tiny",
                    class_names=CLASS_NAMES[:num_classes])
    images = torch.randint(0, 256, (n, channels, resolution, resolution), generator=g, dtype=torch.uint8)
    data = TensorData(spec, images, torch.arange(n) % num_classes if num_classes else None)
    run = RunConfig.model_validate({
        "family": family, "data": {"source": "tiny"},
        "train": {"steps": steps, "batch_size": 8, "log_every": 1, "sample_every": 0, "checkpoint_every": steps,
                  "seed": 0, "ema": True},
        "model": config.model_dump(mode="json"),
    })
    return train(run, config, out=out, data=data, show_progress=False).last_checkpoint


@contextmanager
def wspace_toy_installed(root: Path):
    """tests/_sampling_family.py's W-space family, registered as an installed distribution."""
    from gancli import plugins

    site = root / "site"
    dist = site / "gancli_plugin_wspace_toy-0.1.0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: gancli-plugin-wspace-toy\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[gancli.plugins]\nwspace-toy = _sampling_family:FAMILY\n")
    saved_path = list(sys.path)
    sys.path[:0] = [str(site), str(HERE)]
    plugins.refresh()
    try:
        yield
    finally:
        sys.path[:] = saved_path
        plugins.refresh()


def populate_hub_cache(home: Path, repo_id: str, folder: Path, *, commit: str = "0" * 39 + "1") -> Path:
    """Lay ``folder``'s files out as huggingface_hub's cache does after a download of ``repo_id``:
    $HF_HOME/hub/models--owner--name/{blobs/<sha256>, refs/main, snapshots/<commit>/<file> -> ../../blobs/<sha256>}."""
    import hashlib
    import os

    root = home / "hub" / ("models--" + repo_id.replace("/", "--"))
    blobs, snapshot = root / "blobs", root / "snapshots" / commit
    blobs.mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    (root / "refs").mkdir(exist_ok=True)
    (root / "refs" / "main").write_text(commit)
    for file in sorted(folder.iterdir()):
        data = file.read_bytes()
        blob = blobs / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        os.symlink(os.path.relpath(blob, snapshot), snapshot / file.name)
    return snapshot


def npz_run(root: Path, *, steps: int = 2, ema: bool = True, overrides: tuple[str, ...] = ()) -> Path:
    """A tiny DCGAN trained from an .npz file (so `gancli eval` finds its data); the last checkpoint."""
    import numpy as np

    from gancli import config as cfg
    from gancli.train.loop import train

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    np.savez(root / "data.npz", images=rng.integers(0, 256, size=(32, 16, 16), dtype=np.uint8))
    run, family_config = cfg.resolve(
        "dcgan",
        flags={"data": {"source": str(root / "data.npz"), "resolution": 16},
               "train": {"steps": steps, "batch_size": 8, "sample_every": 0, "checkpoint_every": steps,
                         "log_every": 1, "ema": ema}},
        overrides=["ngf=4", "ndf=4", "z_dim=8", *overrides],
    )
    return train(run, family_config, out=root / "run", show_progress=False).last_checkpoint
