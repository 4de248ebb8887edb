"""Progressive GAN through the trainer: growth mid-run, the phase and α in checkpoints, bit-exact resume
in the middle of a fade-in, the per-resolution batch, optimizer state for new blocks, the conformance kit."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

import gancli
from gancli import checkpoint as ckpt_io
from gancli import config as cfg
from gancli.data.images import TensorData
from gancli.data.spec import DataSpec
from gancli.testing import check_family
from gancli.train.loop import train

# 24 images per phase; batch 8 at 4×4 and 16×16, 4 at 8×8. Iterations start at these images:
#   4×4 steps 0–2 (0, 8, 16) · 8×8 fade-in steps 3–8 (24 … 44) · 8×8 steps 9–14 (48 … 68) ·
#   16×16 fade-in steps 15–17 (72, 80, 88)
SETTINGS = ["z_dim=6", "fmap_base=32", "fmap_max=8", "kimg_per_phase=0.024", "mbstd_group_size=4",
            'batch_sizes={"8": 4}']
MID_FADE_8, MID_FADE_16 = 6, 17  # checkpoints whose last step ran at α = 1/3 (images 32 and 80)


def tiny_data() -> TensorData:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (64, 1, 16, 16), generator=g, dtype=torch.uint8)
    return TensorData(DataSpec(kind="image", channels=1, resolution=16, name="tiny"), images)


def run_tiny(out, steps, *, resume=False, checkpoint_every=0, settings=()):
    run, family_config = cfg.resolve(
        "progan",
        flags={"data": {"source": "tiny"},
               "train": {"steps": steps, "batch_size": 8, "log_every": 1, "sample_every": 0,
                         "checkpoint_every": checkpoint_every, "seed": 0}},
        overrides=[*SETTINGS, *settings],
    )
    return train(run, family_config, out=out, data=tiny_data(), show_progress=False, resume=resume)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("progan")
    straight = run_tiny(root / "straight", MID_FADE_16)
    run_tiny(root / "resumed", MID_FADE_8, checkpoint_every=MID_FADE_8)
    kept = shutil.copy(root / "resumed" / "checkpoints" / "last.safetensors", root / "mid-fade.safetensors")
    middle = ckpt_io.read(kept)
    resumed = run_tiny(root / "resumed", MID_FADE_16, resume=True)
    return straight, middle, resumed


def test_resuming_in_the_middle_of_a_fade_in_is_bit_exact(runs):
    straight, middle, resumed = runs
    assert middle.step == MID_FADE_8 and float(middle.tensors("G.")["alpha"]) == pytest.approx(1 / 3)
    a, b = ckpt_io.read(straight.last_checkpoint), ckpt_io.read(resumed.last_checkpoint)
    assert set(a.tensor_names) == set(b.tensor_names)
    ta, tb = a.tensors(""), b.tensors("")
    assert [name for name in ta if not torch.equal(ta[name], tb[name])] == []


def test_the_checkpoint_records_the_phase_and_alpha_and_samples_at_any_phase(runs):
    straight, middle, _ = runs
    for path, resolution in ((middle.path, 8), (straight.last_checkpoint, 16)):
        for ema in (True, False):
            pipe = gancli.load(path, device="cpu", ema=ema)
            G = pipe.generator
            assert G.current_resolution == resolution and float(G.alpha) == pytest.approx(1 / 3)
            samples = pipe.sample(4, seed=0)
            assert samples.shape == (4, 1, 16, 16) and samples.abs().max() <= 1
    final = ckpt_io.read(straight.last_checkpoint).tensors("")
    assert float(final["D.alpha"]) == pytest.approx(1 / 3)
    assert torch.equal(final["G.alpha"], final["G_ema.alpha"])


def test_new_blocks_join_the_optimizers_and_adam_restarts_at_each_phase(runs):
    straight, _, _ = runs
    tensors = ckpt_io.read(straight.last_checkpoint).tensors("state.opt.")
    for name in ("G.blocks.16x16.conv1.weight", "G.to_rgb.16x16.weight", "D.blocks.16x16.conv0.weight",
                 "D.from_rgb.16x16.conv.weight"):
        assert f"{name}.exp_avg" in tensors, name
    # the moments were cleared when the 16×16 fade-in began (step 15): two Adam steps since
    assert float(tensors["G.blocks.4x4.dense.weight.step"]) == 2
    assert float(tensors["D.blocks.4x4.dense1.weight.step"]) == 2


def test_the_batch_follows_the_schedule(runs):
    straight, _, _ = runs
    lines = [json.loads(line) for line in (straight.run_dir / "metrics.jsonl").read_text().splitlines()]
    seen = [0] + [line["images_seen"] for line in lines]
    batches = [after - before for before, after in zip(seen, seen[1:])]
    assert batches == [8] * 3 + [4] * 12 + [8] * 2


def test_a_checkpoint_written_as_a_fade_in_begins_loads(tmp_path):
    result = run_tiny(tmp_path / "run", 3)  # images 24 after step 3: the 8×8 fade-in starts next
    assert gancli.load(result.last_checkpoint, device="cpu").generator.current_resolution == 8


def test_conformance():
    report = check_family("progan")
    assert any("resume is bit-exact" in line for line in report.passed)
