"""`gancli train stylegan --data ffhq` offline with no local folder: one clear line, exit status 2, no run."""
from __future__ import annotations

import pytest

import os
import subprocess
import sys


@pytest.mark.slow
def test_train_ffhq_offline_without_a_local_folder_is_one_clear_line(tmp_path):
    env = {
        **os.environ,
        "HF_HOME": str(tmp_path / "empty-hf"),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "GANCLI_DATA_DIR": str(tmp_path / "no-local-data"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "gancli", "train", "stylegan", "--data", "ffhq", "--steps", "1",
         "--out", str(tmp_path / "run")],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert "ffhq" in done.stderr and "GANCLI_DATA_DIR" in done.stderr  # says where to put the images
    assert not (tmp_path / "run").exists()
