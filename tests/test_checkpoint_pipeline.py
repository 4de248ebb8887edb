"""Checkpoints: metadata, round trip, loading without training code, seeds."""
from __future__ import annotations

import json
import subprocess
import sys

import torch

import gancli
from gancli import checkpoint


def test_metadata_is_self_describing(tiny_run):
    ckpt = checkpoint.read(tiny_run)
    meta = ckpt.metadata
    assert meta["gancli.format"] == checkpoint.FORMAT_VERSION
    assert meta["gancli.version"] == gancli.__version__
    assert meta["gancli.family"] == "dcgan"
    assert meta["gancli.plugin.distribution"] == "gancli-plugin-dcgan"
    assert meta["gancli.plugin.api_version"].startswith("2.")
    assert ckpt.step == 3 and ckpt.images_seen == 24
    config = json.loads(meta["gancli.config"])
    assert config["model"]["ngf"] == 4 and config["train"]["steps"] == 3
    assert ckpt.spec.resolution == 16 and ckpt.spec.channels == 1
    assert ckpt.has("G.") and ckpt.has("D.") and ckpt.has("state.opt.G.") and ckpt.has("state.opt.D.")


def test_round_trip_weights_equal(tiny_run):
    ckpt = checkpoint.read(tiny_run)
    pipe = gancli.load(tiny_run, device="cpu")
    stored = ckpt.tensors("G.")
    for name, value in pipe.generator.state_dict().items():
        assert torch.equal(value, stored[name]), name


def test_same_seed_same_pixels_and_range(tiny_run):
    pipe = gancli.load(tiny_run, device="cpu")
    a = pipe.sample(6, seed=11)
    assert torch.equal(a, pipe.sample(6, seed=11))
    assert not torch.equal(a, pipe.sample(6, seed=12))
    assert a.shape == (6, 1, 16, 16) and a.min() >= -1 and a.max() <= 1
    u8 = pipe.sample_images(2, seed=0)
    assert u8.dtype == torch.uint8


def test_loading_needs_no_training_code(tiny_run):
    code = (
        "import sys, gancli\n"
        f"gancli.load({str(tiny_run)!r}, device='cpu').sample(2, seed=0)\n"
        "assert 'gancli.train.loop' not in sys.modules and 'accelerate' not in sys.modules, sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_run_directory_layout(tiny_run):
    run_dir = tiny_run.parent.parent
    assert (run_dir / "config.toml").is_file()
    assert (run_dir / "samples" / "step-000003.png").is_file()
    assert (run_dir / "checkpoints" / "step-000003.safetensors").is_file()
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2, 3]
    assert {"d/loss", "g/loss", "images_seen"} <= set(json.loads(lines[-1]))
