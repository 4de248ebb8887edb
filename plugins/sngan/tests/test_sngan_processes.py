"""Two CPU processes (gloo): every spectral-norm vector u, v of G and D stays identical on both ranks.

u and v are buffers that each process updates by its own power iteration, outside the
gradient all-reduce; they stay equal only if every rank sees the same weights and runs
D forward the same number of times in the same mode. The probe family
(``_sngan_rank_probe``, sagan: SN in G and D) saves each process's vectors with its per-process state.

A 1-process run does not make a reference here: G's BatchNorm normalizes each process's
half of the batch on its own, so G's output, and with it D's weights, differ from a run
that normalizes the whole batch at once.
"""
from __future__ import annotations

import pytest

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from gancli import checkpoint as ckpt_io

HERE = Path(__file__).resolve().parent


def _install_probe(site: Path) -> None:
    dist = site / "gancli_plugin_sngan_rank_probe-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: gancli-plugin-sngan-rank-probe\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[gancli.plugins]\nsngan-rank-probe = _sngan_rank_probe:FAMILY\n")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_keep_every_spectral_norm_vector_identical(tmp_path):
    site = tmp_path / "site"
    _install_probe(site)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(48, 32, 32), dtype=np.uint8)
    np.savez(tmp_path / "tiny.npz", images=images, labels=np.arange(48) % 3)  # labelled: projection D
    out = tmp_path / "run"
    accelerate = Path(sys.executable).with_name("accelerate")
    cmd = [
        str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
        "-m", "gancli", "train", "sngan-rank-probe", "--data", str(tmp_path / "tiny.npz"), "--steps", "3",
        "--batch", "8", "--log-every", "1", "--checkpoint-every", "3", "--sample-every", "0", "--out", str(out),
        "--set", "z_dim=8", "--set", "g_ch=2", "--set", "d_ch=4", "--set", "n_critic=2",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(site), str(HERE), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    tensors = ckpt_io.read(out / "checkpoints" / "last.safetensors").tensors("")
    rank0 = {k[len("state.rank.0.objective.sn."):]: v for k, v in tensors.items()
             if k.startswith("state.rank.0.objective.sn.")}
    rank1 = {k[len("state.rank.1.objective.sn."):]: v for k, v in tensors.items()
             if k.startswith("state.rank.1.objective.sn.")}
    assert rank0 and set(rank0) == set(rank1)
    assert any(k.startswith("D.head.embed.") for k in rank0), "the projection embedding is normalized too"
    assert any(k.startswith("G.") for k in rank0) and any(k.startswith("D.attention.") for k in rank0)
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name
        assert torch.equal(rank0[name], tensors[name]), name  # the saved networks are rank 0's

    # training moved them: equal vectors are not equal by standing still
    torch.manual_seed(0)
    from gancli.data.spec import DataSpec
    from gancli_plugin_sngan.config import SAGANConfig
    from gancli_plugin_sngan.model import build_sagan

    spec = DataSpec(kind="image", channels=1, resolution=32, num_classes=3)
    gan = build_sagan(SAGANConfig(z_dim=8, g_ch=2, d_ch=4, n_critic=2), spec)
    initial = {**{f"G.{k}": v for k, v in gan.generator.state_dict().items()},
               **{f"D.{k}": v for k, v in gan.discriminator.state_dict().items()}}
    moving = [name for name in rank0 if name.endswith("._u") and rank0[name].numel() > 1]  # ψ's u is always [1]
    assert moving and all(not torch.equal(initial[name], rank0[name]) for name in moving)
