"""Generic sampling features: classes by name, per-class grids, class mixtures and walks, W space
(ψ-truncation, cutoff, noise modes, style mixing, walks in W), standing statistics, BatchNorm mode."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gancli
from gancli import config as cfg
from gancli import plugins
from gancli.train.loop import train

HERE = Path(__file__).resolve().parent
CLASSES = ("Bag", "Shirt", "Sneaker")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A conditional W-space toy and a conditional DCGAN, trained 2 steps on a folder with named classes."""
    root = tmp_path_factory.mktemp("sampling")
    site = root / "site"
    dist = site / "gancli_plugin_wspace_toy-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: gancli-plugin-wspace-toy\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[gancli.plugins]\nwspace-toy = _sampling_family:FAMILY\n")
    import sys

    saved_path = list(sys.path)
    sys.path[:0] = [str(site), str(HERE)]
    plugins.refresh()
    rng = np.random.default_rng(0)
    for k, name in enumerate(CLASSES):
        (root / "data" / name).mkdir(parents=True)
        for i in range(8):
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8) // (k + 1), mode="L").save(
                root / "data" / name / f"{i}.png")
    out = {}
    for family, overrides in (("wspace-toy", []), ("dcgan", ["ngf=4", "ndf=4", "z_dim=8", "conditional=true"])):
        run, family_config = cfg.resolve(
            family, flags={"data": {"source": str(root / "data"), "resolution": 8 if family != "dcgan" else 16,
                                    "channels": 1},
                           "train": {"steps": 2, "batch_size": 6, "sample_every": 2, "checkpoint_every": 2}},
            overrides=overrides,
        )
        out[family] = train(run, family_config, out=root / family, show_progress=False).last_checkpoint
    yield out
    sys.path[:] = saved_path
    plugins.refresh()


@pytest.fixture(autouse=True)
def _keep_plugins(runs):
    yield  # the module fixture's plugin stays registered (conftest refreshes the registry around each test)


def test_classes_by_index_and_by_name_give_the_same_samples(runs):
    pipe = gancli.load(runs["wspace-toy"], device="cpu")
    assert pipe.class_names == list(CLASSES)
    assert torch.equal(pipe.sample(4, seed=1, class_="Sneaker"), pipe.sample(4, seed=1, class_=2))
    assert torch.equal(pipe.sample(4, seed=1, class_="sneaker"), pipe.sample(4, seed=1, class_=2))
    assert not torch.equal(pipe.sample(4, seed=1, class_=0), pipe.sample(4, seed=1, class_=2))


def test_a_mixture_with_weight_one_on_a_class_equals_that_class(runs):
    pipe = gancli.load(runs["wspace-toy"], device="cpu")
    assert torch.equal(pipe.sample(4, seed=3, class_="Shirt:1"), pipe.sample(4, seed=3, class_=1))
    half = pipe.sample(4, seed=3, class_="0:0.5,2:0.5")
    assert not torch.equal(half, pipe.sample(4, seed=3, class_=0))


@pytest.mark.parametrize("value, message", [("7", "out of range"), ("Dress", "unknown class 'Dress'"),
                                            ("0:0.5,2", "class:weight")])
def test_bad_classes_are_one_clear_line(runs, cli, tmp_path, value, message):
    result = cli("sample", runs["wspace-toy"], "-n", "2", "--class", value, "--out", tmp_path / "x.png")
    assert result.exit_code == 2 and message in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "x.png").exists()


def test_mixtures_need_a_shared_embedding(runs, cli, tmp_path):
    result = cli("sample", runs["dcgan"], "-n", "2", "--class", "0:0.5,1:0.5", "--out", tmp_path / "x.png")
    assert result.exit_code == 2 and "weights its class parameters (biggan, sngan, sagan)" in result.stderr


def test_per_class_grid_has_one_labelled_row_per_class(runs, cli, tmp_path):
    out = tmp_path / "grid.png"
    result = cli("sample", runs["dcgan"], "--per-class", "5", "--seed", "0", "--out", out)
    assert result.exit_code == 0, result.output
    image = Image.open(out)
    rows = 3
    assert image.height == rows * (16 + 2) + 2 and image.width > 5 * (16 + 2) + 2  # a label margin at the left
    unconditional = cli("sample", runs["wspace-toy"], "--per-class", "2", "--class", "0", "--out", tmp_path / "y.png")
    assert unconditional.exit_code == 2


def test_psi_zero_gives_the_average_image_for_every_seed_and_one_changes_nothing(runs):
    pipe = gancli.load(runs["wspace-toy"], device="cpu")
    z = torch.randn(5, pipe.z_dim)
    w = pipe.mapping(z, torch.zeros(5, dtype=torch.long), truncation=0.0)
    assert torch.allclose(w, pipe.w_avg.expand_as(w))
    images = pipe.sample(5, seed=0, class_=0, truncation=0.0, noise_mode="none")
    assert torch.allclose(images, images[:1].expand_as(images), atol=1e-6)
    assert torch.equal(pipe.sample(3, seed=2, class_=0, truncation=1.0), pipe.sample(3, seed=2, class_=0))


def test_the_cutoff_truncates_only_the_first_layers(runs):
    pipe = gancli.load(runs["wspace-toy"], device="cpu")
    z, y = torch.randn(3, pipe.z_dim), torch.zeros(3, dtype=torch.long)
    full, cut = pipe.mapping(z, y), pipe.mapping(z, y, truncation=0.0, truncation_cutoff=2)
    assert torch.allclose(cut[:, :2], pipe.w_avg.expand(3, 2, -1)) and torch.equal(cut[:, 2:], full[:, 2:])


def test_noise_modes(runs):
    pipe = gancli.load(runs["wspace-toy"], device="cpu")
    w = pipe.mapping(torch.randn(2, pipe.z_dim), torch.zeros(2, dtype=torch.long))
    const = pipe.synthesis(w, noise_mode="const")
    assert torch.equal(const, pipe.synthesis(w, noise_mode="const"))
    assert not torch.equal(pipe.synthesis(w, noise_mode="none"), const)
    # random noise is seeded: the same seed gives the same pixels, another seed others
    assert torch.equal(pipe.synthesis(w, noise_mode="random", seed=4), pipe.synthesis(w, noise_mode="random", seed=4))
    assert not torch.equal(pipe.synthesis(w, noise_mode="random", seed=4), pipe.synthesis(w, noise_mode="random", seed=5))


def test_style_mixing_takes_the_chosen_layers_from_the_column_source(runs, cli, tmp_path):
    from gancli.cli.style_mix_cmd import parse_layers
    from gancli.sampling import latents

    pipe = gancli.load(runs["wspace-toy"], device="cpu")
    assert pipe.style_groups() == {"coarse": [0, 1, 2, 3], "middle": [], "fine": []}
    grid = pipe.style_mix([1, 2], [3], [2, 3], noise_mode="none")
    w_row = pipe.mapping(latents(1, pipe.z_dim, seed=2))  # class 0, as style_mix gives every source
    w_col = pipe.mapping(latents(1, pipe.z_dim, seed=3))
    expected = torch.cat([w_row[:, :2], w_col[:, 2:]], dim=1)
    assert torch.allclose(grid["mixes"][1:2], pipe.synthesis(expected, noise_mode="none"))
    assert parse_layers("1-2", pipe.style_groups(), 4) == [1, 2]
    out = tmp_path / "mix.png"
    assert cli("style-mix", runs["wspace-toy"], "--rows", "1,2", "--cols", "3,4,5", "--styles", "0-1",
               "--out", out).exit_code == 0
    assert Image.open(out).size == (4 * (8 + 2) + 2, 3 * (8 + 2) + 2)
    bad = cli("style-mix", runs["wspace-toy"], "--styles", "middle", "--out", tmp_path / "m.png")
    assert bad.exit_code == 2 and "no middle layers" in bad.stderr
    z_model = cli("style-mix", runs["dcgan"], "--out", tmp_path / "z.png")
    assert z_model.exit_code == 2 and "W space" in z_model.stderr


def test_interpolation_walks_in_w_by_default_and_between_classes(runs, cli, tmp_path):
    out = tmp_path / "walk.png"
    result = cli("interpolate", runs["wspace-toy"], "--seeds", "1,2", "--frames", "4", "--class", "0", "--out", out)
    assert result.exit_code == 0 and "in W" in result.stderr
    z = cli("interpolate", runs["wspace-toy"], "--seeds", "1,2", "--frames", "4", "--space", "z", "--out", out)
    assert z.exit_code == 0 and "in z" in z.stderr
    classes = cli("interpolate", runs["wspace-toy"], "--classes", "0,2", "--seeds", "5", "--frames", "3",
                  "--out", tmp_path / "classes.gif")
    assert classes.exit_code == 0, classes.output
    assert Image.open(tmp_path / "classes.gif").n_frames == 4
    refused = cli("interpolate", runs["dcgan"], "--classes", "0,1", "--out", tmp_path / "c.gif")
    assert refused.exit_code == 2 and "weights its class parameters" in refused.stderr


def test_truncation_sweep_writes_one_grid_per_value(runs, cli, tmp_path):
    out = tmp_path / "sweep.png"
    result = cli("sample", runs["dcgan"], "-n", "4", "--seed", "0", "--truncation-sweep", "0.5,1,2", "--out", out)
    assert result.exit_code == 0, result.output
    single = cli("sample", runs["dcgan"], "-n", "4", "--seed", "0", "--out", tmp_path / "one.png")
    assert single.exit_code == 0
    assert Image.open(out).width > 3 * Image.open(tmp_path / "one.png").width


def test_standing_statistics_change_the_running_statistics_and_nothing_else(tiny_run, cli, tmp_path):
    from gancli.nn.norms import batch_norm_layers

    before_file = Path(tiny_run).read_bytes()
    pipe = gancli.load(tiny_run, device="cpu")
    params = {k: v.clone() for k, v in pipe.generator.named_parameters()}
    stats = [layer.running_mean.clone() for layer in batch_norm_layers(pipe.generator)]
    assert pipe.standing_statistics(4) == len(stats) > 0
    assert all(torch.equal(v, dict(pipe.generator.named_parameters())[k]) for k, v in params.items())
    assert not all(torch.equal(a, layer.running_mean) for a, layer in zip(stats, batch_norm_layers(pipe.generator)))
    assert cli("sample", tiny_run, "-n", "4", "--standing-stats", "2", "--out", tmp_path / "s.png").exit_code == 0
    assert Path(tiny_run).read_bytes() == before_file  # the checkpoint is never changed


def test_batch_statistics_mode_differs_from_running_statistics(tiny_run):
    running = gancli.load(tiny_run, device="cpu").sample(8, seed=0)
    batch = gancli.load(tiny_run, device="cpu", bn_mode="batch")
    assert not torch.equal(batch.sample(8, seed=0), running)
    assert torch.equal(batch.sample(8, seed=0), batch.sample(8, seed=0))
