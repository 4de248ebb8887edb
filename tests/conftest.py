"""Shared fixtures: tiny datasets made on the fly, offline hub, clean plugin registry (IDX helpers: _idx_files)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture
def tiny_npz(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(48, 16, 16), dtype=np.uint8)
    labels = np.arange(48) % 3
    path = tmp_path / "tiny.npz"
    np.savez(path, images=images, labels=labels)
    return path


@pytest.fixture(autouse=True)
def _fresh_plugins():
    from gancli import plugins

    plugins.refresh()
    yield
    plugins.refresh()


@pytest.fixture
def cli():
    """Invoke the CLI in-process; returns the result (exit_code, stdout, stderr)."""
    from typer.testing import CliRunner

    from gancli.cli import app

    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, [str(a) for a in args])

    return invoke


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A few steps of a tiny DCGAN; returns its last checkpoint (shared by read-only tests)."""
    from gancli import config as cfg
    from gancli.train.loop import train

    root = tmp_path_factory.mktemp("tiny_run")
    rng = np.random.default_rng(1)
    np.savez(root / "data.npz", images=rng.integers(0, 256, size=(32, 16, 16), dtype=np.uint8))
    run, family_config = cfg.resolve(
        "dcgan",
        flags={"data": {"source": str(root / "data.npz"), "resolution": 16},
               "train": {"steps": 3, "batch_size": 8, "sample_every": 3, "checkpoint_every": 3, "log_every": 1}},
        overrides=["ngf=4", "ndf=4", "z_dim=8"],
    )
    result = train(run, family_config, out=root / "run", show_progress=False)
    return result.last_checkpoint
