"""Every W-space feature works unchanged for stylegan2: ψ and the cutoff, noise modes, style mixing, W walks, export."""
from __future__ import annotations

import importlib.util

import pytest
import torch
from typer.testing import CliRunner

import gancli
from gancli.cli import app
from stylegan_testkit import image_data, train_tiny


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("s2")
    result = train_tiny(out / "run", steps=2, family="stylegan2", ema=True, data=image_data(16, resolution=16),
                        overrides=["r1_interval=2", "pl_interval=2"])
    return result.last_checkpoint


def cli(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def test_truncation_cutoff_and_noise_modes_through_the_pipeline(checkpoint):
    pipe = gancli.load(checkpoint, device="cpu")
    assert pipe.w_space
    z = torch.randn(3, pipe.z_dim, generator=torch.Generator().manual_seed(0))
    average = pipe.generate(z, truncation=0.0, noise_mode="const")
    assert torch.allclose(average, average[:1].expand_as(average), atol=1e-6)  # ψ = 0: w_avg for every z
    w = pipe.mapping(z, truncation=0.0, truncation_cutoff=2)
    assert torch.equal(w[:, :2], pipe.w_avg.expand(3, 2, -1))
    assert torch.equal(pipe.generate(z, noise_mode="const"), pipe.generate(z, noise_mode="const"))


def test_sample_style_mix_walk_and_export(checkpoint, tmp_path):
    cli("sample", checkpoint, "-n", "4", "--seed", "1", "--truncation", "0.7", "--truncation-cutoff", "2",
        "--noise-mode", "none", "--out", tmp_path / "grid.png")
    cli("sample", checkpoint, "-n", "2", "--truncation-sweep", "0.5,1.0", "--out", tmp_path / "sweep.png")
    cli("style-mix", checkpoint, "--rows", "1,2", "--cols", "3,4", "--styles", "coarse", "--out", tmp_path / "mix.png")
    cli("interpolate", checkpoint, "--seeds", "1,2", "--frames", "3", "--out", tmp_path / "walk.gif")
    cli("export", checkpoint, "--format", "safetensors", "--out", tmp_path / "g.safetensors")
    for name in ("grid.png", "mix.png", "walk.gif", "g.safetensors"):
        assert (tmp_path / name).stat().st_size > 0
    exported = gancli.load(tmp_path / "g.safetensors", device="cpu")
    z = torch.randn(2, exported.z_dim)
    assert torch.equal(exported.generate(z, truncation=0.5, noise_mode="const"),
                       gancli.load(checkpoint, device="cpu").generate(z, truncation=0.5, noise_mode="const"))


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="onnxruntime not installed")
def test_onnx_and_torchscript_exports_fix_psi_and_noise_mode(checkpoint, tmp_path):
    cli("export", checkpoint, "--format", "onnx", "--truncation", "0.5", "--noise-mode", "none", "--out",
        tmp_path / "g.onnx")
    cli("export", checkpoint, "--format", "torchscript", "--truncation", "0.5", "--out", tmp_path / "g.pt")


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="onnxruntime not installed")
def test_the_fused_form_exports_too(tmp_path):
    """fused_modconv folds the batch into grouped convolutions; traced graphs take the unfused form (the same
    function), so they run at any batch size."""
    result = train_tiny(tmp_path / "run", steps=1, family="stylegan2", data=image_data(16, resolution=16),
                        overrides=["fused_modconv=true"])
    cli("export", result.last_checkpoint, "--format", "onnx", "--out", tmp_path / "g.onnx")
    cli("export", result.last_checkpoint, "--format", "torchscript", "--out", tmp_path / "g.pt")
