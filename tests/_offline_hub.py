"""A Hugging Face datasets cache filled by hand, as a first online download leaves it, for offline tests.

In offline mode ``datasets.load_dataset("owner/name")`` finds a dataset in its cache
(``$HF_HOME/datasets/owner___name/default/0.0.0/<hash>/``); this writes one there from a
few images, so the real hub code path of gancli runs without a network.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = r'''
import sys
from pathlib import Path

import datasets
import numpy as np
from PIL import Image
from datasets.packaged_modules.parquet.parquet import Parquet

repo_id, count, side, classes, workdir = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5])
rng = np.random.default_rng(0)
rows = {"image": [Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)) for _ in range(count)]}
features = {"image": datasets.Image()}
if classes:
    rows["label"] = [i % classes for i in range(count)]
    features["label"] = datasets.ClassLabel(names=[f"class{k}" for k in range(classes)])
features = datasets.Features(features)
workdir.mkdir(parents=True, exist_ok=True)
datasets.Dataset.from_dict(rows, features=features).to_parquet(str(workdir / "train.parquet"))
builder = Parquet(dataset_name=repo_id.split("/")[-1], data_files={"train": str(workdir / "train.parquet")},
                  hash="0123456789abcdef", features=features, config_id="default")
builder.repo_id = repo_id  # what a download from the hub records; the files came from elsewhere here
builder._cache_dir = builder._build_cache_dir()
builder.download_and_prepare()
'''


def offline_env(home: Path) -> dict[str, str]:
    return {**os.environ, "HF_HOME": str(home), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def populate(home: Path, repo_id: str, *, count: int = 12, side: int = 20, classes: int = 0) -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT, repo_id, str(count), str(side), str(classes),
                           str(home / "_source")], env=offline_env(home), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
