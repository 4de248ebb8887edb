"""Two CPU processes through accelerate launch, as a multi-GPU user would run it."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import gancli
from gancli import checkpoint


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch_two(*gancli_args: str) -> subprocess.CompletedProcess:
    """`accelerate launch` of two CPU processes running `gancli ARGS`, one thread each."""
    accelerate = Path(sys.executable).with_name("accelerate")
    cmd = [
        str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
        "-m", "gancli", *gancli_args,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


TINY_DCGAN = ("--resolution", "16", "--batch", "8", "--set", "ngf=4", "--set", "ndf=4", "--set", "z_dim=8")


@pytest.mark.slow
def test_two_processes_train_and_checkpoint(tiny_npz, tmp_path):
    out = tmp_path / "run"
    _launch_two("train", "dcgan", "--data", str(tiny_npz), *TINY_DCGAN, "--steps", "4", "--log-every", "1",
                "--checkpoint-every", "2", "--sample-every", "4", "--out", str(out))
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3, 4]  # only the main process writes
    assert lines[-1]["images_seen"] == 32
    ckpt = checkpoint.read(out / "checkpoints" / "last.safetensors")
    assert ckpt.state["world_size"] == 2
    # each process keeps its own random state, both are saved for an exact resume
    assert ckpt.has("state.rank.0.rng.torch") and ckpt.has("state.rank.1.rng.torch")
    assert torch.isfinite(gancli.load(out / "checkpoints" / "last.safetensors", device="cpu").sample(2, seed=0)).all()


def test_feature_matching_takes_the_global_batchs_statistics_under_two_processes(tmp_path):
    """Feature matching's E f(x) and E f(G(z)) are means over the global batch: two processes at half the
    batch each train the same weights as one process with the whole batch."""
    points = np.random.default_rng(0).normal(size=(256, 2)).astype(np.float32)
    np.savez(tmp_path / "points.npz", points=points)
    common = ["train", "gan", "--data", str(tmp_path / "points.npz"), "--steps", "3", "--batch", "16",
              "--log-every", "1", "--sample-every", "0", "--checkpoint-every", "0",
              "--set", "z_dim=4", "--set", "g_hidden=16", "--set", "d_hidden=16", "--set", "feature_matching=true"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, "-m", "gancli", *common, "--out", str(tmp_path / "one")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    _launch_two(*common, "--out", str(tmp_path / "two"))
    a = checkpoint.read(tmp_path / "one" / "checkpoints" / "last.safetensors").tensors("")
    b = checkpoint.read(tmp_path / "two" / "checkpoints" / "last.safetensors").tensors("")
    for name in [n for n in a if n.startswith(("G.", "D."))]:
        torch.testing.assert_close(b[name], a[name], rtol=1e-4, atol=1e-5, msg=name)
    lines = [json.loads(line) for line in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    reference = [json.loads(line) for line in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    assert [line["g/fm"] for line in lines] == pytest.approx([line["g/fm"] for line in reference], rel=1e-4)


@pytest.mark.slow
def test_two_processes_hold_the_same_ada_p(tiny_npz, tmp_path):
    """ADA's statistic is summed over the processes before p moves, so both ranks keep one p."""
    out = tmp_path / "run"
    _launch_two("train", "dcgan", "--data", str(tiny_npz), *TINY_DCGAN, "--steps", "6", "--log-every", "1",
                "--checkpoint-every", "6", "--sample-every", "0", "--out", str(out), "--augment", "ada",
                "--set", "train.ada_interval=2", "--set", "train.ada_kimg=0.05", "--set", "train.ada_p=0.5")
    ckpt = checkpoint.read(out / "checkpoints" / "last.safetensors")
    p0, p1 = (float(ckpt.tensors("")[f"state.rank.{r}.augment.p"]) for r in (0, 1))
    assert p0 == p1
    ps = [json.loads(line)["augment/p"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert ps[-1] == p0 and len(set(ps)) > 1  # it moved, by the global batch: 8 · 2 / 50 = 0.32 a time
    assert all(abs(b - a) == pytest.approx(0.32) or b == 0.0 or a == b for a, b in zip([0.5] + ps, ps))
