"""The command line as a user meets it: help texts, exit codes, sampling and interpolation outputs."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image


def test_help_lists_every_subcommand(cli):
    result = cli("--help")
    assert result.exit_code == 0
    for command in ("train", "sample", "interpolate", "eval", "export", "plugins", "recipes"):
        assert command in result.output


def test_each_subcommand_has_help(cli):
    for args in (["train"], ["sample"], ["interpolate"], ["eval"], ["export"], ["plugins", "list"],
                 ["plugins", "info"], ["plugins", "check"], ["recipes", "list"], ["recipes", "show"]):
        result = cli(*args, "--help")
        assert result.exit_code == 0, (args, result.output)
        assert "Usage" in result.output


def test_version(cli):
    from gancli import __version__

    result = cli("--version")
    assert result.exit_code == 0 and __version__ in result.output


def test_help_and_plugin_list_do_not_import_torch():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from gancli.cli import app\n"
        "r = CliRunner()\n"
        "assert r.invoke(app, ['--help']).exit_code == 0\n"
        "res = r.invoke(app, ['plugins', 'list'])\n"
        "assert res.exit_code == 0, res.output\n"
        "assert 'dcgan' in res.output\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "assert 'accelerate' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_python_dash_m_works():
    out = subprocess.run([sys.executable, "-m", "gancli", "--help"], capture_output=True, text=True, check=True)
    assert "train" in out.stdout


def test_unknown_family_is_exit_2_one_line(cli):
    result = cli("train", "no-such-family", "--data", "ring8")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert "Traceback" not in result.output


def test_sample_grid_and_seed_determinism(cli, tiny_run, tmp_path):
    a, b, c = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    assert cli("sample", tiny_run, "-n", "10", "--seed", "5", "--out", a).exit_code == 0
    assert cli("sample", tiny_run, "-n", "10", "--seed", "5", "--out", b).exit_code == 0
    assert cli("sample", tiny_run, "-n", "10", "--seed", "6", "--out", c).exit_code == 0
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    grid = Image.open(a)
    # 10 images of 16 px → a 3×4 grid with 2 px padding
    assert grid.size == (4 * 18 + 2, 3 * 18 + 2)


def test_sample_separate_files(cli, tiny_run, tmp_path):
    out = tmp_path / "many"
    assert cli("sample", tiny_run, "-n", "3", "--seed", "0", "--separate", "--out", out).exit_code == 0
    files = sorted(out.glob("*.png"))
    assert len(files) == 3 and Image.open(files[0]).size == (16, 16)


def test_truncation_changes_and_bounds_latents():
    from gancli.sampling import latents

    z = latents(500, 16, seed=0, truncation=0.5)
    assert z.abs().max() <= 0.5
    assert not np.allclose(z.numpy(), latents(500, 16, seed=0).numpy())


def test_interpolate_gif_and_strip(cli, tiny_run, tmp_path):
    gif = tmp_path / "walk.gif"
    result = cli("interpolate", tiny_run, "--seeds", "1,2,3", "--frames", "4", "--out", gif)
    assert result.exit_code == 0, result.output
    image = Image.open(gif)
    assert image.n_frames == 2 * 4 + 1
    strip = tmp_path / "walk.png"
    assert cli("interpolate", tiny_run, "--lerp", "--seeds", "1,2", "--frames", "4", "--out", strip).exit_code == 0
    assert Image.open(strip).size[0] > Image.open(strip).size[1]


def test_interpolation_ends_are_the_seed_latents():
    import torch

    from gancli.sampling import latents, path_through, slerp

    keys = torch.cat([latents(1, 8, seed=1), latents(1, 8, seed=2)])
    path = path_through(keys, 5)
    assert torch.allclose(path[0], keys[0]) and torch.allclose(path[-1], keys[1])
    # slerp keeps the norm between two equal-norm vectors, lerp shrinks it
    a = torch.tensor([1.0, 0.0]); b = torch.tensor([0.0, 1.0])
    mid = slerp(a, b, torch.tensor([0.5]))[0]
    assert abs(mid.norm().item() - 1.0) < 1e-6


def test_export_safetensors_is_loadable_and_torchscript_matches(cli, tiny_run, tmp_path):
    import torch

    import gancli

    exported = tmp_path / "g.safetensors"
    assert cli("export", tiny_run, "--format", "safetensors", "--out", exported).exit_code == 0
    from gancli import checkpoint

    ckpt = checkpoint.read(exported)
    assert not ckpt.has("D.") and not ckpt.has("state.")
    assert torch.equal(gancli.load(exported).sample(4, seed=1), gancli.load(tiny_run).sample(4, seed=1))
    ts = tmp_path / "g.pt"
    assert cli("export", tiny_run, "--format", "torchscript", "--out", ts).exit_code == 0
    assert ts.stat().st_size > 0
    assert cli("export", tiny_run, "--format", "jpeg").exit_code == 2


def test_recipes_list_and_show(cli):
    listed = cli("recipes", "list")
    assert listed.exit_code == 0 and "dcgan-fashion-mnist" in listed.output
    shown = cli("recipes", "show", "dcgan-fashion-mnist")
    assert shown.exit_code == 0 and 'family = "dcgan"' in shown.output
    assert cli("recipes", "show", "nope").exit_code == 2


def test_plugins_info_lists_config_fields(cli):
    result = cli("plugins", "info", "dcgan")
    assert result.exit_code == 0
    for field in ("z_dim", "ngf", "loss", "lr", "beta1"):
        assert field in result.output


def test_train_print_config_applies_overrides(cli):
    result = cli("train", "dcgan", "--data", "ring8", "--set", "lr=1e-4", "--set", "train.ema=true",
                 "--steps", "7", "--print-config")
    assert result.exit_code == 0, result.output
    assert "lr = 0.0001" in result.output and "ema = true" in result.output and "steps = 7" in result.output


def test_train_refuses_existing_run(cli, tiny_run):
    run_dir = Path(tiny_run).parent.parent
    result = cli("train", "dcgan", "--data", "ring8", "--out", run_dir)
    assert result.exit_code == 2 and "already holds a run" in result.stderr
