"""`gancli eval` of conditional generators (class-acc, intra-fid), the truncation sweep and its picture, and
--bn-mode / --standing-stats: the numbers against hand computations, the protocol, and the refusals."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from _labelled_images import quadrant_images
from _reliability_support import one_torch_thread
from test_eval import TINY_DCGAN, TINY_GAN, _train


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    with one_torch_thread():
        yield


@pytest.fixture(autouse=True)
def _private_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("GANCLI_CACHE_DIR", str(tmp_path / "gancli-cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setenv("GANCLI_OFFLINE", "1")


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict:
    """Labelled 4-class images, an extractor trained on them, a conditional and an unconditional tiny dcgan,
    a 3-class extractor, and the same images without labels."""
    from gancli.evaluation import train_domain_extractor

    root = tmp_path_factory.mktemp("eval-conditional")
    images, labels = quadrant_images(96, 0)
    np.savez(root / "quadrants.npz", images=images, labels=labels)
    np.savez(root / "unlabelled.npz", images=images)
    np.savez(root / "three.npz", images=images[:48], labels=np.arange(48) % 3)
    found = {"root": root, "data": root / "quadrants.npz", "unlabelled": root / "unlabelled.npz"}
    found["extractor"] = train_domain_extractor(
        str(found["data"]), root / "quadrant-cnn.safetensors", steps=12, batch_size=16, resolution=16, name="quadrant-cnn"
    ).path
    found["three_classes"] = train_domain_extractor(
        str(root / "three.npz"), root / "three-cnn.safetensors", steps=2, batch_size=16, resolution=16, name="three-cnn"
    ).path
    common = dict(steps=2, batch=16, data={"resolution": 16})
    found["cond"] = _train("dcgan", str(found["data"]), root / "cond", overrides=[*TINY_DCGAN, "conditional=true"], **common)
    found["uncond"] = _train("dcgan", str(found["data"]), root / "uncond", overrides=TINY_DCGAN, **common)
    return found


def _eval_json(cli, tmp_path: Path, *args, name: str = "result.json") -> dict:
    out = tmp_path / name
    result = cli("eval", *args, "--out", out)
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text())


def _sha8(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:8]


def _samples(ckpt, n: int, seed: int, **options) -> torch.Tensor:
    import gancli

    return gancli.load(ckpt, **options).sample_images(n, seed=seed)


# ---------------------------------------------------------------- class accuracy


def test_class_accuracy_is_the_hand_count_of_the_classifier_heads_argmax(cli, made, tmp_path):
    from gancli.metrics.classifier import load_extractor

    report = _eval_json(cli, tmp_path, made["cond"], "--extractor", made["extractor"], "-m", "class-acc", "-n", "42", "--seed", "3")
    images = _samples(made["cond"], 42, 3)
    classes = torch.arange(42) % 4  # sample i is generated for class i mod K
    network = load_extractor(made["extractor"]).network
    with torch.no_grad():
        _, logits = network(network.prepare(images))
    correct = logits.argmax(1) == classes
    results = report["results"]
    assert results["class_acc"] == pytest.approx(correct.float().mean().item())
    for k in range(4):
        assert results[f"class_acc_{k}"] == pytest.approx(correct[classes == k].float().mean().item())
    # N per class and the label scheme are recorded, and every label carries N and the extractor
    protocol, sha = report["protocol"], _sha8(made["extractor"])
    assert protocol["metrics"]["class-acc"]["parameters"]["per_class_counts"] == [11, 11, 10, 10]
    assert protocol["classes"]["generated_per_class"] == [11, 11, 10, 10]
    assert "class i mod 4" in protocol["classes"]["scheme"] and "class i mod 4" in protocol["source"]["labels"]
    assert report["labels"]["class_acc"] == f"class accuracy-42, 10–11 per class (quadrant-cnn {sha})"
    assert report["labels"]["class_acc_3"] == f"class accuracy of class 3-10 (quadrant-cnn {sha})"
    assert protocol["extractor"]["sha256"].startswith(sha) and (protocol["num_samples"], protocol["seed"]) == (42, 3)
    assert protocol["metrics"]["class-acc"]["parameters"]["features"] == "quadrant-cnn (logits)"


def test_the_extractors_class_order_is_checked_on_labelled_real_examples(cli, made, tmp_path):
    from gancli.metrics.classifier import load_extractor

    report = _eval_json(cli, tmp_path, made["cond"], "--extractor", made["extractor"], "-m", "class-acc", "-n", "40")
    mapping = report["protocol"]["classes"]
    assert mapping["extractor_trained_on_the_models_data"] is True and "one class" in mapping["assumption"]
    check = mapping["check"]
    assert check["counts"] == [10, 10, 10, 10] and mapping["reference_examples"]["per_class_counts"] == [10, 10, 10, 10]
    # the check is the head's accuracy on those real examples: recompute it from the data
    data = np.load(made["data"])
    order = torch.randperm(96, generator=torch.Generator().manual_seed(0))
    labels = torch.from_numpy(data["labels"])[order]
    rows = torch.cat([order[labels == k][:10] for k in range(4)]).sort().values
    network = load_extractor(made["extractor"]).network
    with torch.no_grad():
        _, logits = network(network.prepare(torch.from_numpy(data["images"])[rows].unsqueeze(1)))
    assert check["real_accuracy"] == pytest.approx((logits.argmax(1) == torch.from_numpy(data["labels"])[rows]).float().mean().item())
    assert check["agrees"] is (check["real_accuracy"] >= 0.5)


def test_a_head_that_does_not_know_the_datas_classes_gets_a_caveat(made, tmp_path, monkeypatch):
    """An extractor whose classes are in another order classifies real examples as other classes."""
    from gancli.evaluation import evaluate
    from gancli.metrics import classifier

    real_load = classifier.load_extractor

    def permuted(path, **kwargs):
        extractor = real_load(path, **kwargs)
        head = extractor.network.head
        with torch.no_grad():
            head.weight.copy_(head.weight[[1, 2, 3, 0]])
            head.bias.copy_(head.bias[[1, 2, 3, 0]])
        return extractor

    monkeypatch.setattr(classifier, "load_extractor", permuted)
    report = evaluate(str(made["cond"]), extractor=str(made["extractor"]), metrics="class-acc", num_samples=40)
    check = report.protocol["classes"]["check"]
    assert check["real_accuracy"] < 0.25 and check["agrees"] is False
    assert any("in another order" in caveat for caveat in report.caveats)


# ---------------------------------------------------------------- intra-FID


def test_intra_fid_is_the_mean_of_per_class_fids_computed_by_hand(cli, made, tmp_path):
    from gancli.metrics import frechet_distance
    from gancli.metrics.classifier import load_extractor

    report = _eval_json(cli, tmp_path, made["cond"], "--extractor", made["extractor"], "-m", "intra-fid,fid", "-n", "40")
    extractor = load_extractor(made["extractor"])
    fake, _ = extractor.features(_samples(made["cond"], 40, 0))
    fake_classes = np.arange(40) % 4
    data = np.load(made["data"])
    order = torch.randperm(96, generator=torch.Generator().manual_seed(0)).numpy()
    by_hand = []
    for k in range(4):
        rows = np.sort(order[data["labels"][order] == k][:10])
        real, _ = extractor.features(torch.from_numpy(data["images"][rows]).unsqueeze(1))
        by_hand.append(frechet_distance(real, fake[fake_classes == k]))
    results = report["results"]
    assert [results[f"intra_fid_{k}"] for k in range(4)] == pytest.approx(by_hand, rel=1e-6)
    assert results["intra_fid"] == pytest.approx(np.mean(by_hand), rel=1e-6)
    assert results["intra_fid"] != pytest.approx(results["fid"])
    parameters = report["protocol"]["metrics"]["intra-fid"]["parameters"]
    assert parameters["per_class_counts"] == {"measured": [10] * 4, "reference": [10] * 4}
    sha = _sha8(made["extractor"])
    assert report["labels"]["intra_fid"] == f"intra-FID-40 vs all data, 4 classes × 10 (quadrant-cnn {sha})"
    assert report["labels"]["intra_fid_2"] == f"FID of class 2-10 vs all data-10 (quadrant-cnn {sha})"
    assert any("N/K samples per class" in caveat for caveat in report["caveats"])


def test_intra_fid_against_every_real_example_of_each_class(cli, made, tmp_path):
    """Miyato & Koyama's protocol: each class's samples against all real examples of that class."""
    from gancli.metrics import frechet_distance
    from gancli.metrics.classifier import load_extractor

    report = _eval_json(cli, tmp_path, made["cond"], "--extractor", made["extractor"], "-m", "intra-fid", "-n", "40",
                        "--intra-fid-reference", "all")
    extractor = load_extractor(made["extractor"])
    fake, _ = extractor.features(_samples(made["cond"], 40, 0))
    data = np.load(made["data"])
    by_hand = []
    for k in range(4):
        real, _ = extractor.features(torch.from_numpy(data["images"][data["labels"] == k]).unsqueeze(1))
        by_hand.append(frechet_distance(real, fake[np.arange(40) % 4 == k]))
    assert [report["results"][f"intra_fid_{k}"] for k in range(4)] == pytest.approx(by_hand, rel=1e-6)
    parameters = report["protocol"]["metrics"]["intra-fid"]["parameters"]
    every = np.bincount(data["labels"], minlength=4).tolist()
    assert parameters["per_class_counts"] == {"measured": [10] * 4, "reference": every} and sum(every) == 96
    assert "every labelled example of each class" in report["protocol"]["classes"]["reference_examples"]["selection"]
    # 10 samples per class: the caveat says how many to generate instead
    assert any("10 samples per class (N/K = 40/4) is few" in c and "-n 2000" in c for c in report["caveats"])
    assert not any("compare unequal N" in c for c in report["caveats"])


def test_the_class_balanced_reference_is_cached_apart_from_the_random_subset(cli, made, tmp_path):
    args = (made["cond"], "--extractor", made["extractor"], "-m", "intra-fid,fid", "-n", "40")
    first = _eval_json(cli, tmp_path, *args, name="first.json")
    second = _eval_json(cli, tmp_path, *args, name="second.json")
    assert first["protocol"]["classes"]["reference_examples"]["cache"] == "miss"
    assert second["protocol"]["classes"]["reference_examples"]["cache"] == "hit"
    assert first["results"] == second["results"]
    assert len(list((tmp_path / "gancli-cache" / "reference").glob("*.safetensors"))) == 2  # 40 random, 4 × 10 by class


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize("args, message", [
    (["{uncond}", "-m", "class-acc"], "needs a class-conditional generator; this dcgan model is unconditional"),
    (["{uncond}", "-m", "intra-fid"], "needs a class-conditional generator"),
    (["{cond}", "-m", "class-acc", "--extractor", "{three_classes}"], "has 3 logits (not this data's classes)"),
    (["{cond}", "-m", "intra-fid", "--data", "{unlabelled}"], "needs labelled reference data"),
    (["{cond}", "-m", "intra-fid", "-n", "6"], "needs at least 2 samples per class"),
    (["{cond}", "-m", "intra-fid", "--intra-fid-reference", "some"], "--intra-fid-reference must be matched or all"),
    (["{data}", "-m", "class-acc"], "measures a conditional generator's samples"),
    (["{cond}", "--bn-mode", "batch", "--standing-stats", "2"], "which --bn-mode batch does not use"),
    (["{cond}", "--bn-mode", "eval"], "--bn-mode must be running or batch"),
    (["{data}", "--bn-mode", "batch"], "--bn-mode applies to checkpoints"),
    (["{data}", "--standing-stats", "2"], "--standing-stats applies to checkpoints"),
    (["{cond}", "--truncation-sweep", "0.5,big"], "--truncation-sweep takes comma-separated numbers"),
    (["{cond}", "--truncation-sweep", "0.5,0.5"], "lists a value twice"),
    (["{cond}", "--truncation-sweep", "0,1"], "must be positive for this dcgan model"),
    (["{cond}", "--truncation-sweep", "0.5", "--truncation", "1"], "drop --truncation or --truncation-sweep"),
    (["{data}", "--truncation-sweep", "0.5"], "--truncation-sweep applies to checkpoints"),
    (["{cond}", "--plot", "{root}/p.png"], "--plot belongs to --disturb and --truncation-sweep"),
], ids=["class-acc-unconditional", "intra-fid-unconditional", "extractor-classes", "unlabelled-reference",
        "too-few-per-class", "bad-intra-fid-reference", "class-acc-on-data", "standing-with-batch", "bad-bn-mode", "bn-mode-on-data",
        "standing-on-data", "bad-sweep-value", "repeated-sweep-value", "zero-z-truncation", "sweep-and-truncation",
        "sweep-on-data", "plot-without-picture"])
def test_user_errors_are_one_line_and_exit_2(cli, made, tmp_path, args, message):
    values = {key: str(value) for key, value in made.items()}
    out = tmp_path / "never.json"
    extractor = [] if "--extractor" in args else ["--extractor", made["extractor"]]
    result = cli("eval", *(arg.format_map(values) for arg in args), *extractor, "--out", out)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr and result.stdout == ""
    assert not out.exists()


# ---------------------------------------------------------------- BatchNorm at sampling


def test_bn_mode_is_recorded_and_batch_statistics_change_a_batchnorm_generators_samples(made):
    from gancli.evaluation import evaluate

    common = dict(extractor=str(made["extractor"]), metrics="fid", num_samples=40)
    running = evaluate(str(made["cond"]), **common)
    batch = evaluate(str(made["cond"]), bn_mode="batch", **common)
    assert running.protocol["bn_mode"]["mode"] == "running" and running.protocol["bn_mode"]["batch_norm_layers"] > 0
    assert "running statistics stored in the checkpoint" in running.protocol["bn_mode"]["text"]
    assert batch.protocol["bn_mode"]["mode"] == "batch" and "batch statistics" in batch.protocol["bn_mode"]["text"]
    assert not torch.equal(running.examples, batch.examples)
    assert running.results["fid"] != batch.results["fid"]
    # the examples are the samples `gancli.load(..., bn_mode=...)` gives for the same seed
    assert torch.equal(batch.examples, _samples(made["cond"], 40, 0, bn_mode="batch")[:8])
    data = evaluate(str(made["data"]), **common)
    assert data.protocol["bn_mode"] is None  # real-vs-real: no generator


def test_standing_statistics_are_recorded_change_the_samples_and_leave_the_file_alone(made):
    from gancli.evaluation import evaluate

    before = Path(made["cond"]).read_bytes()
    common = dict(extractor=str(made["extractor"]), metrics="fid", num_samples=40)
    plain = evaluate(str(made["cond"]), **common)
    standing = evaluate(str(made["cond"]), standing_stats=2, **common)
    recorded = standing.protocol["bn_mode"]
    assert recorded["standing_statistics"]["passes"] == 2
    assert recorded["standing_statistics"]["layers"] == recorded["batch_norm_layers"] > 0
    assert "re-estimated from 2 standing passes" in recorded["text"]
    assert plain.protocol["bn_mode"]["standing_statistics"] is None
    assert not torch.equal(plain.examples, standing.examples)
    assert Path(made["cond"]).read_bytes() == before


def test_standing_statistics_are_taken_at_the_truncation_the_samples_use(made):
    import gancli
    from gancli.evaluation import evaluate
    from gancli.evaluation.run import STANDING_BATCH

    common = dict(extractor=str(made["extractor"]), metrics="fid", num_samples=40, standing_stats=2)
    truncated = evaluate(str(made["cond"]), truncation=0.5, **common)
    pipe = gancli.load(made["cond"])
    pipe.standing_statistics(2, batch_size=STANDING_BATCH, seed=0, truncation=0.5)
    assert torch.equal(truncated.examples, pipe.sample_images(40, seed=0, truncation=0.5)[:8])
    untruncated = evaluate(str(made["cond"]), **common)
    assert not torch.equal(truncated.examples, untruncated.examples)


def test_a_generator_without_batchnorm_says_so_in_the_protocol(made, tmp_path):
    pytest.importorskip("gancli_plugin_gan", reason="the gan family (plugins/gan) is not installed")
    from gancli.evaluation import evaluate

    ring = _train("gan", "ring8", tmp_path / "ring", steps=2, batch=64, model=TINY_GAN)
    for mode in (None, "batch"):
        recorded = evaluate(str(ring), metrics="modes", num_samples=200, bn_mode=mode).protocol["bn_mode"]
        assert recorded["batch_norm_layers"] == 0
        assert recorded["text"] == f"{mode or 'running'} (no BatchNorm layers: the mode changes nothing)"


# ---------------------------------------------------------------- the truncation sweep


def test_truncation_sweep_has_a_row_per_value_the_shared_protocol_and_its_picture(cli, made, tmp_path):
    from PIL import Image

    from gancli.evaluation import evaluate
    from gancli.evaluation.charts import SWEEP_CELL, SWEEP_PANEL_H, SWEEP_PANEL_W, SWEEP_TITLE_H

    out = tmp_path / "sweep.json"
    result = cli("eval", made["cond"], "--extractor", made["extractor"], "-n", "40", "--truncation-sweep", "0.5,1,none",
                 "--out", out)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["format"] == "gancli-truncation-sweep/1" and report["truncation_symbol"] == "T"
    assert [row["truncation"] for row in report["results"]] == [0.5, 1.0, None]
    protocol = report["protocol"]
    assert protocol["truncation"]["values"] == [0.5, 1.0, None] and protocol["truncation"]["space"] == "z"
    assert set(protocol["metric_versions"]) == {"fid", "is", "pr", "class-acc"}  # the sweep's defaults
    assert protocol["bn_mode"]["mode"] == "running" and protocol["classes"]["generated_per_class"] == [10] * 4
    rows = report["results"]
    assert all({"fid", "is_mean", "precision", "recall", "class_acc"} <= set(row) for row in rows)
    # each row is what a single evaluation at that truncation measures (same latents, same reference)
    single = evaluate(str(made["cond"]), extractor=str(made["extractor"]), num_samples=40, metrics="fid,class-acc", truncation=0.5)
    assert rows[0]["fid"] == pytest.approx(single.results["fid"]) and rows[0]["class_acc"] == single.results["class_acc"]
    untruncated = evaluate(str(made["cond"]), extractor=str(made["extractor"]), num_samples=40, metrics="fid")
    assert rows[2]["fid"] == pytest.approx(untruncated.results["fid"]) and rows[0]["fid"] != rows[2]["fid"]
    header = result.stdout.splitlines()[1].split()
    assert header[0] == "T" and "class accuracy-40, 10 per class" in result.stdout.splitlines()[1]

    picture = Image.open(out.with_suffix(".png"))
    panels = 3  # FID against IS, precision against recall, class accuracy against T
    assert picture.size == (panels * SWEEP_PANEL_W, SWEEP_TITLE_H + SWEEP_PANEL_H + 3 * (SWEEP_CELL + 6) + 30)
    assert len(set(np.asarray(picture.convert("L")).flatten().tolist())) > 10  # drawn on, not a blank canvas


def test_a_sweep_of_an_unconditional_model_leaves_class_accuracy_out(cli, made, tmp_path):
    report = _eval_json(cli, tmp_path, made["uncond"], "--extractor", made["extractor"], "-n", "40", "--truncation-sweep", "1,2",
                        "--plot", tmp_path / "curve.png")
    assert set(report["protocol"]["metric_versions"]) == {"fid", "is", "pr"}
    assert len(report["results"]) == 2 and "classes" not in report["protocol"]
    assert (tmp_path / "curve.png").is_file()
