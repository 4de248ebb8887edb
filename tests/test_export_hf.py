"""gancli export --format hf: the model folder, its card, loading it by path and by hub id (offline cache)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

import gancli
from gancli import checkpoint as ckpt_io
from gancli.errors import GancliError
from gancli.references import read_checkpoint

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _export_support import CLASS_NAMES, npz_run, populate_hub_cache, tiny_checkpoint  # noqa: E402


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory):
    return tiny_checkpoint("dcgan", tmp_path_factory.mktemp("cond") / "run", num_classes=3, steps=2)


@pytest.fixture(scope="module")
def ema_run(tmp_path_factory):
    return npz_run(tmp_path_factory.mktemp("ema"))


@pytest.fixture(scope="module")
def folder(tiny_run, tmp_path_factory):
    """The tiny DCGAN exported as a model folder, with the CLI."""
    from typer.testing import CliRunner

    from gancli.cli import app

    out = tmp_path_factory.mktemp("export") / "tiny-hf"
    result = CliRunner().invoke(app, ["export", str(tiny_run), "--format", "hf", "--out", str(out),
                                      "--license", "apache-2.0", "--repo-id", "someone/tiny-dcgan"])
    assert result.exit_code == 0, result.output
    return out


def _front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    head, _, _ = text[4:].partition("\n---\n")
    return yaml.safe_load(head)


def test_the_folder_holds_weights_config_card_samples_and_settings(folder, tiny_run):
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors",
                                                       "samples.png", "training.toml"]
    config = json.loads((folder / "config.json").read_text())
    ckpt = ckpt_io.read(tiny_run)
    assert config["library_name"] == "gancli" and config["family"] == "dcgan"
    assert config["plugin"]["distribution"] == "gancli-plugin-dcgan"
    prefix = ckpt_io.generator_prefix(ckpt)
    assert config["weights"] == ("ema" if prefix == "G_ema." else "trained") and config["dtype"] == "float32"
    assert (config["z_dim"], config["resolution"], config["channels"], config["w_space"]) == (8, 16, 1, False)
    assert config["progress"] == {"step": ckpt.step, "images_seen": ckpt.images_seen}
    assert config["config"] == ckpt.config and config["data_spec"] == json.loads(ckpt.metadata["gancli.data_spec"])
    # the state dict under the generator's own names, the EMA weights of the checkpoint
    from safetensors.torch import load_file

    stored = load_file(folder / "model.safetensors")
    assert stored.keys() == ckpt.tensors(prefix).keys()
    assert all(torch.equal(stored[k], v) for k, v in ckpt.tensors(prefix).items())
    assert Image.open(folder / "samples.png").size == (8 * 18 + 2, 8 * 18 + 2)  # 64 samples of 16 px
    assert 'family = "dcgan"' in (folder / "training.toml").read_text()


def test_the_model_card_front_matter_is_yaml_and_the_body_says_how_to_sample(folder):
    card = (folder / "README.md").read_text()
    meta = _front_matter(card)
    assert meta["library_name"] == "gancli" and meta["license"] == "apache-2.0"
    assert {"gancli", "gan", "dcgan", "unconditional-image-generation"} <= set(meta["tags"])
    assert meta["pipeline_tag"] == "unconditional-image-generation"
    assert "datasets" not in meta  # trained on a local .npz: no hub dataset to name
    assert "gancli sample someone/tiny-dcgan -n 64 --seed 0 --out grid.png" in card
    assert 'pipe = gancli.load("someone/tiny-dcgan")' in card
    assert "hf upload someone/tiny-dcgan" in card and "upload_folder(" in card
    assert "![Samples from this model](samples.png)" in card
    assert "### Training log at step 3" in card and "not measures of sample quality" in card


def test_sample_from_the_folder_gives_the_checkpoints_pixels(folder, tiny_run, cli, tmp_path):
    a, b = tmp_path / "ckpt.png", tmp_path / "folder.png"
    assert cli("sample", tiny_run, "-n", "9", "--seed", "4", "--out", a).exit_code == 0
    assert cli("sample", folder, "-n", "9", "--seed", "4", "--out", b).exit_code == 0
    assert a.read_bytes() == b.read_bytes()
    # also through the weights file alone (what `gancli eval DIR/model.safetensors` reads)
    assert torch.equal(gancli.load(folder / "model.safetensors").sample(3, seed=1), gancli.load(tiny_run).sample(3, seed=1))


def _offline(home: Path) -> dict:
    return {**os.environ, "HF_HOME": str(home), "HF_HUB_OFFLINE": "1"}


def test_a_hub_id_loads_from_the_offline_hub_cache_to_the_same_pixels(folder, tiny_run, tmp_path):
    home = tmp_path / "hf-home"
    populate_hub_cache(home, "someone/tiny-dcgan", folder)
    out = tmp_path / "hub.png"
    code = (
        "import sys, huggingface_hub\n"
        "from typer.testing import CliRunner\n"
        "from gancli.cli import app\n"
        "snapshot = huggingface_hub.snapshot_download('someone/tiny-dcgan', local_files_only=True)\n"
        f"r = CliRunner().invoke(app, ['sample', 'someone/tiny-dcgan', '-n', '9', '--seed', '4', '--out', {str(out)!r}])\n"
        "assert r.exit_code == 0, r.output\n"
        "r = CliRunner().invoke(app, ['sample', 'someone/missing', '-n', '1', '--out', 'never.png'])\n"
        "print(r.exit_code, r.stderr.strip())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=_offline(home), cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    from typer.testing import CliRunner

    from gancli.cli import app

    reference = tmp_path / "ckpt.png"
    assert CliRunner().invoke(app, ["sample", str(tiny_run), "-n", "9", "--seed", "4", "--out", str(reference)]).exit_code == 0
    assert out.read_bytes() == reference.read_bytes()
    status, message = done.stdout.strip().split(" ", 1)
    assert status == "2" and "\n" not in message and "HF_HUB_OFFLINE=1" in message and "someone/missing" in message
    assert not (tmp_path / "never.png").exists()


def test_hub_ids_and_paths_are_told_apart():
    from gancli.hub import parse_hub_id

    assert parse_hub_id("owner/name") == ("owner/name", None)
    assert parse_hub_id("owner/name@v1.0") == ("owner/name", "v1.0")
    assert parse_hub_id("hf://owner/name") == ("owner/name", None)
    assert parse_hub_id("hf:/owner/name") == ("owner/name", None)  # what pathlib makes of hf://
    for path in ("runs/last.safetensors", "a/b/c", "model.pt", "name", "../x", "owner/..", "/abs/path"):
        assert parse_hub_id(path) is None, path
    with pytest.raises(GancliError, match="not a hub model id"):
        parse_hub_id("hf://not a repo")


def test_conditional_folder_has_class_names_per_class_picture_and_class_lines(conditional_run, tmp_path, cli):
    out = tmp_path / "cond-hf"
    assert cli("export", conditional_run, "--format", "hf", "--out", out).exit_code == 0
    config = json.loads((out / "config.json").read_text())
    assert config["num_classes"] == 3 and config["class_names"] == list(CLASS_NAMES)
    card = (out / "README.md").read_text()
    meta = _front_matter(card)
    assert meta["license"] == "unknown" and "class-conditional-image-generation" in meta["tags"]
    assert "pipeline_tag" not in meta
    assert "--class Bag" in card and "Bag, Shirt, Sneaker" in card
    assert Image.open(out / "samples.png").height == 3 * (16 + 2) + 2  # one labelled row per class
    pipe, source = gancli.load(out), gancli.load(conditional_run)
    assert torch.equal(pipe.sample(6, seed=2, class_="Shirt"), source.sample(6, seed=2, class_="Shirt"))


def test_raw_and_half_precision_exports(ema_run, tmp_path, cli):
    tiny_run = ema_run
    ema = tmp_path / "ema"
    assert cli("export", tiny_run, "--format", "hf", "--out", ema).exit_code == 0
    assert json.loads((ema / "config.json").read_text())["weights"] == "ema"
    assert torch.equal(gancli.load(ema).sample(4, seed=0), gancli.load(tiny_run).sample(4, seed=0))
    raw = tmp_path / "raw"
    assert cli("export", tiny_run, "--format", "hf", "--raw", "--out", raw).exit_code == 0
    assert json.loads((raw / "config.json").read_text())["weights"] == "trained"
    assert torch.equal(gancli.load(raw).sample(4, seed=0), gancli.load(tiny_run, ema=False).sample(4, seed=0))
    assert not torch.equal(gancli.load(raw).sample(4, seed=0), gancli.load(ema).sample(4, seed=0))
    asked = cli("sample", raw, "--ema", "-n", "1", "--out", tmp_path / "x.png")
    assert asked.exit_code == 2 and "holds only the trained (raw) generator" in asked.stderr
    half = tmp_path / "half"
    assert cli("export", tiny_run, "--format", "hf", "--dtype", "fp16", "--out", half).exit_code == 0
    header = ckpt_io.read_header(half / "model.safetensors")
    floats = {info["dtype"] for k, info in header.items() if k != "__metadata__" and info["dtype"].startswith(("F", "BF"))}
    assert floats == {"F16"}
    difference = (gancli.load(half).sample(8, seed=0) - gancli.load(tiny_run).sample(8, seed=0)).abs().max()
    assert 0 < difference < 0.05


def _one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    return result.stderr


def test_damaged_checkpoint_unknown_format_and_existing_output_write_nothing(tiny_run, tmp_path, cli):
    target = tmp_path / "out" / "model"
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(tiny_run.read_bytes()[: tiny_run.stat().st_size // 2])
    assert "truncated" in _one_line_error(cli("export", broken, "--format", "hf", "--out", target))
    assert "unknown export format 'zip'" in _one_line_error(cli("export", tiny_run, "--format", "zip", "--out", target))
    assert not target.exists()
    target.mkdir(parents=True)
    (target / "keep.txt").write_text("mine")
    for fmt in ("hf", "onnx", "torchscript", "safetensors"):
        assert "already exists" in _one_line_error(cli("export", tiny_run, "--format", fmt, "--out", target))
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["model"]  # no temporary folder left behind


def _tampered(folder: Path, tmp_path: Path, change) -> Path:
    import shutil

    copy = tmp_path / f"tampered-{len(list(tmp_path.iterdir()))}"
    shutil.copytree(folder, copy)
    config = json.loads((copy / "config.json").read_text())
    change(config, copy)
    if config is not None:
        (copy / "config.json").write_text(json.dumps(config))
    return copy


def _set(key, value):
    def change(config, folder):
        config[key] = value
    return change


@pytest.mark.parametrize("change, message", [
    (_set("library_name", "diffusers"), "not a gancli model config"),
    (_set("z_dim", "8"), "z_dim = '8' is not a positive size"),
    (_set("z_dim", 9), "z_dim = 9, but the dcgan generator its settings build has z_dim = 8"),
    (_set("resolution", 32), "resolution = 32 disagrees with data_spec.resolution"),
    (_set("dtype", "float16"), "but config.json says dtype float16"),
    (_set("weights", "best"), "weights = 'best' is not 'ema' or 'trained'"),
    (_set("class_names", ["a"]), "1 class_names for num_classes = 0"),
    (_set("progress", {"step": -1, "images_seen": 0}), "progress"),
    (_set("gancli_export", 99), "export layout 99"),
    (_set("config", {"family": "dcgan", "model": [1]}), "'model' that is not an object"),
    (lambda config, folder: (folder / "model.safetensors").unlink(), "no model.safetensors"),
    (lambda config, folder: (folder / "model.safetensors").write_bytes(b"\x80\x04" + b"\x00" * 64), "never unpickles"),
    (lambda config, folder: config.update(nested=json.loads("[" * 70 + "]" * 70)), "nested deeper"),
])
def test_config_json_is_validated_as_strictly_as_checkpoint_metadata(folder, tmp_path, change, message):
    damaged = _tampered(folder, tmp_path, change)
    with pytest.raises(GancliError, match=None) as caught:
        gancli.load(damaged)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_config_too_large_or_not_json_is_refused(folder, tmp_path):
    import shutil

    copy = tmp_path / "big"
    shutil.copytree(folder, copy)
    (copy / "config.json").write_text("{" + " " * (17 * 1024 * 1024) + "}")
    with pytest.raises(GancliError, match="more than the 16 MiB"):
        read_checkpoint(copy)
    (copy / "config.json").write_text("{not json")
    with pytest.raises(GancliError, match="not valid JSON"):
        read_checkpoint(copy)


def test_folders_without_config_and_run_folders_get_a_clear_line(tiny_run, tmp_path):
    with pytest.raises(GancliError, match="run folder; pass one of its checkpoints"):
        read_checkpoint(tiny_run.parent.parent)
    with pytest.raises(GancliError, match="folder without config.json"):
        read_checkpoint(tmp_path)


def test_eval_reports_of_this_checkpoint_go_into_the_card_with_their_protocol(ema_run, tmp_path, cli):
    tiny_run = ema_run
    extractor = HERE.parent / "benchmarks" / "artifacts" / "fmnist-cnn.safetensors"
    if not extractor.is_file():
        pytest.skip("the project's Fashion-MNIST extractor is not in benchmarks/artifacts")
    report = tmp_path / "eval.json"
    measured = cli("eval", tiny_run, "--extractor", extractor, "-n", "24", "--metrics", "fid", "--out", report)
    assert measured.exit_code == 0, measured.output
    label = json.loads(report.read_text())["labels"]["fid"]
    out = tmp_path / "with-eval"
    assert cli("export", tiny_run, "--format", "hf", "--eval-report", report, "--out", out).exit_code == 0
    card = (out / "README.md").read_text()
    assert f"| {label} |" in card and "fmnist-cnn" in label
    assert "Protocol: 24 generated samples (seed 0)" in card and "features of fmnist-cnn (sha256" in card
    # the folder measures as the checkpoint does, given as the folder or as its weights file
    for name, source in (("folder", out), ("weights", out / "model.safetensors")):
        folder_report = tmp_path / f"{name}-eval.json"
        measured = cli("eval", source, "--extractor", extractor, "-n", "24", "--metrics", "fid", "--out", folder_report)
        assert measured.exit_code == 0, measured.output
        assert json.loads(folder_report.read_text())["results"] == json.loads(report.read_text())["results"]
    # a report of another generator is refused by name
    other = tmp_path / "raw-out"
    refused = cli("export", tiny_run, "--format", "hf", "--raw", "--eval-report", report, "--out", other)
    assert "measures the G_ema generator, the export holds G" in _one_line_error(refused)
    assert not other.exists()
