"""`gancli eval` as a user runs it: checkpoints and data sources, the protocol in the JSON, the discriminator
as a classifier, 2-D mode coverage, the domain extractor, and every user error as one line with exit 2."""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from _labelled_images import quadrant_images
from _reliability_support import one_torch_thread
from gancli import checkpoint as ckpt_io

TINY_DCGAN = ["ngf=4", "ndf=4", "z_dim=8"]
TINY_GAN = {"z_dim": 4, "g_hidden": 16, "d_hidden": 16}


def _train(family: str, source: str, out: Path, *, steps: int, batch: int, model=None, overrides=(), data=None):
    from gancli import config as cfg
    from gancli.train.loop import train

    run, family_config = cfg.resolve(
        family,
        flags={"data": {"source": source, **(data or {})},
               "train": {"steps": steps, "batch_size": batch, "sample_every": 0, "sample_grid": 4, "log_every": 1}},
        overrides=[*overrides, *(f"{key}={value}" for key, value in (model or {}).items())],
    )
    return train(run, family_config, out=out, show_progress=False).last_checkpoint


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict:
    """Labelled images, a tiny extractor trained on them, and tiny dcgan / gan checkpoints (made once)."""
    from gancli.evaluation import train_domain_extractor

    root = tmp_path_factory.mktemp("eval")
    images, labels = quadrant_images(96, 0)
    np.savez(root / "quadrants.npz", images=images, labels=labels)
    found = {"root": root, "data": root / "quadrants.npz"}
    found["extractor"] = train_domain_extractor(
        str(found["data"]), root / "quadrant-cnn.safetensors", steps=12, batch_size=16, resolution=16, name="quadrant-cnn"
    ).path
    found["dcgan"] = _train("dcgan", str(found["data"]), root / "dcgan", steps=2, batch=16, overrides=TINY_DCGAN,
                            data={"resolution": 16})
    return found


@pytest.fixture(scope="module")
def gan_made(made) -> dict:
    """Tiny checkpoints of the `gan` family: 2-D points on ring8, and a semi-supervised image model."""
    pytest.importorskip("gancli_plugin_gan", reason="the gan family (plugins/gan) is not installed")
    root = made["root"]
    return {
        **made,
        "ring": _train("gan", "ring8", root / "ring", steps=3, batch=64, model=TINY_GAN),
        "semi": _train("gan", str(made["data"]), root / "semi", steps=3, batch=16,
                       model={**TINY_GAN, "semi_supervised": "true"}, data={"labeled": 4},
                       overrides=["train.ema_discriminator=true", "train.ema_discriminator_decay=0.5"]),
    }


@pytest.fixture(autouse=True)
def _private_caches(tmp_path, monkeypatch):
    """No test reads or fills the user's caches, and none tries to download the Inception weights."""
    monkeypatch.setenv("GANCLI_CACHE_DIR", str(tmp_path / "gancli-cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setenv("GANCLI_OFFLINE", "1")


def _eval_json(cli, tmp_path: Path, *args, name: str = "result.json") -> tuple[dict, str]:
    out = tmp_path / name
    result = cli("eval", *args, "--out", out)
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text()), result.stdout


# ---------------------------------------------------------------- checkpoints


def test_checkpoint_eval_reports_labelled_metrics_with_their_protocol(cli, made, tmp_path):
    report, stdout = _eval_json(cli, tmp_path, made["dcgan"], "--extractor", made["extractor"], "-n", "40", "--seed", "3")
    ckpt = ckpt_io.read(made["dcgan"])
    protocol = report["protocol"]
    assert protocol["source"]["kind"] == "checkpoint"
    assert protocol["source"]["checkpoint"] == str(Path(made["dcgan"]).resolve()) and protocol["source"]["step"] == ckpt.step == 2
    assert protocol["source"]["checkpoint_sha256"] == hashlib.sha256(Path(made["dcgan"]).read_bytes()).hexdigest()
    assert (protocol["num_samples"], protocol["seed"], protocol["truncation"]) == (40, 3, None)
    assert protocol["ema"] is False and protocol["source"]["generator"] == "G"  # trained without EMA
    # default reference: the checkpoint's own training data, test split, as many examples as asked for
    assert protocol["reference"]["source"] == str(made["data"])
    # an .npz has no splits: "test" reads the whole file, and the protocol says so
    assert (protocol["reference"]["split_requested"], protocol["reference"]["split"], protocol["reference"]["count"]) == ("test", "whole", 40)
    assert protocol["reference"]["overlaps_training_data"] is True
    extractor_sha256 = hashlib.sha256(Path(made["extractor"]).read_bytes()).hexdigest()
    assert protocol["extractor"]["name"] == "quadrant-cnn" and protocol["extractor"]["sha256"] == extractor_sha256
    assert protocol["extractor"]["inception_comparable"] is False
    assert set(protocol["metric_versions"]) == {"fid", "kid", "pr", "dc", "is"}
    from gancli import __version__

    assert protocol["gancli_version"] == __version__
    assert {"fid", "kid_mean", "precision", "recall", "density", "coverage", "is_mean"} <= set(report["results"])
    assert all(math.isfinite(value) for value in report["results"].values())
    # never shown as Inception FID: the extractor's name and hash label every feature metric
    assert report["labels"]["fid"] == f"FID-40 vs all data (quadrant-cnn {extractor_sha256[:8]})"
    assert report["labels"]["is_mean"] == f"IS-40 (quadrant-cnn {extractor_sha256[:8]})"
    assert f"FID-40 vs all data (quadrant-cnn {extractor_sha256[:8]})" in stdout and "not comparable with Inception" in stdout
    assert any("no train/test splits" in caveat for caveat in report["caveats"])  # an .npz: reference = training data


def test_same_seed_same_numbers_and_the_reference_features_are_cached(cli, made, tmp_path):
    args = (made["dcgan"], "--extractor", made["extractor"], "-n", "32", "--metrics", "fid,pr")
    first, _ = _eval_json(cli, tmp_path, *args, name="first.json")
    second, _ = _eval_json(cli, tmp_path, *args, name="second.json")
    uncached, _ = _eval_json(cli, tmp_path, *args, "--no-cache", name="uncached.json")
    other_seed, _ = _eval_json(cli, tmp_path, *args, "--seed", "1", name="seed1.json")
    assert [r["protocol"]["reference"]["cache"] for r in (first, second, uncached)] == ["miss", "hit", "off"]
    assert first["results"] == second["results"] == uncached["results"]
    assert other_seed["results"]["fid"] != first["results"]["fid"]
    assert len(list((tmp_path / "gancli-cache" / "reference").glob("*.safetensors"))) == 1


def test_linear_probe_on_a_tiny_dcgan_reports_a_test_accuracy(cli, made, tmp_path):
    report, stdout = _eval_json(
        cli, tmp_path, made["dcgan"], "--extractor", made["extractor"], "--metrics", "fid", "-n", "20",
        "--probe", "--probe-train", "50",
    )
    probe = report["classification"]["probe_accuracy"]
    assert 0.0 <= probe["accuracy"] <= 1.0 and report["results"]["probe_accuracy"] == probe["accuracy"]
    # a split-less .npz: train and test are disjoint parts of it (80 / 20 %, seeded)
    assert (probe["train_count"], probe["test_count"]) == (50, 19)
    assert probe["feature_dim"] == 32  # ndf·8 pooled channels of the tiny DCGAN D
    assert "linear probe accuracy" in stdout
    assert "semi_supervised_accuracy" not in report["results"]  # one logit: this D is no classifier


def test_semi_supervised_discriminator_accuracy_matches_the_plugins_own_count(cli, gan_made, tmp_path):
    from gancli_plugin_gan.semi_supervised import semi_supervised_accuracy

    report, stdout = _eval_json(cli, tmp_path, gan_made["semi"], "--extractor", gan_made["extractor"], "--metrics", "fid", "-n", "16")
    accuracy = report["classification"]["semi_supervised_accuracy"]
    assert accuracy["count"] == 96 and accuracy["split"] == "test"
    assert accuracy["accuracy"] == pytest.approx(semi_supervised_accuracy(gan_made["semi"], str(gan_made["data"]), split="test"))
    assert "D classification accuracy" in stdout
    # the Polyak-averaged D (openai/improved-gan's test classifier) is reported beside the raw one
    from gancli import checkpoint as ckpt_io
    from gancli.evaluation.discriminator import discriminator_accuracy, load_discriminator
    from gancli.evaluation.inputs import labelled_examples
    from gancli.data.sources import load_data

    polyak = report["classification"]["semi_supervised_accuracy_polyak"]
    averaged = load_discriminator(ckpt_io.read(gan_made["semi"]), "cpu", averaged=True)
    values, labels = labelled_examples(load_data(str(gan_made["data"]), split="test"), "test")
    assert polyak["accuracy"] == pytest.approx(discriminator_accuracy(*averaged, values, labels, "image", 4, "cpu"))
    assert "Polyak-averaged D" in stdout and polyak["decay"] == 0.5


def test_linear_probe_separates_classes_that_the_features_separate():
    from gancli.evaluation.discriminator import linear_probe

    class FlattenD(torch.nn.Module):  # features = the pixels themselves, which separate the quadrants
        def forward(self, x, y=None, return_features=False):
            logits = x.flatten(1).sum(1)
            return (logits, x.flatten(1)) if return_features else logits

    train_images, train_labels = quadrant_images(200, 1)
    test_images, test_labels = quadrant_images(100, 2)
    as_tensor = lambda a: torch.from_numpy(a).unsqueeze(1)  # noqa: E731
    probe = linear_probe(
        FlattenD(), None, as_tensor(train_images), torch.from_numpy(train_labels), as_tensor(test_images),
        torch.from_numpy(test_labels), "image", device="cpu", steps=100,
    )
    assert probe["accuracy"] >= 0.95 and probe["feature_dim"] == 256


def test_effective_metric_parameters_are_recorded_and_seed_reaches_kid_and_is(cli, made, tmp_path):
    first, _ = _eval_json(cli, tmp_path, made["dcgan"], "--extractor", made["extractor"], "-n", "40", "--seed", "3")
    metrics = first["protocol"]["metrics"]
    assert metrics["kid"]["parameters"]["seed"] == 3 and metrics["kid"]["parameters"]["subset_size"] == 40
    assert metrics["kid"]["parameters"]["subsets_are_full_sets"] is True
    assert any("KID: subsets of 40 from 40 samples per side are the whole sets" in caveat for caveat in first["caveats"])
    assert metrics["is"]["parameters"] == {"splits": 10, "seed": 3, "shuffled": True, "features": "quadrant-cnn (logits)"}
    assert metrics["pr"]["parameters"]["k"] == 3 and metrics["dc"]["parameters"]["k"] == 5
    assert "VGG-16" in metrics["pr"]["parameters"]["features_in_the_papers"]
    assert metrics["pr"]["parameters"]["features"] == "quadrant-cnn (128-d features)"
    assert all(entry["sensitive_to"] for entry in metrics.values())
    assert first["protocol"]["source"]["labels"] == "unconditional"
    assert "TF32 does not apply" in first["protocol"]["float32"]
    assert first["protocol"]["reference"]["loader"].startswith("gancli-loader/")


def test_kid_and_is_draw_their_subsets_and_splits_from_the_seed_they_are_given():
    from gancli.metrics.registry import get_metric

    rng = np.random.default_rng(0)
    inputs = {"real_features": rng.normal(size=(300, 8)), "fake_features": rng.normal(size=(300, 8)) + 0.2,
              "fake_logits": rng.normal(size=(300, 5)) * 3}
    kid = get_metric("kid")
    assert kid.compute(inputs, seed=1, subset_size=50) != kid.compute(inputs, seed=2, subset_size=50)
    assert kid.compute(inputs, seed=1, subset_size=50) == kid.compute(inputs, seed=1, subset_size=50)
    inception_score = get_metric("is")
    assert inception_score.compute(inputs, seed=1)["is_std"] != inception_score.compute(inputs, seed=2)["is_std"]


def test_a_measured_floor_is_printed_beside_the_number(cli, made, tmp_path, monkeypatch):
    from gancli.data.sources import load_data
    from gancli.evaluation.inputs import REFERENCE_SUBSET_SEED, pixels_sha256, subset_indices
    from gancli.metrics import floors

    data = load_data(str(made["data"]), resolution=16, channels=1, split="test")
    reference_sha = pixels_sha256(data.values[subset_indices(len(data), 40, REFERENCE_SUBSET_SEED)])
    extractor_sha = hashlib.sha256(Path(made["extractor"]).read_bytes()).hexdigest()
    table = floors.FloorTable(extractor_sha, reference_sha, 40, 3, "a test table", {"fid": 12.5, "precision": 0.75})
    monkeypatch.setattr(floors, "FLOOR_TABLES", (table,))
    report, stdout = _eval_json(cli, tmp_path, made["dcgan"], "--extractor", made["extractor"], "-n", "40", "-m", "fid,pr")
    assert report["floors"]["fid"]["value"] == 12.5 and report["floors"]["precision"]["count"] == 40
    assert "recall" not in report["floors"]
    assert "(real-vs-real floor at N = 40: 12.5)" in stdout and "(real-vs-real floor at N = 40: 0.75)" in stdout
    other_n, other_stdout = _eval_json(cli, tmp_path, made["dcgan"], "--extractor", made["extractor"], "-n", "30", "-m", "fid",
                                       name="n30.json")
    assert other_n["floors"] == {} and "floor" not in other_stdout  # measured at N = 40 only


def _idx_folder(root: Path, seed: int) -> Path:
    from _idx_files import write_idx

    root.mkdir(parents=True, exist_ok=True)
    for prefix, count in (("train", 48), ("t10k", 32)):
        images, labels = quadrant_images(count, seed + count)
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", labels.astype(np.uint8))
    return root


@pytest.mark.parametrize("trained_split, overlap", [("test", True), ("train", False)])
def test_the_report_says_when_the_reference_is_the_training_split(cli, made, tmp_path, trained_split, overlap):
    folder = _idx_folder(tmp_path / "digits", 0)
    ckpt = _train("dcgan", str(folder), tmp_path / f"run-{trained_split}", steps=1, batch=16, overrides=TINY_DCGAN,
                  data={"resolution": 16, "split": trained_split})
    report, stdout = _eval_json(cli, tmp_path, ckpt, "--extractor", made["extractor"], "-n", "20", "-m", "fid")
    assert report["protocol"]["reference"]["split"] == "test"
    assert report["protocol"]["reference"]["overlaps_training_data"] is overlap
    assert report["protocol"]["source"]["trained_on"]["split"] == trained_split
    warned = any("is the model's training data" in caveat for caveat in report["caveats"])
    assert warned is overlap and ("is the model's training data" in stdout) is overlap


def test_tf32_is_off_inside_feature_extraction_and_restored_after():
    from gancli.metrics.extractors import full_float32_precision

    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cudnn.allow_tf32 = True
    try:
        with full_float32_precision():
            assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (False, False)
        assert torch.backends.cudnn.allow_tf32 is True
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


# ---------------------------------------------------------------- 2-D points


def test_points_checkpoint_reports_modes_and_parzen_with_its_caveat(cli, gan_made, tmp_path):
    report, stdout = _eval_json(cli, tmp_path, gan_made["ring"], "-n", "400")
    results = report["results"]
    assert report["protocol"]["reference"]["source"] == "ring8" and report["protocol"]["extractor"] is None
    assert set(report["protocol"]["metric_versions"]) == {"modes", "parzen"}
    assert results["total_modes"] == 8 and 0 <= results["modes_captured"] <= 8
    assert 0.0 <= results["high_quality_share"] <= 1.0
    assert math.isfinite(results["parzen_ll_mean"]) and results["parzen_sigma"] > 0
    assert "modes captured" in stdout and "Parzen estimates are unreliable in high dimension" in stdout


def test_a_generator_collapsed_onto_one_mode_captures_one_of_eight(gan_made, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file

    from gancli.evaluation import evaluate

    tensors = load_file(str(gan_made["ring"]))
    with safe_open(str(gan_made["ring"]), framework="pt") as handle:
        metadata = handle.metadata()
    last = max(int(name.split(".")[2]) for name in tensors if name.startswith("G.net.") and name.endswith(".weight"))
    tensors[f"G.net.{last}.weight"] = torch.zeros_like(tensors[f"G.net.{last}.weight"])
    tensors[f"G.net.{last}.bias"] = torch.tensor([1.0, 0.0])  # every sample on the mode at angle 0
    collapsed = tmp_path / "collapsed.safetensors"
    ckpt_io.save(collapsed, tensors, metadata)

    report = evaluate(str(collapsed), num_samples=300, metrics="modes")
    assert report.results["modes_captured"] == 1 and report.results["high_quality_share"] == 1.0
    assert report.results["reverse_kl"] == pytest.approx(math.log(8))


def test_real_ring_points_capture_every_mode():
    from gancli.evaluation import evaluate

    report = evaluate("ring8", num_samples=2500, metrics="modes")
    assert report.results["modes_captured"] == 8
    # 1 − exp(−9/2) ≈ 98.9% of true samples lie within 3σ of their mode
    assert report.results["high_quality_share"] == pytest.approx(1 - math.exp(-4.5), abs=0.01)


# ---------------------------------------------------------------- real vs real


def test_real_vs_real_of_the_same_examples_gives_fid_zero(cli, made, tmp_path):
    report, _ = _eval_json(cli, tmp_path, made["data"], "--data", made["data"], "--extractor", made["extractor"])
    assert report["protocol"]["source"]["kind"] == "data" and report["protocol"]["num_samples"] == 96
    assert report["results"]["fid"] == pytest.approx(0.0, abs=1e-6)
    assert report["results"]["precision"] == report["results"]["recall"] == report["results"]["coverage"] == 1.0
    assert any("share examples" in caveat for caveat in report["caveats"])

    different, _ = _eval_json(cli, tmp_path, made["data"], "--extractor", made["extractor"], "-n", "40", "--seed", "5", "-m", "fid",
                              name="subsets.json")
    assert different["results"]["fid"] > 1e-3  # a seeded subset against the fixed reference subset


# ---------------------------------------------------------------- the domain extractor


def test_train_extractor_command_writes_a_loadable_extractor_with_its_accuracy(cli, made, tmp_path):
    from gancli.metrics.classifier import load_extractor

    out = tmp_path / "ext.safetensors"
    result = cli("eval", "train-extractor", "--data", made["data"], "--out", out, "--steps", "6", "--batch", "16",
                 "--resolution", "16", "--name", "quad")
    assert result.exit_code == 0, result.output
    extractor = load_extractor(out)
    assert extractor.name == "quad" and extractor.num_classes == 4 and extractor.network.resolution == 16
    accuracy = extractor.metadata["test_accuracy"]
    assert 0.0 <= accuracy <= 1.0 and f"test accuracy {accuracy:.4f}" in result.stdout
    assert extractor.metadata["training_data"]["count"] == 77 and extractor.metadata["test_data"]["count"] == 19
    assert extractor.sha256 in result.stdout


def test_help_explains_both_uses(cli):
    result = cli("eval", "--help")
    assert result.exit_code == 0
    assert "gancli eval SOURCE" in result.output and "train-extractor" in result.output and "--num-samples" in result.output
    sub = cli("eval", "train-extractor", "--help")
    assert sub.exit_code == 0 and "--steps" in sub.output


# ---------------------------------------------------------------- user errors


@pytest.mark.parametrize("args, message", [
    (["{root}/missing.safetensors"], "does not exist"),
    (["{truncated}", "--data", "{data}"], "truncated"),
    (["{dcgan}", "--metrics", "fid,fd"], "unknown metric 'fd'"),
    (["{ring}", "--metrics", "fid"], "compares image features"),
    (["{dcgan}", "--metrics", "modes", "--extractor", "{extractor}"], "counts the modes of 2-D point mixtures"),
    (["{ring}", "--data", "spiral", "--metrics", "modes"], "known modes"),
    (["{dcgan}", "-n", "0"], "--num-samples must be positive"),
    (["{dcgan}", "--extractor", "{dcgan}"], "is not a gancli feature extractor"),
    (["{dcgan}", "--data", "ring8", "--extractor", "{extractor}"], "makes images but --data ring8 holds 2-D points"),
    (["{data}", "--probe", "--extractor", "{extractor}"], "--probe applies to checkpoints"),
    (["{data}", "--truncation", "0.5"], "--truncation applies to checkpoints"),
    (["{dcgan}", "--split-source", "test"], "--split-source picks the split of a data SOURCE"),
    (["{dcgan}", "--ema", "--extractor", "{extractor}"], "has no EMA generator"),
], ids=["missing", "truncated", "unknown-metric", "fid-on-points", "modes-on-images", "toy-without-modes",
        "zero-samples", "not-an-extractor", "points-reference", "probe-on-data", "truncation-on-data",
        "split-source-on-checkpoint", "ema-missing"])
def test_user_errors_are_one_line_and_exit_2(cli, made, tmp_path, request, args, message):
    found = request.getfixturevalue("gan_made") if any("{ring}" in arg for arg in args) else made
    raw = Path(made["dcgan"]).read_bytes()
    (tmp_path / "truncated.safetensors").write_bytes(raw[: len(raw) // 2])
    values = {key: str(value) for key, value in found.items()} | {"truncated": str(tmp_path / "truncated.safetensors")}
    out = tmp_path / "never.json"
    result = cli("eval", *(arg.format_map(values) for arg in args), "--out", out)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr and result.stdout == ""
    assert not out.exists()


def test_missing_inception_weights_offline_say_where_to_put_the_file(cli, made, tmp_path):
    result = cli("eval", made["data"], "--metrics", "fid")
    assert result.exit_code == 2 and result.stdout == ""
    line = result.stderr
    assert line.count("\n") == 1 and line.startswith("error: ")
    expected = tmp_path / "torch-home" / "hub" / "checkpoints"
    assert str(expected) in line and "pt_inception-2015-12-05-6726825d.pth" in line
    assert "--extractor" in line and "train-extractor" in line
